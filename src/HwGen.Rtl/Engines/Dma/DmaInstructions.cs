using HwGen.Core;
using HwGen.Rtl.Program;

namespace HwGen.Rtl.Engines.Dma;

/// <summary>
/// The controller's own instructions: LOAD and STORE move whole scratchpad lines between off-chip memory (port words)
/// and the scratchpad, END finishes the run. Fields: w1 off-chip word address, w2 scratchpad line, w3 line count.
/// </summary>
public static class Dma
{
    public const string Unit = "dma";

    public static readonly InstructionFormat EndFormat = new("END", 0, []);

    static IReadOnlyList<Field> Transfer() =>
    [
        new("ext", 1, 0, 32, FieldKind.Bits, i => ((Transfer)i).Ext),
        new("spad_base", 2, 0, 32, FieldKind.Line, i => ((Transfer)i).SpadLine),
        new("nlines", 3, 0, 32, FieldKind.Bits, i => ((Transfer)i).Lines),
    ];

    public static readonly InstructionFormat LoadFormat = new("LOAD", 1, Transfer());
    public static readonly InstructionFormat StoreFormat = new("STORE", 2, Transfer());

    /// <summary>Every format the controller executes itself.</summary>
    public static IReadOnlyList<InstructionFormat> Formats { get; } = [EndFormat, LoadFormat, StoreFormat];
}

/// <summary>Ends the program: the controller raises done once every unit is idle (it runs on no unit's queue).</summary>
public sealed record End : Instruction
{
    public override InstructionFormat Format => Dma.EndFormat;
    public override string Unit => Dma.Unit;
    public override string Comment => "";
    protected override string Text => "END";
    public override long Cycles(HwConfig c) => 0;
    public override void Execute(Machine m, DecodedFields f) { }
}

/// <summary>
/// A LOAD or STORE of <see cref="Lines"/> lines between off-chip word <see cref="Ext"/> and scratchpad line <see cref="SpadLine"/>,
/// for tile tensors <see cref="FirstTensor"/> to <see cref="LastTensor"/> (names for the comment).
/// </summary>
public abstract record Transfer(long Ext, int SpadLine, int Lines, string FirstTensor) : Instruction
{
    public string LastTensor { get; init; } = FirstTensor;
    public override string Unit => Dma.Unit;
    protected abstract string Verb { get; }
    public override string Comment =>
        $"{Owner?.Name}: {Verb} {FirstTensor}{(LastTensor != FirstTensor ? " .. " + LastTensor : "")}{(IsFinal ? " (output)" : "")}";
    /// <summary>A store after the last task: a graph output leaving the scratchpad.</summary>
    public bool IsFinal { get; init; }

    public override long OffChipBytes(HwConfig c) => (long)Lines * c.BeatsPerLine * c.PortBytes;

    /// <summary>Byte offset off chip of line <paramref name="i"/> of the transfer starting at word <paramref name="ext"/> (a line takes BeatsPerLine words).</summary>
    protected static long ExtByte(Machine m, long ext, int i)
    {
        long b = (ext + (long)i * m.Config.BeatsPerLine) * m.Config.PortBytes;
        return b >= 0 && b + (long)m.Config.BeatsPerLine * m.Config.PortBytes <= m.Memory.Length ? b
            : throw new InstructionSimulator.ProgramException($"off-chip word {ext + (long)i * m.Config.BeatsPerLine} is outside memory");
    }

    /// <summary>The next lines at the next addresses on both sides: one transfer (it keeps this one's owner).</summary>
    public override Instruction? MergedWith(Instruction next, HwConfig c) =>
        next is Transfer t && t.GetType() == GetType()
        && Ext + (long)Lines * c.BeatsPerLine == t.Ext && SpadLine + Lines == t.SpadLine
            ? this with { Lines = Lines + t.Lines, LastTensor = t.LastTensor }
            : null;
}

public sealed record Load(long Ext, int SpadLine, int Lines, string FirstTensor) : Transfer(Ext, SpadLine, Lines, FirstTensor)
{
    public override InstructionFormat Format => Dma.LoadFormat;
    protected override string Verb => "load";
    /// <summary>Lines written through the DMA's port A.</summary>
    public override IEnumerable<Access> Accesses(HwConfig c) => [Access.WriteA(SpadLine, Lines)];
    protected override string Text => $"LOAD  ext={Ext} -> spad={SpadLine} lines={Lines}";
    /// <summary>The start cycle, one to enter LOAD, n lines of BeatsPerLine reads each, the last response, done.</summary>
    public override long Cycles(HwConfig c) => (long)Lines * c.BeatsPerLine + 4;

    public override void Execute(Machine m, DecodedFields f)
    {
        long ext = f["ext"], spad = f["spad_base"];
        for (int i = 0; i < f["nlines"]; i++) Array.Copy(m.Memory, ExtByte(m, ext, i), m.Line(spad + i), 0, m.Config.LineBytes);
    }
}

public sealed record Store(long Ext, int SpadLine, int Lines, string FirstTensor) : Transfer(Ext, SpadLine, Lines, FirstTensor)
{
    public override InstructionFormat Format => Dma.StoreFormat;
    protected override string Verb => "store";
    /// <summary>Lines read through the DMA's port B.</summary>
    public override IEnumerable<Access> Accesses(HwConfig c) => [Access.Read(SpadLine, Lines, SpadPort.B)];
    protected override string Text => $"STORE spad={SpadLine} -> ext={Ext} lines={Lines}";
    /// <summary>The start cycle, one to enter STORE; per line: read, latch, then BeatsPerLine writes; done.</summary>
    public override long Cycles(HwConfig c) => (long)Lines * (2 + c.BeatsPerLine) + 3;

    public override void Execute(Machine m, DecodedFields f)
    {
        int span = m.Config.BeatsPerLine * m.Config.PortBytes;
        long ext = f["ext"], spad = f["spad_base"];
        for (int i = 0; i < f["nlines"]; i++)
        {
            long at = ExtByte(m, ext, i);
            Array.Copy(m.Line(spad + i), 0, m.Memory, at, m.Config.LineBytes);
            Array.Fill(m.Memory, (byte)0, (int)(at + m.Config.LineBytes), span - m.Config.LineBytes);
        }
    }
}
