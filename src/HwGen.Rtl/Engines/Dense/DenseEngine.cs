using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Reference;
using HwGen.Rtl.Emit;
using HwGen.Rtl.Program;

namespace HwGen.Rtl.Engines.Dense;

/// <summary>The values of templates/hwgen_dense_engine.v.sbn beyond the common ones: the GEMM shell (parameters, MAC issue,
/// accumulators, drain) named <see cref="EngineModule"/>, whose column sums come from <see cref="ReduceModule"/> (the dense
/// engine's MAC trees, or the TLMM engine's table lookup).</summary>
/// <summary>Serial, when set, renders the shell's serial mode (the BitMoD engine's: header lines, two terms per code line and row,
/// per-group dequantization; its values are the BitMoD engine's).</summary>
public sealed record DenseValues(int ParamLines, IReadOnlyList<FieldDecode> Decode, int LoadParamsBit, string EngineModule, string ReduceModule, object? Serial);

/// <summary>
/// The dense engine: a rows x cols int8 MAC array whose rows split the reduction (an adder tree per column), with int32
/// accumulators per block row that persist across K-chunks and a drain that requantizes one tile while the next runs. It
/// takes every QGemm. Its weights and per-channel parameters live off chip, one region per layer (<see cref="DenseLayout"/>).
/// </summary>
public sealed class DenseEngine : IDeviceEngine
{
    public const string Id = "dense";
    public string Name => Id;
    public string Module => "hwgen_dense_engine";
    /// <summary>The column sums of the MAC array: an adder tree of products per column.</summary>
    public const string MacsModule = "hwgen_dense_macs";
    public bool Always => true;
    public IReadOnlyList<InstructionFormat> Formats { get; } = [Gemm.Layout];

    /// <summary>Bytes of parameters per output column: a 4-byte bias, a 4-byte multiplier, a 1-byte shift.</summary>
    public const int ParamBytesPerColumn = 9;

    /// <summary>Constant lines holding the column parameters of one tile: all biases, then all multipliers, then all shifts.</summary>
    public static int ParamLines(HwConfig c) => (ParamBytesPerColumn * c.ArrayCols + c.ConstLineBytes - 1) / c.ConstLineBytes;

    /// <summary>Where column n's bias, multiplier and shift lie in a tile's parameter block (the template reads the same).</summary>
    public static int BiasByte(int n, HwConfig c) => 4 * n;
    public static int MultiplierByte(int n, HwConfig c) => 4 * c.ArrayCols + 4 * n;
    public static int ShiftByte(int n, HwConfig c) => 8 * c.ArrayCols + n;

    /// <summary>Constant lines of one column tile of a layer: its weight lines (ArrayRows inputs each) and its parameters.</summary>
    public static int TileLines(QGemm g, HwConfig c) => (g.K + c.ArrayRows - 1) / c.ArrayRows + ParamLines(c);

    public bool Implements(Op op) => op is QGemm;

    public Op Place(Op op, HwConfig c) => op with { Engine = Name };

    /// <summary>Blocks of ArrayRows activation rows times tiles of ArrayCols output columns; partial edge tiles are
    /// allowed (the engine masks unused columns).</summary>
    public Op Tile(Op op, HwConfig c) => TileGemm(op, c);

    /// <inheritdoc cref="Tile"/>
    public static Op TileGemm(Op op, HwConfig c)
    {
        var g = (QGemm)op;
        int rows = ShapeUtil.Rows(g.Input.Type.Shape);
        return g with { Tiling = new GemmTiling(c.ArrayRows, c.ArrayCols, (rows + c.ArrayRows - 1) / c.ArrayRows, (g.N + c.ArrayCols - 1) / c.ArrayCols) };
    }

    public Tensor Evaluate(Op op, Tensor[] x) => Kernel((QGemm)op, x[0]);

    /// <summary>The engine's arithmetic: int32 accumulation from the bias, then per-column requantization.</summary>
    public static Tensor Kernel(QGemm g, Tensor x)
    {
        int m = (int)(x.Size / g.K);
        var y = new double[m * g.N];
        for (int r = 0; r < m; r++)
            for (int n = 0; n < g.N; n++)
                y[r * g.N + n] = Requantize(g, Accumulate(g, x.Data, r, n), n);
        return new Tensor(DType.Int8, [.. x.Shape[..^1], g.N], y);
    }

    /// <summary>Column <paramref name="n"/>'s requantization of an accumulator (the drain's), or ONNX's float rule before LegalizeRequant.</summary>
    public static int Requantize(QGemm g, long acc, int n) => g.RequantLegalized
        ? QuantMath.Requantize(acc, g.Multiplier[n], g.Shift[n], g.OutputZeroPoint, g.ClampMin, g.ClampMax)
        : (int)Math.Clamp(QuantMath.Quantize(acc * g.RealMultiplier[n], 1.0, g.OutputZeroPoint, DType.Int8), g.ClampMin, g.ClampMax);

    public static long Accumulate(QGemm g, double[] x, int row, int col)
    {
        long acc = g.Bias[col];
        for (int k = 0; k < g.K; k++) acc += ((long)x[row * g.K + k] - g.InputZeroPoint) * g.Weights[k * g.N + col];
        return acc;
    }

    public void Lower(Op op, TileBuilder b) => DenseLowering.Lower((QGemm)op, b, new DenseLayout((QGemm)op, b.Config));

    public long ConstantWords(Op op, HwConfig c) => new DenseLayout((QGemm)op, c).Words;

    /// <summary>Per column tile (<see cref="DenseLayout"/>): its weight chunks, line l holding the weights of inputs
    /// [l·ArrayRows, (l + 1)·ArrayRows) of the chunk column by column (byte c·ArrayRows + r; inputs past K are zero), then its
    /// parameter lines (unused columns are zero).</summary>
    public void WriteConstants(Op op, byte[] image, long first, HwConfig c)
    {
        var g = (QGemm)op;
        int r = c.ArrayRows;
        WriteTiles(g, image, first, c, new DenseLayout(g, c), PerLine(c, (line, k0, count, col0, cols) =>
        {
            for (int k = 0; k < count; k++)
                for (int n = 0; n < cols; n++)
                    line[n * r + k] = (byte)(sbyte)g.Weights[(k0 + k) * g.N + col0 + n];
        }));
    }

    /// <summary>Writes one weight line: the weights of inputs [k0, k0 + count) for columns [col0, col0 + cols) into its slot (zeroed).</summary>
    public delegate void WeightLineWriter(Span<byte> slot, int k0, int count, int col0, int cols);

    /// <summary>Writes the lines of one weight chunk, inputs [k0, kEnd) for columns [col0, col0 + cols): line i into
    /// <c>slot(i)</c> (zeroed).</summary>
    public delegate void WeightChunkWriter(Func<int, Span<byte>> slot, int k0, int kEnd, int col0, int cols);

    /// <summary>A chunk as a line per ArrayRows inputs, each written by <paramref name="write"/>.</summary>
    public static WeightChunkWriter PerLine(HwConfig c, WeightLineWriter write) => (slot, k0, kEnd, col0, cols) =>
    {
        for (int line = 0, k = k0; k < kEnd; line++, k += c.ArrayRows) write(slot(line), k, Math.Min(c.ArrayRows, kEnd - k), col0, cols);
    };

    /// <summary>A layer's constants in <paramref name="layout"/>: per column tile its weight lines (each by <paramref name="write"/>),
    /// then its parameter block (bias, multiplier and shift per column, <see cref="BiasByte"/> etc.; unused columns are zero).</summary>
    public static void WriteTiles(QGemm g, byte[] image, long first, HwConfig c, DenseLayout layout, WeightChunkWriter write)
    {
        int pw = c.PortBytes, cols = c.ArrayCols, paramLines = ParamLines(c), lb = c.ConstLineBytes;
        for (int j = 0; j < g.Tiling!.ColTiles; j++)
        {
            var slot = layout.WeightSlot(j);
            for (int chunk = 0; chunk < layout.Chunks; chunk++)
            {
                long at = first + layout.ChunkWord(j, chunk) * pw;
                int k0 = layout.ChunkFirstK(chunk);
                write(line => image.AsSpan((int)(at + (long)line * slot.SlotBytes), slot.Bytes), k0, k0 + layout.ChunkK(chunk), j * cols, layout.ColsIn(j));
            }
            var p = new byte[paramLines * lb];
            for (int n = 0; n < layout.ColsIn(j); n++)
            {
                int col = j * cols + n;
                BitConverter.GetBytes(g.Bias[col]).CopyTo(p, BiasByte(n, c));
                BitConverter.GetBytes(g.Multiplier[col]).CopyTo(p, MultiplierByte(n, c));
                p[ShiftByte(n, c)] = (byte)g.Shift[col];
            }
            long pAt = first + layout.ParamWord(j) * pw;
            int kept = Math.Min(lb, layout.ParamSlot.SlotBytes);
            for (int i = 0; i < paramLines; i++)
                Array.Copy(p, i * lb, image, pAt + (long)i * layout.ParamSlot.SlotBytes, kept);
        }
    }

    /// <summary>The drain of a last GEMM overlaps the next GEMMs (<see cref="DenseTimer"/>).</summary>
    public IUnitTimer Timer(HwConfig c) => new DenseTimer(c);

    public IEnumerable<string> ModuleNames(Design d) => [Module, MacsModule];

    public IEnumerable<(string Module, string Text)> Render(Design d, RtlValues common)
    {
        yield return (Module, RenderShell(d, common, Gemm.Layout, Module, MacsModule));
        yield return (MacsModule, Templates.Render("templates", MacsModule + ".v.sbn", common));
    }

    /// <summary>The GEMM shell (templates/hwgen_dense_engine.v.sbn) as module <paramref name="module"/>, decoding <paramref name="format"/>
    /// (the GEMM field table) and taking its column sums from <paramref name="reduce"/>.</summary>
    public static string RenderShell(Design d, RtlValues common, InstructionFormat format, string module, string reduce, object? serial = null) =>
        Templates.Render("templates", "hwgen_dense_engine.v.sbn", common,
            new DenseValues(ParamLines(d.Config), format.Decode("ir"), format["load_params"].Offset, module, reduce, serial));

    public ReportTable Report(Design d)
    {
        var layers = d.Graph.Ops.OfType<QGemm>().Where(g => g.Engine == Name).ToList();
        var c = d.Config;
        return new ReportTable("Dense layers on the MAC array",
            $"{layers.Count} dense layers on a {c.ArrayRows}x{c.ArrayCols} array",
            ["layer", "engine", "input", "output", "bits (x, w, acc, y)", "tiles (row blocks x col tiles)", "K chunk", "why", "est. cycles", "off-chip bytes"],
            layers.Select(g =>
            {
                int chunk = new DenseLayout(g, c).ChunkK(0);
                var cost = d.CostOf(g);
                return (IReadOnlyList<string>)[g.Name, Name, ShapeUtil.Format(g.Input.Type.Shape), ShapeUtil.Format(g.Output.Type.Shape), "i8, i8, i32, i8",
                    $"{g.Tiling!.RowBlocks}x{g.Tiling.ColTiles}", $"{chunk}/{g.K}", EngineRegistry.Why(this, g, c, "int8 weights"), $"{cost.Cycles}", $"{cost.OffChipBytes}"];
            }).ToList(), NumericColumns: 2);
    }
}
