using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Reference;
using HwGen.Rtl.Program;

namespace HwGen.Rtl.Engines.ActMatMul;

/// <summary>
/// QMM: <see cref="ARows"/> consecutive output lines (rows i of a block) of a product of two activations, over part of the
/// reduction; the rows' A lines stay in the engine while B's lines stream past, each meeting every row. Dot mode (A·Bᵀ), over
/// one tile of the reduction: it reads the rows' <see cref="Groups"/> lines of A's tile (line <see cref="ALine"/> +
/// g·<see cref="AStride"/> + i), then for each of the <see cref="Rows"/> rows n of B's block the same groups of B (line
/// <see cref="BLine"/> + g·<see cref="BStride"/> + n), and row i adds Σ (a_i - za)(b - zb) over the group's lanes (the last
/// group's first <see cref="LastLanes"/>) to its accumulator n; <see cref="First"/> starts the accumulators, <see cref="Last"/>
/// writes row i's requantized line (lane n: output column n of the group) to <see cref="DstLine"/> + i. Axpy mode
/// (<see cref="Axpy"/>, A·B), over one block of B's rows: it reads the rows' A lines from <see cref="ALine"/>, then B's
/// <see cref="Rows"/> lines from <see cref="BLine"/> (rows k of the block, one group of output columns), and lane l of row i adds
/// (a_i[k] - za)(b_k[l] - zb) to its accumulator l.
/// </summary>
public sealed record Qmm(QMatMul Op, int Row, int Column) : Instruction
{
    public int ALine { get; init; }
    public int AStride { get; init; }
    public int BLine { get; init; }
    public int BStride { get; init; }
    public int Groups { get; init; }
    public int LastLanes { get; init; }
    public int Rows { get; init; }
    public int ARows { get; init; } = 1;
    public bool First { get; init; }
    public bool Last { get; init; }
    public bool Axpy { get; init; }
    public int DstLine { get; init; }

    public static readonly InstructionFormat Layout = new("QMM", 6,
    [
        new("a", 1, 0, 32, FieldKind.Line, i => ((Qmm)i).ALine),
        new("b", 2, 0, 32, FieldKind.Line, i => ((Qmm)i).BLine),
        new("dst", 3, 0, 32, FieldKind.Line, i => ((Qmm)i).DstLine),
        new("astride", 4, 0, 8, FieldKind.Bits, i => ((Qmm)i).AStride),
        new("bstride", 4, 8, 8, FieldKind.Bits, i => ((Qmm)i).BStride),
        new("ng", 4, 16, 8, FieldKind.Bits, i => ((Qmm)i).Groups),
        new("klast", 4, 24, 8, FieldKind.Bits, i => ((Qmm)i).LastLanes),
        new("nr", 5, 0, 8, FieldKind.Bits, i => ((Qmm)i).Rows),
        new("shift", 5, 8, 6, FieldKind.Bits, i => ((Qmm)i).Op.Shift!.Value),
        new("first", 5, 14, 1, FieldKind.Bits, i => ((Qmm)i).First ? 1 : 0),
        new("last", 5, 15, 1, FieldKind.Bits, i => ((Qmm)i).Last ? 1 : 0),
        new("mult", 5, 16, 16, FieldKind.Bits, i => ((Qmm)i).Op.Multiplier!.Value),
        new("za", 6, 0, 8, FieldKind.Signed, i => ((Qmm)i).Op.ZeroPointA),
        new("zb", 6, 8, 8, FieldKind.Signed, i => ((Qmm)i).Op.ZeroPointB),
        new("zy", 6, 16, 8, FieldKind.Signed, i => ((Qmm)i).Op.OutputZeroPoint),
        new("lo", 6, 24, 8, FieldKind.Signed, i => ((Qmm)i).Op.ClampMin),
        new("hi", 7, 0, 8, FieldKind.Signed, i => ((Qmm)i).Op.ClampMax),
        new("axpy", 7, 8, 1, FieldKind.Bits, i => ((Qmm)i).Axpy ? 1 : 0),
        new("na", 7, 16, 8, FieldKind.Bits, i => ((Qmm)i).ARows),
    ]);

    public override InstructionFormat Format => Layout;
    public override string Unit => ActMatMulEngine.Id;

    /// <summary>All reads through port B (A's lines first, then B's), the result through port A. A strided read declares the
    /// lines it spans.</summary>
    public override IEnumerable<Access> Accesses(HwConfig c)
    {
        yield return Access.Read(ALine, (Groups - 1L) * AStride + ARows, SpadPort.B);
        yield return Access.Read(BLine, (Groups - 1L) * BStride + Rows, SpadPort.B);
        if (Last) yield return Access.WriteA(DstLine, ARows);
    }

    public override string Comment => $"{Op.Name}: rows {Row}..+{ARows} columns {Column}..+{Rows}";
    protected override string Text =>
        $"QMM   {(Axpy ? "axpy" : "dot")} a={ALine}/{AStride}x{ARows} b={BLine}/{BStride} groups={Groups} rows={Rows}{(First ? " first" : "")}{(Last ? $" -> dst={DstLine}" : "")}";

    /// <summary>A read a cycle from the cycle after it is taken (the groups of A's rows, then of each row of B), the last sums one
    /// cycle after the last read arrives, then a write a cycle for each of A's rows (or one idle cycle when not last); it
    /// retires the cycle after that.</summary>
    public static long CyclesOf(int groups, int rows, int aRows, bool last) => (long)groups * (aRows + rows) + 2 + (last ? aRows : 1);
    public override long Cycles(HwConfig c) => CyclesOf(Groups, Rows, ARows, Last);

    /// <summary>The accumulators between the instructions of one output line.</summary>
    public sealed class State
    {
        public long[][] Acc = [];
    }

    public override void Execute(Machine m, DecodedFields f)
    {
        int r = m.Config.ArrayRows, ng = f.Int("ng"), nr = f.Int("nr"), klast = f.Int("klast"), na = f.Int("na");
        if (ng < 1 || nr < 1 || nr > r || klast < 1 || klast > r || na < 1 || na > r)
            throw new InstructionSimulator.ProgramException($"QMM of {ng} groups, {nr} rows of B, {na} of A, {klast} last lanes");
        var s = m.State<State>();
        if (f.Flag("first")) s.Acc = Enumerable.Range(0, r).Select(_ => new long[r]).ToArray();
        bool axpy = f.Flag("axpy");
        for (int n = 0; n < nr; n++)
            for (int g = 0; g < ng; g++)
            {
                byte[] b = m.Line(f["b"] + g * f["bstride"] + n);
                for (int i = 0; i < na; i++)
                {
                    byte[] a = m.Line(f["a"] + g * f["astride"] + i);
                    if (axpy)
                        for (int l = 0; l < r; l++) s.Acc[i][l] += ((sbyte)a[n] - f["za"]) * ((sbyte)b[l] - f["zb"]);
                    else
                        for (int k = 0; k < (g == ng - 1 ? klast : r); k++) s.Acc[i][n] += ((sbyte)a[k] - f["za"]) * ((sbyte)b[k] - f["zb"]);
                }
            }
        if (!f.Flag("last")) return;
        for (int i = 0; i < na; i++)
        {
            var line = m.Line(f["dst"] + i);
            Array.Clear(line);
            for (int n = 0; n < (axpy ? r : nr); n++)
                line[n] = (byte)(sbyte)QuantMath.Requantize(s.Acc[i][n], f.Int("mult"), f.Int("shift"), f.Int("zy"), f.Int("lo"), f.Int("hi"));
        }
    }
}
