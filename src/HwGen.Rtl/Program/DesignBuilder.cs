using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Rtl.Engines;
using HwGen.Rtl.Engines.Dma;
using HwGen.Scheduling;

namespace HwGen.Rtl.Program;

/// <summary>
/// Lays out off-chip memory, schedules the scratchpad and emits the controller program. The graph becomes a
/// <see cref="TileProblem"/> (activation tiles and each engine's constant tiles and tasks); the exact CP-SAT
/// model solves it within the compile's scheduling budget when it has at most <see cref="IlpMaxOps"/> tasks; larger graphs
/// go to divide and conquer, whose schedule starts one exact solve of the whole graph up to <see cref="WholeMaxOps"/>
/// tasks; when these find nothing better the greedy baseline stays, and the report says which. The program's loads,
/// stores, addresses and order are the schedule's.
/// </summary>
public sealed class DesignBuilder
{
    /// <summary>Largest task count handed to the exact model alone; larger graphs go to divide and conquer first.</summary>
    public const int IlpMaxOps = 60;
    /// <summary>Largest task count for which divide and conquer's schedule is then the start of one exact solve of the
    /// whole graph (timing first), which keeps it or improves it. With the default 5 s limit: a 95-op random DAG
    /// 1,920 to 1,792 B, a 145-op one 2,688 to 2,304 B, a 299-op one 4,096 to 2,560 B (divide and conquer alone
    /// removed nothing there). From cold, the whole model found no schedule of the 95-op graph in 3 s.</summary>
    public const int WholeMaxOps = 300;
    /// <summary>Window size of divide and conquer.</summary>
    public const int WindowOps = 40;

    readonly Graph graph;
    readonly HwConfig cfg;
    readonly Dictionary<Value, Storage> storage = [];
    /// <summary>Tensors the compiler knows (<see cref="ResultStorage.Constant"/>), with the op that gives their codes.</summary>
    readonly Dictionary<Storage, Op> constants = [];
    readonly List<Region> regions = [];
    readonly List<Instruction> program = [];
    /// <summary>First off-chip word of each op's constants.</summary>
    readonly Dictionary<Op, long> constWord = [];
    long nextWord;

    DesignBuilder(Graph graph, HwConfig cfg)
    {
        this.graph = graph;
        this.cfg = cfg;
    }

    public static Design Build(Graph graph, HwConfig cfg, string modelName)
    {
        cfg.Validate();
        return new DesignBuilder(graph, cfg).Run(modelName);
    }

    /// <summary>A fresh timer for each unit of a design: the DMA's own, and each engine's (<see cref="IDeviceEngine.Timer"/>).</summary>
    public static Func<string, IUnitTimer> Timers(HwConfig c) =>
        unit => unit == Dma.Unit ? new DmaTimer() : (EngineRegistry.ByName(unit) as IDeviceEngine ?? throw new InvalidOperationException($"no engine {unit}")).Timer(c);

    /// <summary>Ops on device engines, with their engine, in graph order.</summary>
    IEnumerable<(Op Op, IDeviceEngine Engine)> DeviceOps() =>
        graph.Ops.Select(o => (o, EngineRegistry.Of(o) as IDeviceEngine)).Where(p => p.Item2 is not null).Select(p => (p.o, p.Item2!));

    Design Run(string modelName)
    {
        CreateStorage();
        var devices = storage.Values.Distinct().ToList();
        var inputs = new HashSet<Storage>(Design.InputsOf(graph, storage));
        var outputs = new HashSet<Storage>(Design.OutputsOf(graph, storage));
        // Constants are off chip from the start, as inputs are.
        var tp = TileProblem.Build(graph, cfg, storage, inputs.Concat(constants.Keys).ToHashSet(), outputs, modelName);
        if (tp.Problem.Ops.Count > 0)
        {
            var p = tp.Problem;
            if (p.Ops.FirstOrDefault(o => p.PackIntoBanks(p.Uses(o)) is null) is { } tooBig)
            {
                var need = Enumerable.Range(0, HwConfig.Banks)
                    .Select(bank => p.Uses(tooBig).Distinct().Where(t => p.Tensors[t].Bank == bank).Sum(p.Size)).ToArray();
                long bytes = (need.Max() + cfg.ConstLineBytes - 1) / cfg.ConstLineBytes * cfg.ConstLineBytes * HwConfig.Banks;
                throw new HwGenException($"config: a scratchpad of {cfg.ScratchpadBytes} bytes ({HwConfig.Banks} banks of {cfg.BankBytes}: " +
                    $"activations in 0 and 1, constants in 2 and 3) cannot hold one tile of the {cfg.ArrayRows}x{cfg.ArrayCols} array " +
                    $"({tp.Tasks[tooBig.Id].Needs(p.Need(tooBig), cfg)}; {string.Join(", ", need.Select((l, b) => $"{l / cfg.LineBytesOf(b)} lines in bank {b}").Where((_, b) => need[b] > 0))}: " +
                    $"scratchpadBytes of at least {bytes})");
            }
        }
        tp.Problem.Check();
        var (schedule, traffic, greedyTraffic, note) = Solve(tp.Problem);

        // Off-chip map: program first (placed at word 0 below), then tensors, constants, spill space.
        var stored = new HashSet<int>(schedule.Steps.SelectMany(s => s.Stores).Concat(schedule.FinalStores));
        var spilled = stored.Select(t => tp.Tensors[t]).OfType<ActTile>().Select(a => a.Storage).Where(s => !outputs.Contains(s)).ToHashSet();
        foreach (var s in devices.Where(s => inputs.Contains(s) || outputs.Contains(s) || constants.ContainsKey(s) || spilled.Contains(s)))
            s.ExtWord = Reserve($"tensor {s.Value.Name}",
                inputs.Contains(s) ? "input" : outputs.Contains(s) ? "output" : constants.ContainsKey(s) ? "constant" : "spill", s.Words);
        foreach (var (op, e) in DeviceOps())
            if (e.ConstantWords(op, cfg) is var words and > 0) constWord[op] = Reserve($"weights {op.Name}", "weights", words);

        long spadUsed = Emit(tp, schedule);
        program.Add(new End());

        int instrBeats = Instruction.Beats(cfg);
        long progWords = (long)program.Count * instrBeats;
        long shift = progWords;
        foreach (var s in devices.Where(s => s.ExtWord >= 0)) s.ExtWord += shift;
        foreach (var op in constWord.Keys.ToList()) constWord[op] += shift;
        var finalProgram = program.Select(i => i is Transfer t ? t with { Ext = t.Ext + shift } : i).ToList();
        var finalRegions = new List<Region> { new("program", "program", 0, progWords) };
        finalRegions.AddRange(regions.Select(r => r with { Word = r.Word + shift }));
        long totalWords = Math.Max(nextWord + shift, 1);
        if (totalWords > 1L << 32)
            throw new HwGenException($"model needs {totalWords} words of off-chip memory, more than the 32-bit address space");

        // Dependency tokens between the units, proven sound, then encoded in each instruction; the event model gives the cycles.
        var units = Design.UnitsOf(graph).ToList();
        if (units.Count > InstructionFormat.MaxUnits) throw new HwGenException($"the design has {units.Count} units; token masks name at most {InstructionFormat.MaxUnits}");
        var tokens = Tokens.Derive(finalProgram, cfg);
        Tokens.Check(finalProgram, tokens, cfg);
        var estimate = CycleModel.Run(finalProgram, tokens, units, Timers(cfg), cfg);
        if (CycleModel.Violation(finalProgram, estimate.Timings, cfg) is { } violation)
            throw new InvalidOperationException($"the timed schedule is not safe: {violation}");
        int tokenBits = Tokens.CounterBits(finalProgram, tokens);
        int Mask(IEnumerable<string> us) => us.Aggregate(0, (m, u) => m | 1 << units.IndexOf(u));

        var programBytes = new byte[progWords * cfg.PortBytes];
        for (int i = 0; i < finalProgram.Count; i++)
        {
            var words = finalProgram[i].Encode(Mask(tokens[i].WaitFrom), Mask(tokens[i].SignalTo));
            for (int w = 0; w < words.Length; w++) BitConverter.GetBytes(words[w]).CopyTo(programBytes, (long)i * instrBeats * cfg.PortBytes + w * 4);
        }
        var image = OffChipImage.Of(cfg, totalWords, programBytes,
            DeviceOps().Where(p => constWord.ContainsKey(p.Op)).Select(p => (p.Op, p.Engine, constWord[p.Op])), constants.Select(c => (c.Key, c.Value)));

        var costs = new Dictionary<Op, OpCost>(ReferenceEqualityComparer.Instance);
        for (int n = 0; n < finalProgram.Count; n++)
        {
            if (finalProgram[n].Owner is not { } owner) continue;
            var c = costs.GetValueOrDefault(owner, new OpCost(0, 0));
            costs[owner] = new OpCost(c.Cycles + estimate.Timings[n].Busy, c.OffChipBytes + finalProgram[n].OffChipBytes(cfg));
        }
        return new Design
        {
            ModelName = modelName, Config = cfg, Graph = graph, Program = finalProgram, Regions = finalRegions,
            Storage = storage, Costs = costs, Image = image, Schedule = note, SolveWallSeconds = solveBudget is { } b ? b.Total * IlpScheduler.WallFactor - b.WallRemaining : 0,
            ScratchpadBytesUsed = spadUsed, EstimatedCycles = estimate.Cycles, Tokens = tokens, TokenBits = tokenBits, Timings = estimate.Timings, OffChipBytesMoved = finalProgram.Sum(i => i.OffChipBytes(cfg)),
            Tiles = tp, ScratchpadSchedule = schedule, Traffic = traffic, GreedyTraffic = greedyTraffic,
        };
    }

    /// <summary>The exact solves' budget, once they ran: its wall time is reported apart from the artifacts.</summary>
    SolveBudget? solveBudget;

    /// <summary>
    /// Greedy first; then, within one budget of <see cref="HwConfig.IlpTimeLimitSeconds"/> deterministic seconds for the
    /// whole compile (<see cref="SolveBudget"/>): the exact model (timing 80 % of it, addresses the rest) up to
    /// <see cref="IlpMaxOps"/> tasks, else divide and conquer (a quarter for each of its three passes and for the
    /// whole-graph solve). The cheaper of that and the greedy schedule is kept: fewer bytes moved, or as many in no more
    /// cycles of its timeline (<see cref="Schedule.Cost"/>).
    /// </summary>
    (Schedule Schedule, Traffic Traffic, Traffic Greedy, string Note) Solve(ScratchpadProblem p)
    {
        var greedy = ChunkedGreedy(p);
        var greedyTraffic = greedy.Verify(p);
        if (cfg.Scheduler == "greedy")
            return (greedy, greedyTraffic, greedyTraffic, $"{greedy.Solver} (requested)");
        if (greedyTraffic.NonCompulsory == 0)
            return (greedy, greedyTraffic, greedyTraffic, $"{greedy.Solver} (optimal: it moves only compulsory traffic)");
        var budget = solveBudget = new SolveBudget(cfg.IlpTimeLimitSeconds);
        // The note goes into the artifacts, so it holds deterministic figures only (the wall time: Design.SolveWallSeconds).
        string Spent() => $"{budget.Spent:F1} of {budget.Total:G3} deterministic s" +
            (budget.WallCapHit ? "; the wall-clock safety net cut a solve, so this schedule may differ run to run" : "");
        if (p.Ops.Count > IlpMaxOps)
        {
            var dnc = DivideAndConquerScheduler.Solve(p, WindowOps, new IlpOptions(cfg.IlpTimeLimitSeconds / 4, cfg.IlpWorkers) { Budget = budget }, WholeMaxOps);
            var dt = dnc.Verify(p);
            return dnc.NoWorseThan(p, greedy)
                ? (dnc, dt, greedyTraffic, $"{dnc.Solver}, {Spent()} ({p.Ops.Count} tasks is more than the exact model's {IlpMaxOps})")
                : (greedy, greedyTraffic, greedyTraffic, $"{greedy.Solver}: divide and conquer over {p.Ops.Count} tasks moved {Worse(dt)} ({dt.NonCompulsory} B non-compulsory)");
        }
        var ilp = IlpScheduler.Solve(p, new IlpOptions(cfg.IlpTimeLimitSeconds * 0.8, cfg.IlpWorkers) { Budget = budget });
        if (ilp is null)
            return (greedy, greedyTraffic, greedyTraffic, $"{greedy.Solver}: the exact model found no schedule within {cfg.IlpTimeLimitSeconds} s, so HwGen fell back to greedy");
        var t = ilp.Verify(p);
        var status = ilp.Status == SolveStatus.Optimal ? "optimal" : $"feasible, gap {ilp.Gap:P1}";
        return ilp.NoWorseThan(p, greedy)
            ? (ilp, t, greedyTraffic, $"{ilp.Solver}; {status}, {Spent()}")
            : (greedy, greedyTraffic, greedyTraffic, $"{greedy.Solver}: the exact model's best in {cfg.IlpTimeLimitSeconds} s ({status}) moved {Worse(t)}");

        string Worse(Traffic other) => other.Total > greedyTraffic.Total ? "more bytes" : "as many bytes in more cycles";
    }

    /// <summary>The greedy schedule in the order of 1, 2, 4, ... chunks of rows (<see cref="ScratchpadProblem.TopologicalOrder(int)"/>),
    /// doubling while that is cheaper (<see cref="Schedule.Cost"/>: fewer bytes moved, or as many in fewer cycles of its timeline)
    /// and there are rows to split: a batch whose activations do not fit goes through the model a part at a time when that
    /// spills less (tiny_vit_digits at batch 64 on 4x8: 1.9 MB to 0.1 MB moved, and the engines stop waiting for spills),
    /// while a layer whose weights do not fit stays whole (each part would load them again).</summary>
    static Schedule ChunkedGreedy(ScratchpadProblem p)
    {
        var best = GreedyScheduler.Solve(p, doubleBuffer: true);
        var rows = p.Ops.Select(o => o.Position is { } x && x > 0 ? (int)Math.Round(1 / x) : 1).DefaultIfEmpty(1).Max();
        for (int chunks = 2; chunks <= rows; chunks *= 2)
        {
            // No chunked order keeps every chain of tasks together (found by fuzzing: tiny_vit_digits at scratchpadBytes 1024,
            // a NullReferenceException): the orders tried so far stand.
            if (p.TopologicalOrder(chunks) is not { } order) break;
            var s = GreedyScheduler.Solve(p, order, doubleBuffer: true);
            if (!s.NoWorseThan(p, best) || s.Cost(p) == best.Cost(p)) break;
            best = s with { Solver = $"greedy in {chunks} chunks of rows" };
        }
        return best;
    }

    long Reserve(string name, string kind, long words)
    {
        var r = new Region(name, kind, nextWord, words);
        regions.Add(r);
        nextWord += words;
        return r.Word;
    }

    /// <summary>One storage per device tensor; a layout no-op (a Reshape that keeps the rows) shares its input's. A tensor's bank
    /// is its depth in the graph modulo 2 (graph inputs 0, an op's result one deeper than its deepest input), so an engine's
    /// results go to the other bank than its inputs. A constant gets its storage where it is first used, one shallower than
    /// that op's other inputs, so it lies in the other bank than they do. A result an engine reads at once with another
    /// (<see cref="IEngine.InputsApart"/>) goes one deeper when it would share that one's bank.</summary>
    void CreateStorage()
    {
        var depth = new Dictionary<Storage, int>();
        var pending = new Dictionary<Value, Op>();
        var apart = new Dictionary<Value, List<Value>>();
        foreach (var op in graph.Ops)
            if (op.Inputs.Count >= 2 && op.Inputs[0] != op.Inputs[1] && EngineRegistry.Of(op)?.InputsApart(op) == true)
                for (int i = 0; i < 2; i++)
                    (apart.TryGetValue(op.Inputs[i], out var l) ? l : apart[op.Inputs[i]] = []).Add(op.Inputs[1 - i]);
        foreach (var op in graph.Ops)
        {
            int others = op.Inputs.Where(storage.ContainsKey).Select(v => depth[storage[v]]).DefaultIfEmpty(0).Max();
            foreach (var v in op.Inputs)
                if (pending.Remove(v, out var producer))
                {
                    var k = new Storage(v, ShapeUtil.Rows(v.Type.Shape), v.Type.Shape.Count == 0 ? 1 : v.Type.Shape[^1], cfg, ((others - 1) % 2 + 2) % 2);
                    storage[v] = k;
                    depth[k] = others - 1;
                    constants[k] = producer;
                }
            switch (EngineRegistry.Of(op)?.Storage(op))
            {
                case ResultStorage.Constant:
                    pending[op.Output] = op;
                    break;
                case ResultStorage.New:
                    var shape = op.Output.Type.Shape;
                    int d = op.Inputs.Where(storage.ContainsKey).Select(v => depth[storage[v]] + 1).DefaultIfEmpty(0).Max();
                    if (apart.TryGetValue(op.Output, out var partners) && partners.Any(o => storage.TryGetValue(o, out var so) && so.Bank == d % 2)) d++;
                    var s = new Storage(op.Output, ShapeUtil.Rows(shape), shape.Count == 0 ? 1 : shape[^1], cfg, d % 2);
                    storage[op.Output] = s;
                    depth[s] = d;
                    break;
                case ResultStorage.SameAsInput:
                    storage[op.Output] = storage[op.Inputs[0]];
                    break;
            }
        }
    }

    long ExtWordOf(TileTensor t) => t switch
    {
        ActTile a => a.Storage.ExtWord + a.Storage.TileWord(a.Block, a.Tile),
        ConstTile k => constWord[k.Owner] + k.FirstWord,
        _ => throw new InvalidOperationException("unknown tile tensor"),
    };

    static LineSlot SlotOf(TileTensor t) => t switch
    {
        ActTile a => a.Storage.Slot,
        ConstTile k => k.Slot,
        _ => throw new InvalidOperationException("unknown tile tensor"),
    };

    /// <summary>Turns the schedule into instructions; returns the end of the highest scratchpad byte range used.</summary>
    long Emit(TileProblem tp, Schedule schedule)
    {
        var line = new Dictionary<int, int>();
        var address = new Dictionary<int, long>();   // scratchpad byte address of each resident tensor
        var ctx = new EmitContext(cfg, tp, line);
        long used = 0;
        Store StoreOf(int t, Op owner) => new(ExtWordOf(tp.Tensors[t]), line[t], tp.Tensors[t].Lines, SlotOf(tp.Tensors[t]), tp.Tensors[t].Name) { Owner = owner };
        var producer = new Dictionary<int, Op>();
        foreach (var step in schedule.Steps)
        {
            var task = tp.Tasks[step.Op];
            var stores = step.Stores.ToDictionary(t => t, t => StoreOf(t, task.Op));
            var storedAt = step.Stores.ToDictionary(t => t, t => address[t]);
            foreach (var t in step.Evictions) line.Remove(t);
            foreach (var (t, addr) in step.Addresses)
            {
                address[t] = addr;
                line[t] = (int)cfg.LineAt(addr);
                used = Math.Max(used, addr + tp.Problem.Size(t));
            }
            // Loads and stores in the DMA's order (ScheduleStep.DmaOrder, the order the scheduler's timeline assumes too).
            foreach (var (t, store) in step.DmaOrder(t => storedAt[t], tp.Problem.Size))
                Add(store ? stores[t] : new Load(ExtWordOf(tp.Tensors[t]), line[t], tp.Tensors[t].Lines, SlotOf(tp.Tensors[t]), tp.Tensors[t].Name) { Owner = task.Op });
            foreach (var t in tp.Problem.Ops[step.Op].Outputs) producer[t] = task.Op;
            foreach (var i in task.Emit(ctx)) Add(i);
        }
        foreach (var t in schedule.FinalStores) Add(StoreOf(t, producer[t]) with { IsFinal = true });
        var last = new Dictionary<string, Instruction>();
        for (int k = 0; k < program.Count; k++)
            last[program[k].Unit] = program[k] = program[k].After(last.GetValueOrDefault(program[k].Unit));
        return used;
    }

    /// <summary>
    /// Appends an instruction, merging it into the previous one when they continue each other (each instruction type's
    /// <see cref="Instruction.MergedWith"/>): fewer instructions, fewer fetches, same effect.
    /// </summary>
    void Add(Instruction i)
    {
        if (program.Count > 0 && program[^1].MergedWith(i, cfg) is { } merged) program[^1] = merged;
        else program.Add(i);
    }
}
