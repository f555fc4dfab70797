using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Reference;
using HwGen.Rtl.Emit;
using HwGen.Rtl.Program;

namespace HwGen.Rtl.Engines.Dense;

/// <summary>The values of templates/hwgen_dense_engine.v.sbn beyond the common ones.</summary>
public sealed record DenseValues(int ParamLines, IReadOnlyList<FieldDecode> Decode, int LoadParamsBit);

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
    public Op Tile(Op op, HwConfig c)
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
            {
                long acc = Accumulate(g, x.Data, r, n);
                y[r * g.N + n] = g.RequantLegalized
                    ? QuantMath.Requantize(acc, g.Multiplier[n], g.Shift[n], g.OutputZeroPoint, g.ClampMin, g.ClampMax)
                    : Math.Clamp(QuantMath.Quantize(acc * g.RealMultiplier[n], 1.0, g.OutputZeroPoint, DType.Int8), g.ClampMin, g.ClampMax);
            }
        return new Tensor(DType.Int8, [.. x.Shape[..^1], g.N], y);
    }

    public static long Accumulate(QGemm g, double[] x, int row, int col)
    {
        long acc = g.Bias[col];
        for (int k = 0; k < g.K; k++) acc += ((long)x[row * g.K + k] - g.InputZeroPoint) * g.Weights[k * g.N + col];
        return acc;
    }

    public void Lower(Op op, TileBuilder b) => DenseLowering.Lower((QGemm)op, b);

    public long ConstantWords(Op op, HwConfig c) => new DenseLayout((QGemm)op, c).Words;

    /// <summary>Per column tile (<see cref="DenseLayout"/>): its weight chunks, line l holding the weights of inputs
    /// [l·ArrayRows, (l + 1)·ArrayRows) of the chunk column by column (byte c·ArrayRows + r; inputs past K are zero), then its
    /// parameter lines (unused columns are zero).</summary>
    public void WriteConstants(Op op, byte[] image, long first, HwConfig c)
    {
        var g = (QGemm)op;
        var layout = new DenseLayout(g, c);
        int r = c.ArrayRows, pw = c.PortBytes, cols = c.ArrayCols, paramLines = ParamLines(c), lb = c.ConstLineBytes;
        for (int j = 0; j < g.Tiling!.ColTiles; j++)
        {
            int slot = layout.WeightSlot(j).SlotBytes;
            for (int chunk = 0; chunk < layout.Chunks; chunk++)
            {
                long at = first + layout.ChunkWord(j, chunk) * pw;
                for (int k = layout.ChunkFirstK(chunk), end = k + layout.ChunkK(chunk); k < end; k++)
                {
                    int line = (k - layout.ChunkFirstK(chunk)) / r, row = k % r;
                    for (int n = 0; n < layout.ColsIn(j); n++)
                        image[at + (long)line * slot + n * r + row] = (byte)(sbyte)g.Weights[k * g.N + j * cols + n];
                }
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

    public IEnumerable<string> ModuleNames(Design d) => [Module];

    public IEnumerable<(string Module, string Text)> Render(Design d, RtlValues common)
    {
        yield return (Module, Templates.Render("templates", Module + ".v.sbn", common,
            new DenseValues(ParamLines(d.Config), Gemm.Layout.Decode("ir"), Gemm.Layout["load_params"].Offset)));
    }

    public ReportTable Report(Design d)
    {
        var layers = d.Graph.Ops.OfType<QGemm>().Where(g => g.Engine == Name).ToList();
        var c = d.Config;
        return new ReportTable("Dense layers on the MAC array",
            $"{layers.Count} dense layers on a {c.ArrayRows}x{c.ArrayCols} array",
            ["layer", "engine", "input", "output", "bits (x, w, acc, y)", "tiles (row blocks x col tiles)", "K chunk", "est. cycles", "off-chip bytes"],
            layers.Select(g =>
            {
                int chunk = new DenseLayout(g, c).ChunkK(0);
                var cost = d.CostOf(g);
                return (IReadOnlyList<string>)[g.Name, Name, ShapeUtil.Format(g.Input.Type.Shape), ShapeUtil.Format(g.Output.Type.Shape), "i8, i8, i32, i8",
                    $"{g.Tiling!.RowBlocks}x{g.Tiling.ColTiles}", $"{chunk}/{g.K}", $"{cost.Cycles}", $"{cost.OffChipBytes}"];
            }).ToList(), NumericColumns: 2);
    }
}
