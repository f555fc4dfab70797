using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Reference;
using HwGen.Rtl.Program;

namespace HwGen.Rtl.Engines.Eltwise;

/// <summary>
/// EADD: for each of <see cref="Lines"/> lines, lane i computes the requantized sum of byte i of line <see cref="SrcA"/> + l and
/// byte i of line <see cref="SrcB"/> + l (<see cref="QuantMath.AddRequantize"/>, the fields carry the op's parameters) and
/// writes it to byte i of line <see cref="DstLine"/> + l. Both operand tiles have the result's layout. <see cref="Serial"/>:
/// both operands are read through port B, in turn (they share a bank); else A through B and B through C at once.
/// </summary>
public sealed record EAdd(QAdd Op, int Block, int FirstFeature) : Instruction
{
    public int SrcA { get; init; }
    public int SrcB { get; init; }
    public int DstLine { get; init; }
    public int Lines { get; init; }
    public bool Serial { get; init; }

    public static readonly InstructionFormat Layout = new("EADD", 5,
    [
        new("srca", 1, 0, 32, FieldKind.Line, i => ((EAdd)i).SrcA),
        new("srcb", 2, 0, 32, FieldKind.Line, i => ((EAdd)i).SrcB),
        new("dst", 3, 0, 32, FieldKind.Line, i => ((EAdd)i).DstLine),
        new("nlines", 4, 0, 32, FieldKind.Bits, i => ((EAdd)i).Lines),
        new("za", 5, 0, 8, FieldKind.Signed, i => ((EAdd)i).Op.ZeroPointA),
        new("zb", 5, 8, 8, FieldKind.Signed, i => ((EAdd)i).Op.ZeroPointB),
        new("zy", 5, 16, 8, FieldKind.Signed, i => ((EAdd)i).Op.OutputZeroPoint),
        new("shift", 5, 24, 6, FieldKind.Bits, i => ((EAdd)i).Op.Shift!.Value),
        new("serial", 5, 30, 1, FieldKind.Bits, i => ((EAdd)i).Serial ? 1 : 0),
        new("ma", 6, 0, 16, FieldKind.Signed, i => ((EAdd)i).Op.Multipliers![0]),
        new("mb", 6, 16, 16, FieldKind.Signed, i => ((EAdd)i).Op.Multipliers![1]),
        new("lo", 7, 0, 8, FieldKind.Signed, i => ((EAdd)i).Op.ClampMin),
        new("hi", 7, 8, 8, FieldKind.Signed, i => ((EAdd)i).Op.ClampMax),
    ]);

    public override InstructionFormat Format => Layout;
    public override string Unit => EltwiseEngine.Id;

    public override IEnumerable<Access> Accesses(HwConfig c) =>
        [Access.Read(SrcA, Lines, SpadPort.B), Access.Read(SrcB, Lines, Serial ? SpadPort.B : SpadPort.C), Access.WriteA(DstLine, Lines)];

    public override string Comment => $"{Op.Name}: block {Block} f {FirstFeature}";
    protected override string Text => $"EADD  a={SrcA} b={SrcB} -> dst={DstLine} lines={Lines}{(Serial ? " serial" : "")}";

    /// <summary>Reads from the cycle after it is taken: a line pair per cycle (two cycles when serial); a pair's sums are
    /// registered the cycle after it arrives and written the cycle after that; it retires the cycle after the last write.</summary>
    public static long CyclesOf(int lines, bool serial) => (serial ? 2L : 1L) * lines + 3;

    public override long Cycles(HwConfig c) => CyclesOf(Lines, Serial);

    /// <summary>Every lane of every line (bytes past a tile's features too, as the RTL does), from the decoded fields.</summary>
    public override void Execute(Machine m, DecodedFields f)
    {
        int r = m.Config.ArrayRows, s = f.Int("shift");
        if (s < 1) throw new InstructionSimulator.ProgramException($"EADD with shift {s}");
        for (long i = 0; i < f["nlines"]; i++)
        {
            byte[] a = m.Line(f["srca"] + i), b = m.Line(f["srcb"] + i);
            var y = new byte[r];
            for (int k = 0; k < r; k++)
                y[k] = (byte)(sbyte)QuantMath.AddRequantize((sbyte)a[k], f.Int("za"), f.Int("ma"), (sbyte)b[k], f.Int("zb"), f.Int("mb"),
                    s, f.Int("zy"), f.Int("lo"), f.Int("hi"));
            var line = m.Line(f["dst"] + i);
            Array.Clear(line);
            y.CopyTo(line, 0);
        }
    }
}
