using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Rtl.Engines.Dma;
using HwGen.Rtl.Program;

namespace HwGen.Rtl.Engines.Dense;

/// <summary>Weight lines [FirstK, FirstK + Lines) of column tile ColTile of a layer.</summary>
public sealed record WeightChunk(QGemm Layer, int ColTile, int FirstK, int Lines, long FirstWord, LineSlot Slot, int Bank)
    : ConstTile(Layer, FirstWord, Lines, Slot, Bank)
{
    public override string Name => $"{Layer.Name}.w[c{ColTile},k{FirstK}]";
}

/// <summary>Bias, multiplier and shift of column tile ColTile of a layer.</summary>
public sealed record ParamBlock(QGemm Layer, int ColTile, int Lines, long FirstWord, LineSlot Slot, int Bank)
    : ConstTile(Layer, FirstWord, Lines, Slot, Bank)
{
    public override string Name => $"{Layer.Name}.params[c{ColTile}]";
}

/// <summary>
/// Where a layer's constants lie off chip, column tile after column tile: its weight chunks (a line per ArrayRows inputs,
/// in slots as wide as the tile's columns times ArrayRows, each chunk padded to a port beat), then its parameter block
/// (<see cref="DenseEngine.ParamLines"/> whole lines, padded to a beat). The lowering loads chunk by chunk, so a chunk
/// starts at a beat. <see cref="Group"/> input tiles (of ArrayCols features) make one chunk. A weight line of n columns
/// holds n·ArrayRows bytes, or what <c>weightLineBytes</c> says (packed weights, the TLMM engine's).
/// </summary>
public sealed class DenseLayout
{
    public QGemm Layer { get; }
    public int Group { get; }
    public int KTiles { get; }
    public int Chunks => (KTiles + Group - 1) / Group;
    readonly HwConfig c;
    readonly long[] tileWord;
    readonly Func<int, int>? weightLineBytes;

    readonly Func<int, int, int> weightLines;

    /// <param name="weightLines">Lines of the weights of inputs [k0, k0 + k) (k0 a multiple of ArrayCols): a line per ArrayRows
    /// inputs unless an engine interleaves others (BitMoD's group headers).</param>
    public DenseLayout(QGemm g, HwConfig c, Func<int, int>? weightLineBytes = null, Func<int, int, int>? weightLines = null)
    {
        this.c = c;
        this.weightLineBytes = weightLineBytes;
        this.weightLines = weightLines ?? ((_, k) => (k + c.ArrayRows - 1) / c.ArrayRows);
        Layer = g;
        KTiles = (g.K + c.ArrayCols - 1) / c.ArrayCols;
        Group = GroupOf(g, c, this.weightLines);
        tileWord = new long[g.Tiling!.ColTiles + 1];
        for (int j = 0; j < g.Tiling.ColTiles; j++)
            tileWord[j + 1] = tileWord[j] + Enumerable.Range(0, Chunks).Sum(i => WeightSlot(j).Beats(ChunkLines(i))) + ParamSlot.Beats(DenseEngine.ParamLines(c));
    }

    /// <summary>Largest group of input tiles whose weights and parameters fit one constant bank (the next group loads into the
    /// other) and whose activations fit half of their bank (the next group's load there too); failing that, whole banks but
    /// for an output tile; at least one tile (Check reports a scratchpad too small for that).</summary>
    static int GroupOf(QGemm g, HwConfig c, Func<int, int, int> weightLines)
    {
        int cols = c.ArrayCols, r = c.ArrayRows, kTiles = (g.K + cols - 1) / cols, param = DenseEngine.ParamLines(c);
        int constLines = c.LinesOf(2), actLines = c.LinesOf(0);
        // t input tiles: ceil(k / r) weight lines; a full block's activations take k rounded up to r lines (r rows x k / r).
        bool Fits(int tiles, int actRoom)
        {
            int k = Math.Min(g.K, tiles * cols);
            return weightLines(0, k) + param <= constLines && (k + r - 1) / r * r <= actRoom;
        }
        int group = Enumerable.Range(1, kTiles).Reverse().FirstOrDefault(t => Fits(t, actLines / 2));
        if (group == 0) group = Enumerable.Range(1, kTiles).Reverse().FirstOrDefault(t => Fits(t, actLines - cols));
        return Math.Max(1, group);
    }

    public int ChunkFirstK(int chunk) => chunk * Group * c.ArrayCols;
    /// <summary>Inputs of a chunk.</summary>
    public int ChunkK(int chunk) => Math.Min(Layer.K, (chunk + 1) * Group * c.ArrayCols) - ChunkFirstK(chunk);
    /// <summary>Weight lines of a chunk (ArrayRows inputs each, unless another engine's lines say otherwise; a chunk starts at a
    /// multiple of ArrayCols, so of ArrayRows).</summary>
    public int ChunkLines(int chunk) => weightLines(ChunkFirstK(chunk), ChunkK(chunk));
    public int ColsIn(int tile) => Math.Min(c.ArrayCols, Layer.N - tile * c.ArrayCols);
    /// <summary>A weight line holds the tile's columns, ArrayRows bytes each (unless packed).</summary>
    public LineSlot WeightSlot(int tile) => LineSlot.For(weightLineBytes?.Invoke(ColsIn(tile)) ?? ColsIn(tile) * c.ArrayRows, c);
    /// <summary>Parameter lines are whole constant lines; a block of one line moves only its 9 bytes per column.</summary>
    public LineSlot ParamSlot => LineSlot.For(DenseEngine.ParamLines(c) == 1 ? DenseEngine.ParamBytesPerColumn * c.ArrayCols : c.ConstLineBytes, c);

    /// <summary>Word of chunk <paramref name="chunk"/> of column tile <paramref name="tile"/>, from the start of the layer's region.</summary>
    public long ChunkWord(int tile, int chunk) => tileWord[tile] + Enumerable.Range(0, chunk).Sum(i => WeightSlot(tile).Beats(ChunkLines(i)));
    public long ParamWord(int tile) => ChunkWord(tile, Chunks);
    public long Words => tileWord[^1];
    /// <summary>Bytes of the weight chunks off chip (whole beats; parameters not counted).</summary>
    public long WeightBytes => Enumerable.Range(0, Layer.Tiling!.ColTiles)
        .Sum(j => Enumerable.Range(0, Chunks).Sum(i => WeightSlot(j).Beats(ChunkLines(i)))) * c.PortBytes;
}

/// <summary>
/// The GEMM instructions of one row block and column tile of a layer over a group of input tiles (one instruction
/// per input tile). First loads the parameters and starts the accumulators from the bias; Last requantizes and
/// writes the output tile. The groups of one tile form a chain: they run back to back, since the partial sums stay
/// in the engine.
/// </summary>
public sealed record GemmTask(QGemm Layer, int Block, int ColTile, IReadOnlyList<int> InputTensors, int Weights,
    int? Params, int? Output, bool First, bool Last, Func<Gemm, Gemm>? Variant = null, Func<int, int, long>? Issue = null) : TileTask(Layer, Block)
{
    public override IEnumerable<Instruction> Emit(EmitContext ctx)
    {
        int c = ctx.Config.ArrayCols, offset = 0;
        for (int i = 0; i < InputTensors.Count; i++)
        {
            var tile = (ActTile)ctx.Tensor(InputTensors[i]);
            int k = tile.Storage.LinesPerRow(tile.Tile);
            var gemm = new Gemm(Layer, Block, ColTile, tile.FirstFeature)
            {
                Owner = Layer, First = First && i == 0, LoadParams = First && i == 0, Last = Last && i == InputTensors.Count - 1,
                ActLine = ctx.Line(InputTensors[i]), WeightLine = ctx.Line(Weights) + offset, Lines = k, Rows = tile.Storage.RowsIn(Block),
                ParamLine = Params is { } p ? ctx.Line(p) : 0, OutLine = Output is { } o ? ctx.Line(o) : 0,
                Cols = Math.Min(c, Layer.N - ColTile * c),
            };
            var made = Variant is null ? gemm : Variant(gemm);
            yield return made;
            offset += made.WeightLines;
        }
    }

    public override string Needs(long bytes, HwConfig c) =>
        $"the smallest task needs {bytes} bytes: activations, weights, {DenseEngine.ParamLines(c)} parameter lines, an output tile";

    /// <summary>Per input tile, its weight lines (a line per ArrayRows features) times the block's rows (or what <see cref="Issue"/>
    /// says of those lines and rows), and 2.</summary>
    public override long Cycles(HwConfig c, IReadOnlyList<TileTensor> tensors) =>
        InputTensors.Select(t => (ActTile)tensors[t]).Sum(tile =>
        {
            int lines = tile.Storage.LinesPerRow(tile.Tile), rows = tile.Storage.RowsIn(Block);
            return (Issue?.Invoke(lines, rows) ?? (long)lines * rows) + 2;
        });
}

/// <summary>Lowers a QGemm to GEMM tasks: per row block and column tile, chains of tasks over groups of input tiles. Another
/// engine on the same shell (TLMM) gives its own constant layout and turns each GEMM into its instruction (<c>variant</c>).</summary>
public static class DenseLowering
{
    /// <param name="issue">The MAC issue cycles of a GEMM of so many weight lines and rows, for the scheduler's estimate (default: one a line and row).</param>
    public static void Lower(QGemm g, TileBuilder b, DenseLayout layout, Func<Gemm, Gemm>? variant = null, Func<int, int, long>? issue = null)
    {
        var cfg = b.Config;
        int c = cfg.ArrayCols, paramLines = DenseEngine.ParamLines(cfg), tiles = g.Tiling!.ColTiles;
        var x = b.StorageOf(g.Input);
        var y = b.StorageOf(g.Output);
        // Constant banks alternate chunk by chunk (a tile's parameters share its first chunk's bank).
        var bank = Enumerable.Range(0, tiles * layout.Chunks).Select(_ => b.NextConstBank()).ToArray();
        int BankOf(int tile, int chunk) => bank[tile * layout.Chunks + chunk];
        foreach (var (blk, j) in TileOrder(x.RowBlocks, tiles, layout.KTiles, layout.Group, (long)cfg.ArrayRows * g.K,
                     (long)DenseEngine.TileLines(g, cfg) * cfg.ConstLineBytes, cfg.BankBytes))
        {
            int? previous = null;
            for (int chunk = 0; chunk < layout.Chunks; chunk++)
            {
                int t0 = chunk * layout.Group, t1 = Math.Min(layout.KTiles, t0 + layout.Group);
                bool first = chunk == 0, last = t1 == layout.KTiles;
                var ins = Enumerable.Range(t0, t1 - t0).Select(i => b.Act(x, blk, i)).ToList();
                int w = b.Const(new WeightChunk(g, j, layout.ChunkFirstK(chunk), layout.ChunkLines(chunk), layout.ChunkWord(j, chunk), layout.WeightSlot(j), BankOf(j, chunk)));
                int? prm = first ? b.Const(new ParamBlock(g, j, paramLines, layout.ParamWord(j), layout.ParamSlot, BankOf(j, 0))) : null;
                int? o = last ? b.Act(y, blk, j) : null;
                previous = b.Task(new GemmTask(g, blk, j, ins, w, prm, o, first, last, variant, issue), $"{g.Name}[b{blk},c{j},k{t0 * c}]",
                    [.. ins, w, .. prm is { } pp ? [pp] : Array.Empty<int>()], o is { } oo ? [oo] : [], previous);
            }
        }
    }

    /// <summary>
    /// The order of (row block, column tile) pairs, chosen for reuse by the bytes it would move, estimated:
    /// <list type="bullet">
    /// <item>groups of G row blocks outside, every column tile inside, the group's blocks innermost: the group's activations
    /// stay while each tile's weights load once per group (G blocks must fit their bank); G = 1 is row block by row block;</item>
    /// <item>groups of T column tiles outside, every row block inside, the group's tiles innermost: the group's weights stay
    /// while each block's activations load once per group (T tiles must fit the two constant banks, alternating), unless the
    /// whole input fits its bank and loads once; T = 1 is column tile by column tile, where consecutive GEMMs of one tile
    /// also keep its parameters in the engine (<see cref="Gemm.After"/>).</item>
    /// </list>
    /// When a tile's reduction takes several tasks (K-chunks), row blocks go outside one at a time.
    /// </summary>
    public static IEnumerable<(int Block, int Tile)> TileOrder(int blocks, int tiles, int kTiles, int group, long blockBytes, long tileBytes, long bankBytes)
    {
        long acts = blocks * blockBytes, weights = tiles * tileBytes;
        var best = (Bytes: acts + (weights <= 2 * bankBytes ? weights : blocks * weights), TilesOutside: false, Size: 1);
        if (group == kTiles)
        {
            for (int g = 2; g <= blocks && g * blockBytes <= bankBytes; g++)
            {
                long bytes = acts + (weights <= 2 * bankBytes ? 1 : (blocks + g - 1) / g) * weights;
                if (bytes < best.Bytes) best = (bytes, false, g);
            }
            for (int t = 1; t <= tiles && (t + 1) / 2 * tileBytes <= bankBytes; t++)
            {
                long bytes = weights + (acts <= bankBytes ? 1 : (tiles + t - 1) / t) * acts;
                if (bytes < best.Bytes || bytes == best.Bytes && !best.TilesOutside && blocks > 1 && t == 1) best = (bytes, true, t);
            }
        }
        int outer = best.TilesOutside ? tiles : blocks, inner = best.TilesOutside ? blocks : tiles;
        for (int g0 = 0; g0 < outer; g0 += best.Size)
            for (int i = 0; i < inner; i++)
                for (int a = g0; a < Math.Min(outer, g0 + best.Size); a++)
                    yield return best.TilesOutside ? (i, a) : (a, i);
    }
}
