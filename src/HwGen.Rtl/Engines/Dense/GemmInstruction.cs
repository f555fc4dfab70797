using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Reference;
using HwGen.Rtl.Program;

namespace HwGen.Rtl.Engines.Dense;

/// <summary>
/// GEMM: one chunk of the reduction of one row block and column tile on the MAC array, whose rows split the reduction:
/// per weight line (ArrayRows inputs x ArrayCols columns, column-major: byte c·ArrayRows + r), per row of the block, one
/// activation line (ArrayRows inputs of that row), summed by an adder tree per column. First starts the accumulators
/// from the bias, loading the column parameters unless the engine still holds them (<see cref="LoadParams"/>); Last
/// hands them to the drain, which requantizes and writes the output tile while the next GEMM runs. The table-lookup ternary
/// engine's TLMM is a GEMM whose weight lines are packed (<see cref="WeightOf"/>).
/// </summary>
public record Gemm(QGemm Layer, int Block, int ColTile, int FirstK) : Instruction
{
    public bool First { get; init; }
    public bool Last { get; init; }
    /// <summary>Read the parameter block (first GEMMs only); false when the engine's previous GEMM was of the same tile,
    /// so its parameter registers already hold it.</summary>
    public bool LoadParams { get; init; }
    public int ActLine { get; init; }
    public int WeightLine { get; init; }
    /// <summary>Weight lines: ArrayRows inputs each.</summary>
    public int Lines { get; init; }
    /// <summary>Lines read from the weight chunk: <see cref="Lines"/>, or more when an engine interleaves other lines (BitMoD's group
    /// headers).</summary>
    public virtual int WeightLines => Lines;
    /// <summary>Activation rows of the block.</summary>
    public int Rows { get; init; }
    public int ParamLine { get; init; }
    public int OutLine { get; init; }
    public int Cols { get; init; }

    public static readonly InstructionFormat Layout = new("GEMM", 3,
    [
        new("first", 0, 4, 1, FieldKind.Bits, i => ((Gemm)i).First ? 1 : 0),
        new("last", 0, 5, 1, FieldKind.Bits, i => ((Gemm)i).Last ? 1 : 0),
        new("load_params", 0, 6, 1, FieldKind.Bits, i => ((Gemm)i).LoadParams ? 1 : 0),
        new("act_base", 1, 0, 32, FieldKind.Line, i => ((Gemm)i).ActLine),
        new("w_base", 2, 0, 32, FieldKind.Line, i => ((Gemm)i).WeightLine),
        new("klen", 3, 0, 32, FieldKind.Bits, i => ((Gemm)i).WeightLines),
        new("param_base", 4, 0, 32, FieldKind.Line, i => ((Gemm)i).ParamLine),
        new("out_base", 5, 0, 32, FieldKind.Line, i => ((Gemm)i).OutLine),
        new("ncols", 6, 0, 8, FieldKind.Bits, i => ((Gemm)i).Cols),
        new("zx8", 6, 8, 8, FieldKind.Signed, i => ((Gemm)i).Layer.InputZeroPoint),
        new("nrows", 6, 16, 8, FieldKind.Bits, i => ((Gemm)i).Rows),
        new("olines", 6, 24, 8, FieldKind.Bits, i => ((Gemm)i).OutLinesPerRow),
        new("zy", 7, 0, 8, FieldKind.Signed, i => ((Gemm)i).Layer.OutputZeroPoint),
        new("qmin", 7, 8, 8, FieldKind.Signed, i => ((Gemm)i).Layer.ClampMin),
        new("qmax", 7, 16, 8, FieldKind.Signed, i => ((Gemm)i).Layer.ClampMax),
    ]);

    public override InstructionFormat Format => Layout;
    public override string Unit => DenseEngine.Id;

    /// <summary>Output lines per row: the tile's columns in lines of ArrayRows features.</summary>
    public int OutLinesPerRow => (Cols + Layer.Tiling!.Rows - 1) / Layer.Tiling.Rows;

    /// <summary>Activations in through port B, weights and parameters through port C, results out through port A (the drain).</summary>
    public override IEnumerable<Access> Accesses(HwConfig c)
    {
        yield return Access.Read(ActLine, (long)Lines * Rows, SpadPort.B);
        yield return Access.Read(WeightLine, WeightLines, SpadPort.C);
        if (LoadParams) yield return Access.Read(ParamLine, DenseEngine.ParamLines(c), SpadPort.C);
        if (Last) yield return Access.WriteA(OutLine, (long)OutLinesPerRow * Rows);
    }
    public override string Comment => $"{Layer.Name}: block {Block} tile {ColTile} k {FirstK}..+{Math.Min(Lines * Layer.Tiling!.Rows, Layer.K - FirstK)}";
    protected override string Text =>
        $"GEMM  act={ActLine} w={WeightLine} k={Lines} rows={Rows} param={ParamLine} out={OutLine} cols={Cols}{(First ? " first" : "")}{(LoadParams ? " params" : "")}{(Last ? " last" : "")}";

    /// <summary>Alone: PARAM (lines + 1, when it loads them), MAC (lines x rows + 1), then for the last one the copy to the
    /// drain and the drain (rows x output lines + 1); <see cref="DenseTimer"/> overlaps the drain with the next GEMM.</summary>
    public override long Cycles(HwConfig c) => new DenseTimer(c).Take(this, 0).Retire;

    /// <summary>The MAC array's registers between GEMMs: the loaded column parameters and the accumulators (per block row).</summary>
    public sealed class State
    {
        public int[] Bias = [], Mult = [], Shift = [];
        public long[,] Acc = new long[0, 0];
    }

    /// <summary>First: parameters from ParamLine, acc = bias; then for each weight line kl and row m, acc[m][c] += sum over r of
    /// (act[kl·rows + m][r] - zx) · w[kl][c·ArrayRows + r] (int32, as the RTL wraps); Last: row m's columns requantized into
    /// lines OutLine + l·rows + m, ArrayRows columns to a line, zero past ncols.</summary>
    public override void Execute(Machine m, DecodedFields f)
    {
        var c = m.Config;
        var s = m.State<State>();
        int r = c.ArrayRows, cols = c.ArrayCols, rows = f.Int("nrows");
        if (rows < 1 || rows > r) throw new InstructionSimulator.ProgramException($"a GEMM of {rows} rows on {r} array rows");
        if (f.Flag("load_params"))
        {
            var p = Enumerable.Range(0, DenseEngine.ParamLines(c)).SelectMany(i => m.Line(f["param_base"] + i)).ToArray();
            s.Bias = Enumerable.Range(0, cols).Select(n => BitConverter.ToInt32(p, DenseEngine.BiasByte(n, c))).ToArray();
            s.Mult = Enumerable.Range(0, cols).Select(n => BitConverter.ToInt32(p, DenseEngine.MultiplierByte(n, c))).ToArray();
            s.Shift = Enumerable.Range(0, cols).Select(n => p[DenseEngine.ShiftByte(n, c)] & 63).ToArray();
        }
        if (f.Flag("first"))
        {
            if (s.Bias.Length == 0) throw new InstructionSimulator.ProgramException("a GEMM starts from parameters no GEMM loaded");
            s.Acc = new long[r, cols];
            for (int row = 0; row < r; row++) for (int n = 0; n < cols; n++) s.Acc[row, n] = s.Bias[n];
        }
        else if (s.Acc.Length == 0) throw new InstructionSimulator.ProgramException("a GEMM continues a reduction no GEMM started");
        Reduce(m, f, s.Acc, rows);
        if (!f.Flag("last")) return;
        int zy = f.Int("zy"), qmin = f.Int("qmin"), qmax = f.Int("qmax"), ncols = f.Int("ncols");
        for (int l = 0; l < f["olines"]; l++)
            for (int row = 0; row < rows; row++)
            {
                var line = m.Line(f["out_base"] + l * rows + row);
                Array.Clear(line);
                for (int i = 0; i < r && l * r + i < ncols; i++)
                    line[i] = (byte)(sbyte)QuantMath.Requantize(s.Acc[row, l * r + i], s.Mult[l * r + i], s.Shift[l * r + i], zy, qmin, qmax);
            }
    }

    /// <summary>The reduction: for each weight line kl and row m, acc[m][c] += sum over r of (act[kl·rows + m][r] - zx) · w[kl][c, r]
    /// (int32, as the RTL wraps).</summary>
    protected virtual void Reduce(Machine m, DecodedFields f, long[,] acc, int rows)
    {
        var c = m.Config;
        long act = f["act_base"], w = f["w_base"], klen = f["klen"];
        int zx = f.Int("zx8");
        for (long kl = 0; kl < klen; kl++)
        {
            var wl = m.Line(w + kl);
            for (int row = 0; row < rows; row++)
            {
                var a = m.Line(act + kl * rows + row);
                for (int n = 0; n < c.ArrayCols; n++)
                {
                    long sum = 0;
                    for (int i = 0; i < c.ArrayRows; i++) sum += ((sbyte)a[i] - zx) * WeightOf(wl, n, i, c);
                    acc[row, n] = (int)(acc[row, n] + sum);
                }
            }
        }
    }

    /// <summary>The weight of input <paramref name="input"/> of a weight line for column <paramref name="col"/>: byte col·ArrayRows + input.</summary>
    protected virtual int WeightOf(byte[] line, int col, int input, HwConfig c) => (sbyte)line[col * c.ArrayRows + input];

    /// <summary>A first GEMM right after a GEMM of the same layer and column tile keeps the parameters the engine holds.</summary>
    public override Instruction After(Instruction? previous) =>
        First && previous is Gemm p && ReferenceEquals(p.Layer, Layer) && p.ColTile == ColTile ? this with { LoadParams = false } : this;

    /// <summary>The next reduction lines of the same tile, activation and weight lines both contiguous: one GEMM.</summary>
    public override Instruction? MergedWith(Instruction next, HwConfig c) =>
        next is Gemm g && !Last && !g.First && ReferenceEquals(g.Layer, Layer) && g.Block == Block && g.ColTile == ColTile && g.Rows == Rows
        && ActLine + (long)Lines * Rows == g.ActLine && WeightLine + WeightLines == g.WeightLine && Cols == g.Cols
            ? this with { Lines = Lines + g.Lines, Last = g.Last, OutLine = g.Last ? g.OutLine : OutLine }
            : null;
}

/// <summary>
/// The dense engine's exact timing with a memory that never stalls (templates/hwgen_dense_engine.v.sbn). A GEMM taken in
/// cycle a loads its parameters in the next ParamLines + 1 cycles (when it does), then issues lines × rows MACs and
/// accumulates the last one in the cycle after (t = n). A last GEMM copies its accumulators to the drain in the cycle after
/// that, or once the drain is in its last write; the engine can take the next GEMM in the copy cycle, and the drain
/// writes rows × output lines lines, one a cycle from two cycles after the copy, retiring with the last. Any other GEMM
/// finishes and retires at t = n, or once no drain is under way, so GEMMs retire in order.
/// </summary>
public class DenseTimer(HwConfig config) : IUnitTimer
{
    long ready, drainEnd = long.MinValue;
    protected HwConfig Config => config;

    /// <summary>The cycle after the last MAC issue of <paramref name="g"/>, whose first issue is in cycle <paramref name="first"/>:
    /// one a cycle, lines × rows.</summary>
    protected virtual long IssueEnd(Gemm g, long first) => first + (long)g.Lines * g.Rows;

    /// <summary>The first cycle the accumulators may be copied to the drain (after the last issue's data).</summary>
    protected virtual long CopyReady() => long.MinValue;

    public long ReadyFor(Instruction next) => ready;

    public UnitTime Take(Instruction i, long a)
    {
        var g = (Gemm)i;
        long macEnd = IssueEnd(g, a + 1 + (g.LoadParams ? DenseEngine.ParamLines(config) + 1 : 0));
        if (!g.Last)
        {
            ready = Math.Max(macEnd, drainEnd + 1);
            return new UnitTime(ready, ready);
        }
        long copy = Math.Max(Math.Max(macEnd + 1, drainEnd), CopyReady());
        ready = copy;
        drainEnd = copy + 1 + (long)g.Rows * g.OutLinesPerRow;
        return new UnitTime(ready, drainEnd);
    }
}
