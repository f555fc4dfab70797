using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Scheduling;

namespace HwGen.Rtl.Program;

/// <summary>What a scheduling tensor stands for in the design.</summary>
public abstract record TileTensor(int Lines);

/// <summary>Features [FirstFeature, FirstFeature + Lines) of row block Block of an activation tensor.</summary>
public sealed record ActTile(Storage Storage, int Block, int Tile, int FirstFeature, int Lines) : TileTensor(Lines);

/// <summary>Weight lines [FirstK, FirstK + Lines) of column tile ColTile of a layer.</summary>
public sealed record WeightChunk(QGemm Layer, int ColTile, int FirstK, int Lines) : TileTensor(Lines);

/// <summary>Bias, multiplier and shift of column tile ColTile of a layer.</summary>
public sealed record ParamBlock(QGemm Layer, int ColTile, int Lines) : TileTensor(Lines);

/// <summary>One scheduling op: work of one IR op on one row block.</summary>
public abstract record TileTask(Op Op, int Block);

/// <summary>
/// The GEMM instructions of one row block and column tile of a layer over a group of input tiles (one instruction
/// per input tile). First loads the parameters and starts the accumulators from the bias; Last requantizes and
/// writes the output tile. The groups of one tile form a chain: they run back to back, since the partial sums stay
/// in the engine.
/// </summary>
public sealed record GemmTask(QGemm Layer, int Block, int ColTile, IReadOnlyList<int> InputTensors, int Weights,
    int? Params, int? Output, bool First, bool Last) : TileTask(Layer, Block);

/// <summary>
/// The vector engine's instructions for one nonlinear op on one row block: an element-wise table on one tile
/// (Inputs and Outputs hold one tile each), or softmax / LayerNorm on the whole row (every tile of the block,
/// streamed once per pass).
/// </summary>
public sealed record VecTask(QNonlinear Nonlinear, int Block, IReadOnlyList<int> Inputs, IReadOnlyList<int> Outputs) : TileTask(Nonlinear, Block);

/// <summary>
/// The scratchpad problem of a compiled graph at the granularity the hardware executes: activation tiles of
/// ArrayCols features per row block, weight chunks, parameter blocks, and GEMM tasks. Sizes are in bytes with
/// the scratchpad line as alignment.
/// </summary>
public sealed class TileProblem
{
    public required ScratchpadProblem Problem { get; init; }
    public required IReadOnlyList<TileTensor> Tensors { get; init; }
    public required IReadOnlyList<TileTask> Tasks { get; init; }
    /// <summary>Input tiles per task, per layer (the K chunk is this many tiles of ArrayCols features).</summary>
    public required IReadOnlyDictionary<QGemm, int> GroupTiles { get; init; }

    public static TileProblem Build(Graph graph, HwConfig cfg, IReadOnlyDictionary<Value, Storage> storage,
        IReadOnlySet<Storage> inputs, IReadOnlySet<Storage> outputs, int paramLines, string name)
    {
        int c = cfg.ArrayCols, lb = cfg.LineBytes, cap = cfg.ScratchpadLines;
        var tensors = new List<TileTensor>();
        var kinds = new List<TensorKind>();
        var index = new Dictionary<TileTensor, int>();
        int Tensor(TileTensor t, TensorKind kind)
        {
            if (index.TryGetValue(t, out var i)) return i;
            tensors.Add(t);
            kinds.Add(kind);
            return index[t] = tensors.Count - 1;
        }
        int Act(Storage s, int block, int tile) =>
            Tensor(new ActTile(s, block, tile, tile * c, Math.Min(c, s.Features - tile * c)),
                inputs.Contains(s) ? TensorKind.Input : outputs.Contains(s) ? TensorKind.Output : TensorKind.Intermediate);

        var tasks = new List<TileTask>();
        var groupTiles = new Dictionary<QGemm, int>();
        var ops = new List<SchedOp>();
        foreach (var op in graph.Ops)
        {
            if (op is QNonlinear nl)
            {
                var xs = storage[nl.Input];
                var ys = storage[nl.Output];
                int tiles = (xs.Features + c - 1) / c;
                for (int b = 0; b < xs.RowBlocks; b++)
                {
                    var sets = nl is QLut ? Enumerable.Range(0, tiles).Select(t => new[] { t }) : [Enumerable.Range(0, tiles).ToArray()];
                    foreach (var set in sets)
                    {
                        var ins = set.Select(t => Act(xs, b, t)).ToList();
                        var outs = set.Select(t => Act(ys, b, t)).ToList();
                        ops.Add(new SchedOp(ops.Count, $"{nl.Name}[b{b}{(nl is QLut ? $",f{set[0] * c}" : "")}]", ins, outs, null));
                        tasks.Add(new VecTask(nl, b, ins, outs));
                    }
                }
                continue;
            }
            if (op is not QGemm g) continue;
            var x = storage[g.Input];
            var y = storage[g.Output];
            int kTiles = (g.K + c - 1) / c;
            // Largest group of input tiles whose task fits in half the scratchpad (so neighbours can stay resident),
            // or, failing that, in all of it; at least one tile (Check reports a scratchpad too small for that).
            int Need(int tiles) => 2 * Math.Min(g.K, tiles * c) + paramLines + c;
            int group = Enumerable.Range(1, kTiles).Reverse().FirstOrDefault(t => Need(t) <= cap / 2);
            if (group == 0) group = Math.Max(1, Enumerable.Range(1, kTiles).Reverse().FirstOrDefault(t => Need(t) <= cap));
            groupTiles[g] = group;
            for (int b = 0; b < x.RowBlocks; b++)
                for (int j = 0; j < g.Tiling!.ColTiles; j++)
                {
                    int? previous = null;
                    for (int t0 = 0; t0 < kTiles; t0 += group)
                    {
                        int t1 = Math.Min(kTiles, t0 + group);
                        bool first = t0 == 0, last = t1 == kTiles;
                        var ins = Enumerable.Range(t0, t1 - t0).Select(i => Act(x, b, i)).ToList();
                        int w = Tensor(new WeightChunk(g, j, t0 * c, Math.Min(g.K, t1 * c) - t0 * c), TensorKind.Weight);
                        int? prm = first ? Tensor(new ParamBlock(g, j, paramLines), TensorKind.Weight) : null;
                        int? o = last ? Act(y, b, j) : null;
                        var task = new GemmTask(g, b, j, ins, w, prm, o, first, last);
                        int id = ops.Count;
                        ops.Add(new SchedOp(id, $"{g.Name}[b{b},c{j},k{t0 * c}]", [.. ins, w, .. prm is { } pp ? [pp] : Array.Empty<int>()],
                            o is { } oo ? [oo] : [], previous));
                        tasks.Add(task);
                        previous = id;
                    }
                }
        }
        var sched = tensors.Select((t, i) => new SchedTensor(i, Describe(t), (long)t.Lines * lb, kinds[i])).ToList();
        return new TileProblem
        {
            Problem = new ScratchpadProblem(name, ops, sched, (long)cap * lb, lb),
            Tensors = tensors, Tasks = tasks, GroupTiles = groupTiles,
        };
    }

    static string Describe(TileTensor t) => t switch
    {
        ActTile a => $"{a.Storage.Value.Name}[b{a.Block},f{a.FirstFeature}]",
        WeightChunk w => $"{w.Layer.Name}.w[c{w.ColTile},k{w.FirstK}]",
        ParamBlock p => $"{p.Layer.Name}.params[c{p.ColTile}]",
        _ => "?",
    };
}
