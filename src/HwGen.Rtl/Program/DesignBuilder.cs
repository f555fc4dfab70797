using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Passes;
using HwGen.Scheduling;

namespace HwGen.Rtl.Program;

/// <summary>
/// Lays out off-chip memory, schedules the scratchpad and emits the controller program. The graph becomes a
/// <see cref="TileProblem"/> (activation tiles, weight chunks, parameter blocks, GEMM tasks); the exact CP-SAT
/// model solves it within the configured time limit when it has at most <see cref="IlpMaxOps"/> tasks; larger graphs
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

    /// <summary>Scratchpad lines holding the column parameters of one tile: 4-byte bias, 4-byte multiplier, 1-byte shift per column.</summary>
    public static int ParamLinesFor(HwConfig c) => (9 * c.ArrayCols + c.LineBytes - 1) / c.LineBytes;

    readonly Graph graph;
    readonly HwConfig cfg;
    readonly int paramLines;
    readonly List<QGemm> layers;
    /// <summary>Nonlinear ops in graph order: the vector engine's unit numbers.</summary>
    readonly List<QNonlinear> units;
    readonly Dictionary<Value, Storage> storage = [];
    readonly List<Region> regions = [];
    readonly List<Instruction> program = [];
    readonly Dictionary<QGemm, long> weightWord = [];
    long nextWord;

    DesignBuilder(Graph graph, HwConfig cfg)
    {
        this.graph = graph;
        this.cfg = cfg;
        paramLines = ParamLinesFor(cfg);
        layers = graph.Ops.OfType<QGemm>().ToList();
        units = Design.UnitsOf(graph).ToList();
    }

    public static Design Build(Graph graph, HwConfig cfg, string modelName) => new DesignBuilder(graph, cfg).Run(modelName);

    int L => cfg.BeatsPerLine;
    int C => cfg.ArrayCols;
    int TileLines(QGemm g) => g.K + paramLines;

    Design Run(string modelName)
    {
        CreateStorage();
        var devices = storage.Values.Distinct().ToList();
        var inputs = new HashSet<Storage>(Design.InputsOf(graph, storage));
        var outputs = new HashSet<Storage>(Design.OutputsOf(graph, storage));
        var tp = TileProblem.Build(graph, cfg, storage, inputs, outputs, paramLines, modelName);
        long need = tp.Problem.Need(tp.Problem.LargestOp);
        if (need > tp.Problem.Capacity)
        {
            string what = tp.Tasks[tp.Problem.LargestOp.Id] is VecTask v
                ? $"{v.Nonlinear.Mnemonic} '{v.Nonlinear.Name}' keeps a whole row block of {v.Nonlinear.Input.Type.Shape[^1]} features in and out: {need / cfg.LineBytes} lines"
                : $"the smallest task needs {need / cfg.LineBytes} lines = {need} bytes: activations, weights, {paramLines} parameter lines, {C} output lines";
            throw new HwGenException($"config: a scratchpad of {cfg.ScratchpadLines} lines cannot hold one tile of the {cfg.ArrayRows}x{C} array ({what})");
        }
        tp.Problem.Check();
        var (schedule, traffic, greedyTraffic, note) = Solve(tp.Problem);

        // Off-chip map: program first (placed at word 0 below), then tensors, weights, spill space.
        var stored = new HashSet<int>(schedule.Steps.SelectMany(s => s.Stores).Concat(schedule.FinalStores));
        var spilled = stored.Select(t => tp.Tensors[t]).OfType<ActTile>().Select(a => a.Storage).Where(s => !outputs.Contains(s)).ToHashSet();
        foreach (var s in devices.Where(s => inputs.Contains(s) || outputs.Contains(s) || spilled.Contains(s)))
            s.ExtWord = Reserve($"tensor {s.Value.Name}", inputs.Contains(s) ? "input" : outputs.Contains(s) ? "output" : "spill", (long)s.Lines * L);
        foreach (var g in layers)
            weightWord[g] = Reserve($"weights {g.Name}", "weights", (long)g.Tiling!.ColTiles * TileLines(g) * L);

        int spadUsed = Emit(tp, schedule);
        program.Add(new Instruction(Opcode.End, "end"));

        int instrBeats = (Instruction.Bytes + cfg.PortBytes - 1) / cfg.PortBytes;
        long progWords = (long)program.Count * instrBeats;
        long shift = (progWords + L - 1) / L * L;
        foreach (var s in devices.Where(s => s.ExtWord >= 0)) s.ExtWord += shift;
        foreach (var g in layers) weightWord[g] += shift;
        var finalProgram = program.Select(i => i.Op is Opcode.Load or Opcode.Store ? i with { Ext = i.Ext + shift } : i).ToList();
        var finalRegions = new List<Region> { new("program", "program", 0, progWords) };
        finalRegions.AddRange(regions.Select(r => r with { Word = r.Word + shift }));
        long totalWords = Math.Max(nextWord + shift, 1);
        if (totalWords > 1L << 32)
            throw new HwGenException($"model needs {totalWords} words of off-chip memory, more than the 32-bit address space");

        var image = new byte[totalWords * cfg.PortBytes];
        for (int i = 0; i < finalProgram.Count; i++)
        {
            var words = finalProgram[i].Encode();
            for (int w = 0; w < 8; w++) BitConverter.GetBytes(words[w]).CopyTo(image, (long)i * instrBeats * cfg.PortBytes + w * 4);
        }
        foreach (var g in layers) WriteWeights(image, g);

        long offChipBytes = finalProgram.Where(i => i.Op is Opcode.Load or Opcode.Store).Sum(i => (long)i.Lines * L * cfg.PortBytes);
        // Cycles and off-chip bytes of the instructions an op's comments name.
        (long Cycles, long Bytes) Cost(Op op)
        {
            var mine = finalProgram.Where(i => i.Comment.StartsWith(op.Name + ":")).ToList();
            return (mine.Sum(i => CycleModel.Of(i, cfg, paramLines, units)),
                mine.Where(i => i.Op is Opcode.Load or Opcode.Store).Sum(i => (long)i.Lines * L * cfg.PortBytes));
        }
        var layerInfo = layers.Select(g => new LayerInfo(g.Name, g.Engine ?? "?", g.Input.Type.Shape, g.Output.Type.Shape, g.K, g.N,
            g.Tiling!, Math.Min(g.K, tp.GroupTiles[g] * C), Cost(g).Cycles, Cost(g).Bytes)).ToList();
        var unitInfo = units.Select(u => new UnitInfo(u.Name, u switch { QLut l => l.Function, QSoftmax => "softmax", _ => "layernorm" },
            u.Input.Type.Shape, u.Entries, Cost(u).Cycles, Cost(u).Bytes)).ToList();
        return new Design
        {
            ModelName = modelName, Config = cfg, Graph = graph, Program = finalProgram, Regions = finalRegions,
            Storage = storage, Layers = layerInfo, UnitInfos = unitInfo, StaticImage = image, Schedule = note,
            ScratchpadLinesUsed = spadUsed, EstimatedCycles = CycleModel.Total(finalProgram, cfg, paramLines, units), OffChipBytesMoved = offChipBytes,
            Tiles = tp, ScratchpadSchedule = schedule, Traffic = traffic, GreedyTraffic = greedyTraffic,
        };
    }

    (Schedule Schedule, Traffic Traffic, Traffic Greedy, string Note) Solve(ScratchpadProblem p)
    {
        var greedy = GreedyScheduler.Solve(p);
        var greedyTraffic = greedy.Verify(p);
        if (cfg.Scheduler == "greedy")
            return (greedy, greedyTraffic, greedyTraffic, "greedy (requested)");
        if (greedyTraffic.NonCompulsory == 0)
            return (greedy, greedyTraffic, greedyTraffic, "greedy (optimal: it moves only compulsory traffic)");
        if (p.Ops.Count > IlpMaxOps)
        {
            var dnc = DivideAndConquerScheduler.Solve(p, WindowOps, new IlpOptions(cfg.IlpTimeLimitSeconds, cfg.IlpWorkers), WholeMaxOps);
            var dt = dnc.Verify(p);
            return dt.Total <= greedyTraffic.Total
                ? (dnc, dt, greedyTraffic, $"{dnc.Solver}, {dnc.SolveTime.TotalSeconds:F1} s ({p.Ops.Count} tasks is more than the exact model's {IlpMaxOps})")
                : (greedy, greedyTraffic, greedyTraffic, $"greedy: divide and conquer over {p.Ops.Count} tasks moved more bytes ({dt.NonCompulsory} B non-compulsory)");
        }
        var ilp = IlpScheduler.Solve(p, new IlpOptions(cfg.IlpTimeLimitSeconds, cfg.IlpWorkers));
        if (ilp is null)
            return (greedy, greedyTraffic, greedyTraffic, $"greedy: the exact model found no schedule within {cfg.IlpTimeLimitSeconds} s, so HwGen fell back to greedy");
        var t = ilp.Verify(p);
        var status = ilp.Status == SolveStatus.Optimal ? "optimal" : $"feasible, gap {ilp.Gap:P1}";
        return t.Total <= greedyTraffic.Total
            ? (ilp, t, greedyTraffic, $"{ilp.Solver}; {status}, {ilp.SolveTime.TotalSeconds:F1} s")
            : (greedy, greedyTraffic, greedyTraffic, $"greedy: the exact model's best in {cfg.IlpTimeLimitSeconds} s ({status}) moved more bytes");
    }

    long Reserve(string name, string kind, long words)
    {
        var r = new Region(name, kind, nextWord, words);
        regions.Add(r);
        nextWord += words;
        return r.Word;
    }

    /// <summary>One storage per device tensor; a Reshape shares its input's storage (it keeps rows and features).</summary>
    void CreateStorage()
    {
        foreach (var op in graph.Ops)
        {
            switch (op)
            {
                case Quantize or QGemm or QNonlinear:
                    var shape = op.Output.Type.Shape;
                    storage[op.Output] = new Storage(op.Output, SelectEngines.Rows(shape), shape.Count == 0 ? 1 : shape[^1], cfg.ArrayRows);
                    break;
                case Reshape r:
                    storage[r.Output] = storage[r.Input];
                    break;
            }
        }
    }

    long ExtWordOf(TileTensor t) => t switch
    {
        ActTile a => a.Storage.ExtWord + ((long)a.Block * a.Storage.Features + a.FirstFeature) * L,
        WeightChunk w => weightWord[w.Layer] + ((long)w.ColTile * TileLines(w.Layer) + w.FirstK) * L,
        ParamBlock p => weightWord[p.Layer] + ((long)p.ColTile * TileLines(p.Layer) + p.Layer.K) * L,
        _ => throw new InvalidOperationException("unknown tile tensor"),
    };

    /// <summary>Turns the schedule into instructions; returns the highest scratchpad line used.</summary>
    int Emit(TileProblem tp, Schedule schedule)
    {
        var line = new Dictionary<int, int>();
        int lb = cfg.LineBytes, used = 0;
        string Name(int t) => tp.Problem.Tensors[t].Name;
        void Store(int t, string layer) =>
            Add(new Instruction(Opcode.Store, $"{layer}: store {Name(t)}") { Ext = ExtWordOf(tp.Tensors[t]), SpadLine = line[t], Lines = tp.Tensors[t].Lines });
        foreach (var step in schedule.Steps)
        {
            var task = tp.Tasks[step.Op];
            string opName = task.Op.Name;
            foreach (var t in step.Stores) Store(t, opName);
            foreach (var t in step.Evictions) line.Remove(t);
            foreach (var (t, addr) in step.Addresses)
            {
                line[t] = (int)(addr / lb);
                used = Math.Max(used, line[t] + tp.Tensors[t].Lines);
            }
            foreach (var t in step.Loads)
                Add(new Instruction(Opcode.Load, $"{opName}: load {Name(t)}") { Ext = ExtWordOf(tp.Tensors[t]), SpadLine = line[t], Lines = tp.Tensors[t].Lines });
            if (task is VecTask v)
            {
                EmitVec(v, tp, line);
                continue;
            }
            var gt = (GemmTask)task;
            var g = gt.Layer;
            int offset = 0;
            for (int i = 0; i < gt.InputTensors.Count; i++)
            {
                int x = gt.InputTensors[i], k = tp.Tensors[x].Lines;
                Add(new Instruction(Opcode.Gemm, $"{g.Name}: block {gt.Block} tile {gt.ColTile} k {((ActTile)tp.Tensors[x]).FirstFeature}..+{k}")
                {
                    First = gt.First && i == 0, Last = gt.Last && i == gt.InputTensors.Count - 1,
                    ActLine = line[x], WeightLine = line[gt.Weights] + offset, Lines = k,
                    ParamLine = gt.Params is { } prm ? line[prm] : 0, OutLine = gt.Output is { } o ? line[o] : 0,
                    Cols = Math.Min(C, g.N - gt.ColTile * C),
                    Zx = g.InputZeroPoint, Zy = g.OutputZeroPoint, QMin = g.ClampMin, QMax = g.ClampMax,
                });
                offset += k;
            }
        }
        foreach (var t in schedule.FinalStores) Store(t, "output");
        return used;
    }

    /// <summary>Passes each nonlinear unit streams a row through: softmax 3 (max; exp and sum; output), LayerNorm 2
    /// (statistics; output), element-wise 1.</summary>
    public static int PassesOf(QNonlinear op) => op switch { QSoftmax => 3, QLayerNorm => 2, _ => 1 };

    /// <summary>The vector engine's instructions for a task: every tile of the row once per pass, results written in the last.</summary>
    void EmitVec(VecTask v, TileProblem tp, Dictionary<int, int> line)
    {
        int passes = PassesOf(v.Nonlinear);
        for (int p = 0; p < passes; p++)
            for (int i = 0; i < v.Inputs.Count; i++)
            {
                var tile = (ActTile)tp.Tensors[v.Inputs[i]];
                bool output = p == passes - 1;
                Add(new Instruction(Opcode.Vec, $"{v.Nonlinear.Name}: block {v.Block} pass {p} f {tile.FirstFeature}..+{tile.Lines}")
                {
                    Unit = units.IndexOf(v.Nonlinear), Pass = p, Output = output, First = i == 0, Last = i == v.Inputs.Count - 1,
                    ActLine = line[v.Inputs[i]], OutLine = output ? line[v.Outputs[i]] : 0, Lines = tile.Lines,
                });
            }
    }

    /// <summary>
    /// Appends an instruction, merging it into the previous one when they continue each other: a LOAD or STORE
    /// of the next lines at the next addresses on both sides, or a GEMM over the next reduction lines of the same
    /// tile (activation and weight lines both contiguous). Fewer instructions, fewer fetches, same effect.
    /// </summary>
    void Add(Instruction i)
    {
        if (program.Count > 0 && program[^1] is var prev && prev.Op == i.Op)
        {
            bool merge = i.Op switch
            {
                Opcode.Load or Opcode.Store => prev.Ext + (long)prev.Lines * L == i.Ext && prev.SpadLine + prev.Lines == i.SpadLine,
                Opcode.Gemm => !prev.Last && !i.First && prev.ActLine + prev.Lines == i.ActLine && prev.WeightLine + prev.Lines == i.WeightLine
                               && prev.Cols == i.Cols && prev.Comment.Split(" k ")[0] == i.Comment.Split(" k ")[0],
                _ => false,
            };
            if (merge)
            {
                program[^1] = prev with
                {
                    Lines = prev.Lines + i.Lines, Last = i.Last, OutLine = i.Last ? i.OutLine : prev.OutLine,
                    Comment = i.Op == Opcode.Gemm ? prev.Comment.Split("..+")[0] + $"..+{prev.Lines + i.Lines}"
                        : prev.Comment.Split(" .. ")[0] + " .. " + i.Comment[(i.Comment.IndexOf(' ', i.Comment.IndexOf(": ") + 2) + 1)..],
                };
                return;
            }
        }
        program.Add(i);
    }

    /// <summary>Weights of tile j: K lines of C signed bytes, then the parameter lines (unused columns are zero).</summary>
    void WriteWeights(byte[] image, QGemm g)
    {
        int lb = cfg.LineBytes, pw = cfg.PortBytes;
        for (int j = 0; j < g.Tiling!.ColTiles; j++)
        {
            long tileByte = (weightWord[g] + (long)j * TileLines(g) * L) * pw;
            long LineByte(int line) => tileByte + (long)line * L * pw;
            for (int k = 0; k < g.K; k++)
                for (int c = 0; c < C && j * C + c < g.N; c++)
                    image[LineByte(k) + c] = (byte)(sbyte)g.Weights[k * g.N + j * C + c];
            var p = new byte[paramLines * lb];
            for (int c = 0; c < C && j * C + c < g.N; c++)
            {
                int n = j * C + c;
                BitConverter.GetBytes(g.Bias[n]).CopyTo(p, 4 * c);
                BitConverter.GetBytes(g.Multiplier[n]).CopyTo(p, 4 * C + 4 * c);
                p[8 * C + c] = (byte)g.Shift[n];
            }
            for (int i = 0; i < paramLines; i++)
                Array.Copy(p, i * lb, image, LineByte(g.K + i), lb);
        }
    }
}
