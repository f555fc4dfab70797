using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Reference;
using HwGen.Rtl.Program;

namespace HwGen.Rtl.Engines.Dense;

/// <summary>
/// GEMM: one chunk of the reduction of one row block and column tile on the MAC array. First starts the accumulators
/// from the bias, loading the column parameters unless the engine still holds them (<see cref="LoadParams"/>); Last
/// requantizes and writes the output tile.
/// </summary>
public sealed record Gemm(QGemm Layer, int Block, int ColTile, int FirstK) : Instruction
{
    public bool First { get; init; }
    public bool Last { get; init; }
    /// <summary>Read the parameter block (first GEMMs only); false when the engine's previous GEMM was of the same tile,
    /// so its parameter registers already hold it.</summary>
    public bool LoadParams { get; init; }
    public int ActLine { get; init; }
    public int WeightLine { get; init; }
    public int Lines { get; init; }
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
        new("klen", 3, 0, 32, FieldKind.Bits, i => ((Gemm)i).Lines),
        new("param_base", 4, 0, 32, FieldKind.Line, i => ((Gemm)i).ParamLine),
        new("out_base", 5, 0, 32, FieldKind.Line, i => ((Gemm)i).OutLine),
        new("ncols", 6, 0, 8, FieldKind.Bits, i => ((Gemm)i).Cols),
        new("zx8", 6, 8, 8, FieldKind.Signed, i => ((Gemm)i).Layer.InputZeroPoint),
        new("zy", 7, 0, 8, FieldKind.Signed, i => ((Gemm)i).Layer.OutputZeroPoint),
        new("qmin", 7, 8, 8, FieldKind.Signed, i => ((Gemm)i).Layer.ClampMin),
        new("qmax", 7, 16, 8, FieldKind.Signed, i => ((Gemm)i).Layer.ClampMax),
    ]);

    public override InstructionFormat Format => Layout;
    public override string Unit => DenseEngine.Id;
    /// <summary>Activations in and results out through port A, weights and parameters through port B.</summary>
    public override IEnumerable<Access> Accesses(HwConfig c)
    {
        yield return Access.Read(ActLine, Lines, SpadPort.A);
        yield return Access.Read(WeightLine, Lines, SpadPort.B);
        if (LoadParams) yield return Access.Read(ParamLine, DenseEngine.ParamLines(c), SpadPort.B);
        if (Last) yield return Access.WriteA(OutLine, Cols);
    }
    public override string Comment => $"{Layer.Name}: block {Block} tile {ColTile} k {FirstK}..+{Lines}";
    protected override string Text =>
        $"GEMM  act={ActLine} w={WeightLine} k={Lines} param={ParamLine} out={OutLine} cols={Cols}{(First ? " first" : "")}{(LoadParams ? " params" : "")}{(Last ? " last" : "")}";

    /// <summary>PARAM (lines + 1, when it loads them), MAC (k + 1), WRITE (cols + 1, last only); the engine takes the next
    /// GEMM in the last of them.</summary>
    public override long Cycles(HwConfig c) => (LoadParams ? DenseEngine.ParamLines(c) + 1 : 0) + Lines + 1 + (Last ? Cols + 1 : 0);

    /// <summary>The MAC array's registers between GEMMs: the loaded column parameters and the accumulators.</summary>
    public sealed class State
    {
        public int[] Bias = [], Mult = [], Shift = [];
        public long[,] Acc = new long[0, 0];
    }

    /// <summary>First: parameters from ParamLine, acc = bias; then acc[r][c] += (act[k][r] - zx) * w[k][c] for each of the
    /// Lines reduction lines (int32, as the RTL wraps); Last: column c requantized into line OutLine + c.</summary>
    public override void Execute(Machine m, DecodedFields f)
    {
        var c = m.Config;
        var s = m.State<State>();
        int rows = c.ArrayRows, cols = c.ArrayCols;
        long act = f["act_base"], w = f["w_base"], klen = f["klen"];
        int zx = f.Int("zx8");
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
            s.Acc = new long[rows, cols];
            for (int r = 0; r < rows; r++) for (int n = 0; n < cols; n++) s.Acc[r, n] = s.Bias[n];
        }
        else if (s.Acc.Length == 0) throw new InstructionSimulator.ProgramException("a GEMM continues a reduction no GEMM started");
        for (long k = 0; k < klen; k++)
        {
            var a = m.Line(act + k);
            var wl = m.Line(w + k);
            for (int r = 0; r < rows; r++)
                for (int n = 0; n < cols; n++)
                    s.Acc[r, n] = (int)(s.Acc[r, n] + ((sbyte)a[r] - zx) * (sbyte)wl[n]);
        }
        if (!f.Flag("last")) return;
        int zy = f.Int("zy"), qmin = f.Int("qmin"), qmax = f.Int("qmax");
        for (int n = 0; n < f["ncols"]; n++)
        {
            var line = m.Line(f["out_base"] + n);
            Array.Clear(line);
            for (int r = 0; r < rows; r++)
                line[r] = (byte)(sbyte)QuantMath.Requantize(s.Acc[r, n], s.Mult[n], s.Shift[n], zy, qmin, qmax);
        }
    }

    /// <summary>A first GEMM right after a GEMM of the same layer and column tile keeps the parameters the engine holds.</summary>
    public override Instruction After(Instruction? previous) =>
        First && previous is Gemm p && ReferenceEquals(p.Layer, Layer) && p.ColTile == ColTile ? this with { LoadParams = false } : this;

    /// <summary>The next reduction lines of the same tile, activation and weight lines both contiguous: one GEMM.</summary>
    public override Instruction? MergedWith(Instruction next, HwConfig c) =>
        next is Gemm g && !Last && !g.First && ReferenceEquals(g.Layer, Layer) && g.Block == Block && g.ColTile == ColTile
        && ActLine + Lines == g.ActLine && WeightLine + Lines == g.WeightLine && Cols == g.Cols
            ? this with { Lines = Lines + g.Lines, Last = g.Last, OutLine = g.Last ? g.OutLine : OutLine }
            : null;
}
