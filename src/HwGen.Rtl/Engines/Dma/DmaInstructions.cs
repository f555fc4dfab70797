using System.Numerics;
using HwGen.Core;
using HwGen.Rtl.Program;

namespace HwGen.Rtl.Engines.Dma;

/// <summary>
/// The controller's own instructions: LOAD and STORE move scratchpad lines between off-chip memory and the scratchpad,
/// END finishes the run. Fields: w1 off-chip word address, w2 scratchpad line, w3 line count, w4 beat count, w5 the
/// off-chip slot of a line (<see cref="LineSlot"/>: beats per line, or log2 of lines per beat).
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
        new("nbeats", 4, 0, 32, FieldKind.Bits, i => ((Transfer)i).DataBeats),
        new("bpl", 5, 0, 8, FieldKind.Bits, i => ((Transfer)i).Slot.BeatsPerLine),
        new("lpb_log2", 5, 8, 3, FieldKind.Bits, i => ((Transfer)i).Slot.LinesPerBeatLog2),
    ];

    public static readonly InstructionFormat LoadFormat = new("LOAD", 1, Transfer());
    public static readonly InstructionFormat StoreFormat = new("STORE", 2, Transfer());

    /// <summary>Every format the controller executes itself.</summary>
    public static IReadOnlyList<InstructionFormat> Formats { get; } = [EndFormat, LoadFormat, StoreFormat];

    /// <summary>Beats of the widest slot a line can take: the DMA's line buffer.</summary>
    public static int MaxBeatsPerLine(HwConfig c) => LineSlot.For(c.LineBytes, c).BeatsPerLine;
}

/// <summary>
/// Where a line lies off chip: its <see cref="Bytes"/> of data (the first bytes of the scratchpad line) in a slot of
/// <see cref="SlotBytes"/>, a power of two up to one port beat (lines then pack 2^k to a beat) or whole beats. Tensors
/// pack their lines into slots no wider than their data, so a line of 1 byte (a row block of one row) moves 1 byte,
/// not a whole scratchpad line; a transfer starts at a beat.
/// </summary>
public readonly record struct LineSlot(int Bytes, int SlotBytes, int PortBytes)
{
    public static LineSlot For(int bytes, HwConfig c)
    {
        if (bytes < 1 || bytes > c.LineBytes) throw new ArgumentOutOfRangeException(nameof(bytes), $"a line holds 1 to {c.LineBytes} bytes, not {bytes}");
        int p = c.PortBytes;
        return new(bytes, bytes <= p ? (int)BitOperations.RoundUpToPowerOf2((uint)bytes) : (bytes + p - 1) / p * p, p);
    }

    public int BeatsPerLine => SlotBytes >= PortBytes ? SlotBytes / PortBytes : 1;
    public int LinesPerBeatLog2 => SlotBytes >= PortBytes ? 0 : BitOperations.Log2((uint)(PortBytes / SlotBytes));
    /// <summary>Port beats that carry <paramref name="lines"/> lines.</summary>
    public long Beats(long lines) => SlotBytes >= PortBytes ? lines * BeatsPerLine : (lines + (1L << LinesPerBeatLog2) - 1) >> LinesPerBeatLog2;
    /// <summary>Whether <paramref name="lines"/> lines end exactly at a beat (a transfer of them can be continued by another).</summary>
    public bool EndsAtBeat(long lines) => lines * SlotBytes % PortBytes == 0;
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
/// each line in a <see cref="LineSlot"/> off chip, for tile tensors <see cref="FirstTensor"/> to <see cref="LastTensor"/> (names
/// for the comment).
/// </summary>
public abstract record Transfer(long Ext, int SpadLine, int Lines, LineSlot Slot, string FirstTensor) : Instruction
{
    public string LastTensor { get; init; } = FirstTensor;
    public override string Unit => Dma.Unit;
    protected abstract string Verb { get; }
    public override string Comment =>
        $"{Owner?.Name}: {Verb} {FirstTensor}{(LastTensor != FirstTensor ? " .. " + LastTensor : "")}{(IsFinal ? " (output)" : "")}";
    /// <summary>A store after the last task: a graph output leaving the scratchpad.</summary>
    public bool IsFinal { get; init; }

    public long DataBeats => Slot.Beats(Lines);
    public override long OffChipBytes(HwConfig c) => DataBeats * c.PortBytes;
    protected string SlotText => Slot.SlotBytes == Slot.Bytes ? $"slot={Slot.SlotBytes}" : $"slot={Slot.SlotBytes}({Slot.Bytes})";

    /// <summary>Cycles the DMA takes for this transfer alone, from taking it to retiring it.</summary>
    public override long Cycles(HwConfig c) => new DmaTimer().Take(this, 0).Retire;

    /// <summary>The decoded slot: line bytes beyond it are zero on chip, slot bytes beyond the line zero off chip.</summary>
    protected static int SlotOf(Machine m, DecodedFields f)
    {
        int p = m.Config.PortBytes;
        return f["lpb_log2"] > 0 ? p >> f.Int("lpb_log2") : f.Int("bpl") * p;
    }

    /// <summary>Off-chip bytes [first, first + count), or an error naming the word outside memory.</summary>
    protected static long Span(Machine m, long first, long count) =>
        first >= 0 && first + count <= m.Memory.Length ? first
            : throw new InstructionSimulator.ProgramException($"off-chip bytes [{first}, {first + count}) are outside memory");

    /// <summary>The next lines at the next addresses on both sides, in the same slots, this one ending at a beat: one transfer
    /// (it keeps this one's owner).</summary>
    public override Instruction? MergedWith(Instruction next, HwConfig c) =>
        next is Transfer t && t.GetType() == GetType() && t.Slot == Slot && Slot.EndsAtBeat(Lines)
        && Ext + DataBeats == t.Ext && SpadLine + Lines == t.SpadLine
            ? this with { Lines = Lines + t.Lines, LastTensor = t.LastTensor }
            : null;
}

public sealed record Load(long Ext, int SpadLine, int Lines, LineSlot Slot, string FirstTensor) : Transfer(Ext, SpadLine, Lines, Slot, FirstTensor)
{
    public override InstructionFormat Format => Dma.LoadFormat;
    protected override string Verb => "load";
    /// <summary>Lines written through the DMA's port A.</summary>
    public override IEnumerable<Access> Accesses(HwConfig c) => [Access.WriteA(SpadLine, Lines)];
    protected override string Text => $"LOAD  ext={Ext} -> spad={SpadLine} lines={Lines} {SlotText}";

    public override void Execute(Machine m, DecodedFields f)
    {
        int slot = SlotOf(m, f);
        long at = Span(m, f["ext"] * m.Config.PortBytes, f["nbeats"] * m.Config.PortBytes);
        for (int i = 0; i < f["nlines"]; i++)
        {
            var line = m.Line(f["spad_base"] + i);
            int kept = Math.Min(slot, line.Length);
            Array.Clear(line);
            Array.Copy(m.Memory, Span(m, at + (long)i * slot, kept), line, 0, kept);
        }
    }
}

public sealed record Store(long Ext, int SpadLine, int Lines, LineSlot Slot, string FirstTensor) : Transfer(Ext, SpadLine, Lines, Slot, FirstTensor)
{
    public override InstructionFormat Format => Dma.StoreFormat;
    protected override string Verb => "store";
    /// <summary>Lines read through the DMA's port B.</summary>
    public override IEnumerable<Access> Accesses(HwConfig c) => [Access.Read(SpadLine, Lines, SpadPort.B)];
    protected override string Text => $"STORE spad={SpadLine} -> ext={Ext} lines={Lines} {SlotText}";

    /// <summary>Whole beats: each line's slot, then zeros to the end of the last beat.</summary>
    public override void Execute(Machine m, DecodedFields f)
    {
        int slot = SlotOf(m, f);
        long at = Span(m, f["ext"] * m.Config.PortBytes, f["nbeats"] * m.Config.PortBytes);
        Array.Clear(m.Memory, (int)at, (int)(f["nbeats"] * m.Config.PortBytes));
        for (int i = 0; i < f["nlines"]; i++)
        {
            var line = m.Line(f["spad_base"] + i);
            int kept = Math.Min(slot, line.Length);
            Array.Copy(line, 0, m.Memory, Span(m, at + (long)i * slot, kept), kept);
        }
    }
}

/// <summary>
/// The DMA's exact timing with a memory that answers every read one cycle after the request (templates/hwgen_dma.v.sbn):
/// <list type="bullet">
/// <item>the request side takes a LOAD in cycle a and issues its beats from a+1 on, one per cycle while fewer than two
/// read beats are outstanding or waiting to be used up; it can take the next instruction in the cycle of its last request;</item>
/// <item>the response side uses beats in order, each from the cycle it arrives or the cycle after the previous one is used
/// up: a beat of whole-beat slots in one cycle (a line is written with its last beat), a beat of packed lines one line per
/// cycle; a load retires with its last line;</item>
/// <item>a STORE is taken only once every load before it retired, reads a line per cycle from a+1 on and sends its beats
/// from a+2 on without a gap: it retires (and the DMA can take the next instruction) at a+1+beats, or a+1+lines when lines
/// pack into beats.</item>
/// </list>
/// </summary>
public sealed class DmaTimer : IUnitTimer
{
    const int Descriptors = 4;
    long requestFree;
    readonly long[] used = [long.MinValue, long.MinValue];   // cycles the last two read beats were used up, older first
    long responseEnd = long.MinValue;
    readonly List<long> loadRetires = [];

    public long ReadyFor(Instruction next) => next switch
    {
        Store => Math.Max(requestFree, loadRetires.Count > 0 ? loadRetires[^1] + 1 : 0),
        Load => Math.Max(requestFree, loadRetires.Count >= Descriptors ? loadRetires[^Descriptors] + 1 : 0),
        _ => throw new InvalidOperationException($"the DMA does not run {next}"),
    };

    public UnitTime Take(Instruction i, long a)
    {
        switch (i)
        {
            case Load l:
            {
                long request = a, perBeat = 1L << l.Slot.LinesPerBeatLog2;
                bool packed = l.Slot.LinesPerBeatLog2 > 0;
                for (long j = 0, beats = l.DataBeats; j < beats; j++)
                {
                    request = Math.Max(request + 1, used[0] + 1);
                    long begin = Math.Max(request + 1, responseEnd + 1);
                    long d = packed ? Math.Min(perBeat, l.Lines - j * perBeat) : 1;
                    responseEnd = begin + d - 1;
                    (used[0], used[1]) = (used[1], responseEnd);
                }
                requestFree = request;
                loadRetires.Add(responseEnd);
                return new UnitTime(requestFree, responseEnd);
            }
            case Store s:
            {
                long end = a + 1 + (s.Slot.LinesPerBeatLog2 > 0 ? s.Lines : s.DataBeats);
                requestFree = end;
                return new UnitTime(end, end);
            }
            default:
                throw new InvalidOperationException($"the DMA does not run {i}");
        }
    }
}
