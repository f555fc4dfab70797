using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Rtl.Engines;
using HwGen.Rtl.Engines.Dma;
using HwGen.Scheduling;

namespace HwGen.Rtl.Program;

/// <summary>What a scheduling tensor stands for in the design.</summary>
public abstract record TileTensor(int Lines)
{
    /// <summary>Its name in the schedule, the report and instruction comments.</summary>
    public abstract string Name { get; }
}

/// <summary>Features [FirstFeature, FirstFeature + ArrayCols) of row block Block of an activation tensor: <see cref="TileTensor.Lines"/>
/// lines (<see cref="Storage"/>).</summary>
public sealed record ActTile(Storage Storage, int Block, int Tile, int FirstFeature, int Lines) : TileTensor(Lines)
{
    public override string Name => $"{Storage.Value.Name}[b{Block},f{FirstFeature}]";
}

/// <summary>Lines of an op's constants (weights, parameters): off chip <see cref="Lines"/> lines in <see cref="Slot"/>s from word
/// <see cref="FirstWord"/> of the op's constant region on; loaded into constant bank <see cref="Bank"/> (2 or 3), never stored.</summary>
public abstract record ConstTile(Op Owner, long FirstWord, int Lines, LineSlot Slot, int Bank) : TileTensor(Lines);

/// <summary>
/// One scheduling task: the work of one IR op on one row block, run by the engine that lowered it. It writes its own
/// instructions once the schedule has placed its tensors.
/// </summary>
public abstract record TileTask(Op Op, int Block)
{
    /// <summary>The instructions of this task, given the scratchpad line of each of its tensors.</summary>
    public abstract IEnumerable<Instruction> Emit(EmitContext ctx);

    /// <summary>Why the task needs <paramref name="bytes"/> of scratchpad, for the error when it cannot fit.</summary>
    public abstract string Needs(long bytes, HwConfig c);

    /// <summary>An estimate of the cycles the task keeps its engine busy, for the scheduler's timeline (<see cref="SchedOp.Cycles"/>;
    /// the exact cycles come from the cycle model); <paramref name="tensors"/> are the tile problem's tensors by id. Default: 1.</summary>
    public virtual long Cycles(HwConfig c, IReadOnlyList<TileTensor> tensors) => 1;
}

/// <summary>What a task sees while it emits: the configuration, the tile problem and where the schedule put each tensor.</summary>
public sealed class EmitContext(HwConfig config, TileProblem tiles, IReadOnlyDictionary<int, int> lines)
{
    public HwConfig Config { get; } = config;
    public TileProblem Tiles { get; } = tiles;
    /// <summary>Scratchpad line of a resident tensor.</summary>
    public int Line(int tensor) => lines[tensor];
    public TileTensor Tensor(int tensor) => Tiles.Tensors[tensor];
}

/// <summary>
/// Builds the tile problem while each engine lowers its ops (<see cref="IDeviceEngine.Lower"/>): activation tiles of
/// ArrayCols features per row block, the engines' constant tiles, and tasks in program order.
/// </summary>
public sealed class TileBuilder(Graph graph, HwConfig config, IReadOnlyDictionary<Value, Storage> storage, IReadOnlySet<Storage> inputs,
    IReadOnlySet<Storage> outputs)
{
    readonly List<TileTensor> tensors = [];
    readonly List<TensorKind> kinds = [];
    readonly Dictionary<TileTensor, int> index = [];
    readonly List<TileTask> tasks = [];
    readonly List<SchedOp> ops = [];

    public Graph Graph { get; } = graph;
    public HwConfig Config { get; } = config;
    public Storage StorageOf(Value v) => storage[v];

    int Tensor(TileTensor t, TensorKind kind)
    {
        if (index.TryGetValue(t, out var i)) return i;
        tensors.Add(t);
        kinds.Add(kind);
        return index[t] = tensors.Count - 1;
    }

    /// <summary>Activation tile <paramref name="tile"/> (ArrayCols features) of row block <paramref name="block"/>.</summary>
    public int Act(Storage s, int block, int tile)
    {
        return Tensor(new ActTile(s, block, tile, tile * Config.ArrayCols, s.TileLines(block, tile)),
            inputs.Contains(s) ? TensorKind.Input : outputs.Contains(s) ? TensorKind.Output : TensorKind.Intermediate);
    }

    /// <summary>A constant tile: off chip from the start, loaded when needed.</summary>
    public int Const(ConstTile t) => Tensor(t, TensorKind.Weight);

    int constBank = 1;
    /// <summary>The constant bank for the next group of constants a task uses: 2 and 3 in turn, so the DMA loads the next
    /// group into one bank while the engine reads the other.</summary>
    public int NextConstBank() => constBank = constBank == 2 ? 3 : 2;

    /// <summary>Adds a task reading <paramref name="ins"/> and writing <paramref name="outs"/>; with <paramref name="after"/>, it must
    /// run right after that task. Returns the task's id.</summary>
    public int Task(TileTask task, string name, IReadOnlyList<int> ins, IReadOnlyList<int> outs, int? after = null)
    {
        // The exact count, checked as the tasks are made, so a design beyond the limit costs no more than the limit's worth.
        if (ops.Count == Limits.MaxScheduleTasks)
            throw new HwGenException($"config: the design has more than the {Limits.MaxScheduleTasks} tasks HwGen schedules (reached at node '{task.Op.Name}'); " +
                "a larger array or scratchpad, or a smaller batch, gives fewer");
        ops.Add(new SchedOp(ops.Count, name, ins, outs, after) { Cycles = task.Cycles(Config, tensors), Resource = task.Op.Engine });
        tasks.Add(task);
        return ops.Count - 1;
    }

    /// <summary>The tasks with their <see cref="SchedOp.Position"/>: the task's row block over its op's row blocks.</summary>
    List<SchedOp> Positioned()
    {
        var blocks = new Dictionary<Op, int>(ReferenceEqualityComparer.Instance);
        foreach (var t in tasks) blocks[t.Op] = Math.Max(blocks.GetValueOrDefault(t.Op), t.Block + 1);
        return ops.Select((o, i) => o with { Position = tasks[i].Block / (double)blocks[tasks[i].Op] }).ToList();
    }

    public TileProblem Build(string name)
    {
        // Each tensor in its bank (HwConfig.Banks): activations in 0 or 1 by their storage, constants in 2 or 3 as lowered; its
        // lines are its bank's width, and it starts at a line.
        var sched = tensors.Select((t, i) =>
        {
            int bank = t switch { ConstTile k => k.Bank, ActTile a => a.Storage.Bank, _ => throw new InvalidOperationException($"unknown tile {t.Name}") };
            long lb = Config.LineBytesOf(bank);
            return new SchedTensor(i, t.Name, t.Lines * lb, kinds[i]) { Bank = bank, Alignment = lb };
        }).ToList();
        return new TileProblem
        {
            Problem = new ScratchpadProblem(name, Positioned(), sched, (long)HwConfig.Banks * Config.BankBytes, Config.ActLineBytes, banks: HwConfig.Banks)
                { DmaBytesPerCycle = Config.PortBytes },
            Tensors = tensors, Tasks = tasks,
        };
    }
}

/// <summary>
/// The scratchpad problem of a compiled graph at the granularity the hardware executes: activation tiles of
/// ArrayCols features per row block, the engines' constant tiles, and their tasks. Sizes are in bytes with the
/// scratchpad line as alignment.
/// </summary>
public sealed class TileProblem
{
    public required ScratchpadProblem Problem { get; init; }
    public required IReadOnlyList<TileTensor> Tensors { get; init; }
    public required IReadOnlyList<TileTask> Tasks { get; init; }

    /// <summary>Lowers every op on a device engine, in graph order.</summary>
    public static TileProblem Build(Graph graph, HwConfig cfg, IReadOnlyDictionary<Value, Storage> storage,
        IReadOnlySet<Storage> inputs, IReadOnlySet<Storage> outputs, string name)
    {
        var b = new TileBuilder(graph, cfg, storage, inputs, outputs);
        foreach (var op in graph.Ops)
            if (EngineRegistry.Of(op) is IDeviceEngine e) e.Lower(op, b);
        return b.Build(name);
    }
}
