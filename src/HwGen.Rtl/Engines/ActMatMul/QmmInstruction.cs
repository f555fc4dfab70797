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
/// (<see cref="Axpy"/>, A·B), over <see cref="Groups"/> blocks of B's rows: it reads the rows' A lines of each block g (line
/// <see cref="ALine"/> + g·<see cref="AStride"/> + i), then for each of the <see cref="Rows"/> rows n of the blocks, block by
/// block, B's line <see cref="BLine"/> + g·<see cref="BStride"/> + n (row k = n of block g, one group of output columns), and
/// lane l of row i adds (a_i[k] - za)(b_k[l] - zb) to its accumulator l (blocks after the first: <see cref="MergedWith"/>).
/// <see cref="Lane0"/> shifts the lanes where a block's sequence does not start at its first row (a batch of sequences whose
/// length is no multiple of arrayRows): in dot mode row n of B goes to accumulator <see cref="Lane0"/> + n (and
/// <see cref="First"/> starts only the accumulators it touches, so a group of output columns whose rows of B lie in two
/// blocks is two QMMs), in axpy mode it meets byte k = <see cref="Lane0"/> + n of A's line.
/// <para>The engine loads a QMM's A lines into one of two buffers while B's lines of the one before stream past the other,
/// through port C when <see cref="Prefetch"/> (A's bank is neither its own B's nor the previous QMM's), else through port B
/// once that stream is over. A last QMM hands its accumulators to the drain, which requantizes and writes the lines while the
/// next QMMs read and multiply (<see cref="QmmTimer"/>); <see cref="Fence"/> makes one wait until the drain is idle, because
/// it reads lines a drain may still be writing (<see cref="After"/>).</para>
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
    /// <summary>Dot: the accumulator of B's first row; axpy: A's byte for B's first row.</summary>
    public int Lane0 { get; init; }
    public bool First { get; init; }
    public bool Last { get; init; }
    public bool Axpy { get; init; }
    public int DstLine { get; init; }
    /// <summary>A's lines come through port C, while the previous QMM still reads B (set by <see cref="After"/> from the banks).</summary>
    public bool Prefetch { get; init; }
    /// <summary>Scratchpad banks of A's and B's lines (set when emitted).</summary>
    public int ABank { get; init; }
    public int BBank { get; init; }
    /// <summary>Taken only once the drain has written everything (it reads lines in <see cref="Draining"/> of its predecessor).</summary>
    public bool Fence { get; init; }
    /// <summary>Lines the drain may still be writing when the next QMM of the unit starts reading: the results of the last
    /// <see cref="DrainsInFlight"/> last QMMs up to this one (none before a fence).</summary>
    public IReadOnlyList<LineRange> Draining { get; init; } = [];

    public static readonly InstructionFormat Layout = new("QMM", 6,
    [
        new("a", 1, 0, 32, FieldKind.Line, i => ((Qmm)i).ALine),
        new("b", 2, 0, 32, FieldKind.Line, i => ((Qmm)i).BLine),
        new("dst", 3, 0, 32, FieldKind.Line, i => ((Qmm)i).DstLine),
        new("astride", 4, 0, 8, FieldKind.Signed, i => ((Qmm)i).AStride),
        new("bstride", 4, 8, 8, FieldKind.Signed, i => ((Qmm)i).BStride),
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
        new("fence", 7, 9, 1, FieldKind.Bits, i => ((Qmm)i).Fence ? 1 : 0),
        new("pre", 7, 10, 1, FieldKind.Bits, i => ((Qmm)i).Prefetch ? 1 : 0),
        new("na", 7, 16, 8, FieldKind.Bits, i => ((Qmm)i).ARows),
        new("lane0", 7, 24, 8, FieldKind.Bits, i => ((Qmm)i).Lane0),
    ]);

    public override InstructionFormat Format => Layout;
    public override string Unit => ActMatMulEngine.Id;

    /// <summary>A's lines through port C when prefetched, else port B; B's through port B, the result through port A. A strided
    /// read declares the lines it spans.</summary>
    public override IEnumerable<Access> Accesses(HwConfig c)
    {
        var (a, b) = (Span(ALine, AStride, ARows), Span(BLine, BStride, Rows));
        yield return Access.Read(a.First, a.Count, Prefetch ? SpadPort.C : SpadPort.B);
        yield return Access.Read(b.First, b.Count, SpadPort.B);
        if (Last) yield return Access.WriteA(DstLine, ARows);
    }

    public override string Comment => $"{Op.Name}: rows {Row}..+{ARows} columns {Column}..+{Rows}";
    protected override string Text =>
        $"QMM   {(Axpy ? "axpy" : "dot")} a={ALine}/{AStride}x{ARows} b={BLine}/{BStride} groups={Groups} rows={Rows}{(Lane0 != 0 ? $" lane0={Lane0}" : "")}{(First ? " first" : "")}{(Prefetch ? " pre" : "")}{(Fence ? " fence" : "")}{(Last ? $" -> dst={DstLine}" : "")}";

    /// <summary>How many last QMMs' drains can still be writing when the loader reads the next QMM's lines: it may take that QMM
    /// as the streamer takes this one (s), and the drains of the last QMMs three or more before it are done by then (each
    /// stream ends after the copy before it, each copy after the drain before it: see <see cref="QmmTimer"/>).</summary>
    public const int DrainsInFlight = 4;

    /// <summary>Its reads: a line a cycle, the groups of A's rows, then of each row of B.</summary>
    public static long ReadsOf(int groups, int rows, int aRows) => (long)groups * (aRows + rows);
    /// <summary>Alone (<see cref="QmmTimer"/> with an idle engine): the reads from the cycle after it is taken, then, when last, the
    /// copy to the drain two cycles after the last read and a write a cycle for each of A's rows, retiring with the last write.</summary>
    public static long CyclesOf(int groups, int rows, int aRows, bool last) => ReadsOf(groups, rows, aRows) + (last ? 2 + aRows : 0);
    public override long Cycles(HwConfig c) => CyclesOf(Groups, Rows, ARows, Last);

    /// <summary>Lines it reads.</summary>
    IEnumerable<LineRange> ReadLines => [Span(ALine, AStride, ARows), Span(BLine, BStride, Rows)];

    /// <summary>The lines a strided read spans: lines line + g·stride + i for each group g and i &lt; count (a stride may be negative).</summary>
    LineRange Span(int line, int stride, int count)
    {
        long last = line + (Groups - 1L) * stride;
        return new(Math.Min(line, last), Math.Abs(last - line) + count);
    }

    /// <summary>Fenced when it reads what a drain may still be writing; passes on what the drain may be writing after it.
    /// Prefetched when A's bank differs from B's and from the previous QMM's B (whose lines may still stream through port B).</summary>
    public override Instruction After(Instruction? previous)
    {
        var draining = previous is Qmm p ? p.Draining : [];
        bool fence = ReadLines.Any(r => draining.Any(d => r.First < d.First + d.Count && d.First < r.First + r.Count));
        IReadOnlyList<LineRange> mine = (Last ? new[] { new LineRange(DstLine, ARows) } : []).Concat(fence ? [] : draining).Take(DrainsInFlight).ToList();
        bool prefetch = ABank != BBank && (previous is not Qmm b || b.BBank != ABank);
        return this with { Fence = fence, Draining = mine, Prefetch = prefetch };
    }

    /// <summary>Groups of one row's A lines the engine's buffer holds: a tile's arrayCols features, arrayRows a line.</summary>
    public static int MaxGroups(HwConfig c) => c.ArrayCols / c.ArrayRows;

    /// <summary>The next block of B's rows for the same output lines in axpy mode, its A and B lines each a constant stride
    /// (that fits the signed 8-bit fields; the tiles of B's blocks may lie in any order) from the ones before in the same banks: one QMM of one more group, which streams B's lines
    /// of both blocks back to back (P·V makes a QMM per block of arrayRows keys: alone each streams only arrayRows lines,
    /// fewer cycles than fetching the next instruction takes).</summary>
    public override Instruction? MergedWith(Instruction next, HwConfig c)
    {
        if (next is not Qmm q || !Axpy || !q.Axpy || Last || q.First || !ReferenceEquals(q.Op, Op) || q.Groups != 1 || Groups >= MaxGroups(c)
            || q.DstLine != DstLine || q.ARows != ARows || q.Rows != Rows || q.Lane0 != Lane0 || q.LastLanes != LastLanes || q.ABank != ABank || q.BBank != BBank)
            return null;
        long aStride = Groups == 1 ? (long)q.ALine - ALine : AStride, bStride = Groups == 1 ? (long)q.BLine - BLine : BStride;
        return aStride != 0 && bStride != 0 && Layout["astride"].Fits(aStride) && Layout["bstride"].Fits(bStride) && q.ALine == ALine + Groups * aStride && q.BLine == BLine + Groups * bStride
            ? this with { Groups = Groups + 1, AStride = (int)aStride, BStride = (int)bStride, Last = q.Last }
            : null;
    }

    /// <summary>The accumulators between the instructions of one output line.</summary>
    public sealed class State
    {
        public long[][] Acc = [];
    }

    public override void Execute(Machine m, DecodedFields f)
    {
        int r = m.Config.ArrayRows, ng = f.Int("ng"), nr = f.Int("nr"), klast = f.Int("klast"), na = f.Int("na"), l0 = f.Int("lane0");
        if (ng < 1 || ng > MaxGroups(m.Config) || nr < 1 || l0 + nr > r || klast < 1 || klast > r || na < 1 || na > r)
            throw new InstructionSimulator.ProgramException($"QMM of {ng} groups, {nr} rows of B from lane {l0}, {na} of A, {klast} last lanes");
        var s = m.State<State>();
        bool axpy = f.Flag("axpy");
        if (s.Acc.Length == 0 || f.Flag("first") && axpy) s.Acc = Enumerable.Range(0, r).Select(_ => new long[r]).ToArray();
        if (f.Flag("first") && !axpy)
            foreach (var row in s.Acc) Array.Clear(row, l0, nr);
        for (int n = 0; n < nr; n++)
            for (int g = 0; g < ng; g++)
            {
                byte[] b = m.Line(f["b"] + g * f["bstride"] + n);
                for (int i = 0; i < na; i++)
                {
                    byte[] a = m.Line(f["a"] + g * f["astride"] + i);
                    if (axpy)
                        for (int l = 0; l < r; l++) s.Acc[i][l] += ((sbyte)a[l0 + n] - f["za"]) * ((sbyte)b[l] - f["zb"]);
                    else
                        for (int k = 0; k < (g == ng - 1 ? klast : r); k++) s.Acc[i][l0 + n] += ((sbyte)a[k] - f["za"]) * ((sbyte)b[k] - f["zb"]);
                }
            }
        if (!f.Flag("last")) return;
        for (int i = 0; i < na; i++)
        {
            var line = m.Line(f["dst"] + i);
            Array.Clear(line);
            for (int n = 0; n < (axpy ? r : l0 + nr); n++)
                line[n] = (byte)(sbyte)QuantMath.Requantize(s.Acc[i][n], f.Int("mult"), f.Int("shift"), f.Int("zy"), f.Int("lo"), f.Int("hi"));
        }
    }
}

/// <summary>
/// The activation matmul engine's exact timing with a memory that never stalls (templates/hwgen_actmm_engine.v.sbn). Its
/// loader takes a QMM in cycle a and reads A's lines in a+1 .. a+A; the streamer takes it from the loader in s = the later of
/// a+A and the cycle it is free, reads B's lines in s+1 .. e = s+B, and the last arrives in e+1. Not last: the streamer is
/// free in e, or once the drain is idle (the cycle after its last write), and the QMM retires then, so QMMs retire in order.
/// Last: its accumulators go to the drain in e+2, or in the drain's last write (the copy); the drain writes A's rows, a line a
/// cycle, from the cycle after and retires the QMM with the last; the streamer is free the cycle before the copy (the next
/// QMM's first line of B arrives after it, and its last read, where it hands its own fields to the drain, is not before it).
/// The loader takes the next QMM in s when it prefetches (port C), else once the streamer's reads are over (e), a fenced one
/// once everything is idle.
/// </summary>
public sealed class QmmTimer : IUnitTimer
{
    long handoff, lastRead, free, drainEnd = long.MinValue;

    public long ReadyFor(Instruction next) => next switch
    {
        Qmm { Fence: true } => Math.Max(free, drainEnd + 1),
        Qmm { Prefetch: true } => handoff,
        _ => lastRead,
    };

    /// <summary>Busy: the cycles from the later of its take and the previous QMM's last read to its own last read (the loads
    /// that overlap the previous stream are not counted twice).</summary>
    public UnitTime Take(Instruction i, long a)
    {
        var q = (Qmm)i;
        long s = Math.Max(a + (long)q.Groups * q.ARows, free), e = s + (long)q.Groups * q.Rows, busy = e - Math.Max(a, lastRead);
        handoff = s;
        lastRead = e;
        if (!q.Last)
        {
            free = Math.Max(e, drainEnd + 1);
            return new UnitTime(s, free, busy);
        }
        long copy = Math.Max(e + 2, drainEnd);
        free = copy - 1;
        drainEnd = copy + q.ARows;
        return new UnitTime(s, drainEnd, busy);
    }
}
