using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Rtl.Program;

namespace HwGen.Rtl.Engines.Dense;

/// <summary>Weight lines [FirstK, FirstK + Lines) of column tile ColTile of a layer.</summary>
public sealed record WeightChunk(QGemm Layer, int ColTile, int FirstK, int Lines, long FirstLine) : ConstTile(Layer, FirstLine, Lines)
{
    public override string Name => $"{Layer.Name}.w[c{ColTile},k{FirstK}]";
}

/// <summary>Bias, multiplier and shift of column tile ColTile of a layer.</summary>
public sealed record ParamBlock(QGemm Layer, int ColTile, int Lines, long FirstLine) : ConstTile(Layer, FirstLine, Lines)
{
    public override string Name => $"{Layer.Name}.params[c{ColTile}]";
}

/// <summary>
/// The GEMM instructions of one row block and column tile of a layer over a group of input tiles (one instruction
/// per input tile). First loads the parameters and starts the accumulators from the bias; Last requantizes and
/// writes the output tile. The groups of one tile form a chain: they run back to back, since the partial sums stay
/// in the engine.
/// </summary>
public sealed record GemmTask(QGemm Layer, int Block, int ColTile, IReadOnlyList<int> InputTensors, int Weights,
    int? Params, int? Output, bool First, bool Last) : TileTask(Layer, Block)
{
    public override IEnumerable<Instruction> Emit(EmitContext ctx)
    {
        int c = ctx.Config.ArrayCols, offset = 0;
        for (int i = 0; i < InputTensors.Count; i++)
        {
            int x = InputTensors[i], k = ctx.Tensor(x).Lines;
            yield return new Gemm(Layer, Block, ColTile, ((ActTile)ctx.Tensor(x)).FirstFeature)
            {
                Owner = Layer, First = First && i == 0, LoadParams = First && i == 0, Last = Last && i == InputTensors.Count - 1,
                ActLine = ctx.Line(x), WeightLine = ctx.Line(Weights) + offset, Lines = k,
                ParamLine = Params is { } p ? ctx.Line(p) : 0, OutLine = Output is { } o ? ctx.Line(o) : 0,
                Cols = Math.Min(c, Layer.N - ColTile * c),
            };
            offset += k;
        }
    }

    public override string Needs(long bytes, HwConfig c) =>
        $"the smallest task needs {bytes / c.LineBytes} lines = {bytes} bytes: activations, weights, {DenseEngine.ParamLines(c)} parameter lines, " +
        $"{Math.Min(c.ArrayCols, Layer.N - ColTile * c.ArrayCols)} output lines";
}

/// <summary>Lowers a QGemm to GEMM tasks: per row block and column tile, chains of tasks over groups of input tiles.</summary>
public static class DenseLowering
{
    public static void Lower(QGemm g, TileBuilder b)
    {
        var cfg = b.Config;
        int c = cfg.ArrayCols, bank = cfg.BankLines, paramLines = DenseEngine.ParamLines(cfg), tileLines = DenseEngine.TileLines(g, cfg);
        var x = b.StorageOf(g.Input);
        var y = b.StorageOf(g.Output);
        int kTiles = (g.K + c - 1) / c;
        // Largest group of input tiles whose task fits in half of each bank (activations and the output tile in bank 0,
        // weights and parameters in bank 1), so the next group loads while this one computes; failing that, in whole
        // banks; at least one tile (Check reports a scratchpad too small for that).
        bool Fits(int tiles, int room) => Math.Min(g.K, tiles * c) + Math.Max(paramLines, c) <= room;
        int group = Enumerable.Range(1, kTiles).Reverse().FirstOrDefault(t => Fits(t, bank / 2));
        if (group == 0) group = Math.Max(1, Enumerable.Range(1, kTiles).Reverse().FirstOrDefault(t => Fits(t, bank)));
        int tiles = g.Tiling!.ColTiles;
        foreach (var (blk, j) in TileOrder(x.RowBlocks, tiles, kTiles, group, g.K, tileLines, bank))
        {
            int? previous = null;
            for (int t0 = 0; t0 < kTiles; t0 += group)
            {
                int t1 = Math.Min(kTiles, t0 + group);
                bool first = t0 == 0, last = t1 == kTiles;
                var ins = Enumerable.Range(t0, t1 - t0).Select(i => b.Act(x, blk, i)).ToList();
                int w = b.Const(new WeightChunk(g, j, t0 * c, Math.Min(g.K, t1 * c) - t0 * c, (long)j * tileLines + t0 * c));
                int? prm = first ? b.Const(new ParamBlock(g, j, paramLines, (long)j * tileLines + g.K)) : null;
                int? o = last ? b.Act(y, blk, j) : null;
                previous = b.Task(new GemmTask(g, blk, j, ins, w, prm, o, first, last), $"{g.Name}[b{blk},c{j},k{t0 * c}]",
                    [.. ins, w, .. prm is { } pp ? [pp] : Array.Empty<int>()], o is { } oo ? [oo] : [], previous);
            }
        }
    }

    /// <summary>
    /// The order of (row block, column tile) pairs, chosen for reuse. Row blocks outside (the default) keep a block's
    /// activations while every column tile runs, and re-fetch the weights per block unless all of them fit in the
    /// constant bank. Column tiles outside keep a tile's weights while every block runs (only when a tile's whole
    /// reduction is one task), and re-fetch the activations per tile unless the layer's input fits in half the activation
    /// bank; consecutive GEMMs of one tile also keep its parameters in the engine (<see cref="Gemm.After"/>). Column tiles
    /// go outside when their estimated traffic (in lines) is no larger.
    /// </summary>
    public static IEnumerable<(int Block, int Tile)> TileOrder(int blocks, int tiles, int kTiles, int group, int k, int tileLines, int bank)
    {
        long acts = (long)blocks * k, weights = (long)tiles * tileLines;
        long blockOuter = acts + (weights <= bank ? weights : blocks * weights);
        long tileOuter = weights + (acts <= bank / 2 ? acts : tiles * acts);
        bool tilesOutside = group == kTiles && blocks > 1 && tileOuter <= blockOuter;
        for (int a = 0; a < (tilesOutside ? tiles : blocks); a++)
            for (int i = 0; i < (tilesOutside ? blocks : tiles); i++)
                yield return tilesOutside ? (i, a) : (a, i);
    }
}
