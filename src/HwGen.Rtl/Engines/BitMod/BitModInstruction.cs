using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Rtl.Engines.Dense;
using HwGen.Rtl.Program;

namespace HwGen.Rtl.Engines.BitMod;

/// <summary>
/// BMM: a GEMM (<see cref="Gemm"/>: the same fields, chaining, parameters and drain) on the bit-serial mixture-of-datatype engine,
/// whose weight lines are BitMoD codes with a header line where a group starts (<see cref="BitModCodes"/>). Each code line
/// takes two cycles per activation row (one power-of-two term each), each header line one. Its field table is the GEMM's and
/// three more: <c>w4</c> (4-bit codes, else 3), <c>gpos</c> (code lines of the current group before this instruction's
/// first) and <c>glines</c> (code lines of a whole group).
/// </summary>
public sealed record BitMod : Gemm
{
    public BitMod(Gemm gemm, WeightGroups groups, int rows) : base(gemm)
    {
        Groups = groups;
        GroupLines = groups.Size / rows;
        GroupPos = FirstK / rows % GroupLines;
        Headers = BitModCodes.Headers(FirstK, Math.Min(Lines * rows, Layer.K - FirstK), groups.Size);
    }

    public WeightGroups Groups { get; }
    public int GroupLines { get; }
    public int GroupPos { get; }
    /// <summary>Header lines among its weight lines.</summary>
    public int Headers { get; init; }
    public override int WeightLines => Lines + Headers;

    public static new readonly InstructionFormat Layout = new("BMM", 8,
    [
        .. Gemm.Layout.Fields,
        new("w4", 0, 7, 1, FieldKind.Bits, i => ((BitMod)i).Groups.Bits == 4 ? 1 : 0),
        new("gpos", 0, 8, 8, FieldKind.Bits, i => ((BitMod)i).GroupPos),
        new("glines", 7, 24, 8, FieldKind.Bits, i => ((BitMod)i).GroupLines),
    ]);

    public override InstructionFormat Format => Layout;
    public override string Unit => BitModEngine.Id;
    protected override string Text => "BMM" + base.Text["GEMM".Length..] + $" hdr={Headers} gpos={GroupPos}/{GroupLines} w{Groups.Bits}";

    public override long Cycles(HwConfig c) => new BitModTimer(c).Take(this, 0).Retire;

    /// <summary>The partial sums of the group under way, per block row and column, and its header (datatype, scale per column).</summary>
    public sealed class GroupState
    {
        public long[,] Psum = new long[0, 0];
        public int[] Types = [], Scales = [];
    }

    /// <summary>Line by line: a header line (where the group position is 0) loads each column's datatype and scale; a code line adds,
    /// per row m and column c, the sum over its inputs of (act - zx) · value(code) to psum[m][c]; at a group's last line (glines
    /// code lines, or the last line of a last instruction) acc[m][c] += psum[m][c] · scale[c] and psum restarts (int32).</summary>
    protected override void Reduce(Machine m, DecodedFields f, long[,] acc, int rows)
    {
        var c = m.Config;
        var s = m.State<GroupState>();
        if (s.Psum.Length == 0) s.Psum = new long[c.ArrayRows, c.ArrayCols];
        long act = f["act_base"], w = f["w_base"], klen = f["klen"];
        int zx = f.Int("zx8"), gp = f.Int("gpos"), glines = f.Int("glines"), bits = f.Flag("w4") ? 4 : 3, sb = c.BitmodScaleBits;
        if (glines == 0) throw new InstructionSimulator.ProgramException("a BMM with groups of 0 lines");
        bool header = gp == 0;
        for (long kl = 0, wl = 0; kl < klen; kl++)
        {
            var line = m.Line(w + kl);
            if (header)
            {
                var h = Enumerable.Range(0, c.ArrayCols).Select(n => BitModCodes.Header(line, n, sb)).ToArray();
                s.Types = [.. h.Select(x => x.Type)];
                s.Scales = [.. h.Select(x => x.Scale)];
                header = false;
                continue;
            }
            if (s.Types.Length == 0) throw new InstructionSimulator.ProgramException("a BMM code line before any group header");
            bool end = gp == glines - 1 || f.Flag("last") && kl == klen - 1;
            for (int row = 0; row < rows; row++)
            {
                var a = m.Line(act + wl * rows + row);
                for (int n = 0; n < c.ArrayCols; n++)
                {
                    var t = s.Types[n] <= ModType.EaMinus ? ModType.Of(bits, s.Types[n]) : null;
                    long sum = 0;
                    for (int i = 0; i < c.ArrayRows; i++)
                        sum += ((sbyte)a[i] - zx) * (t?.Values[BitModCodes.Code(line, n, i, c.ArrayRows, bits)] ?? 0);
                    s.Psum[row, n] = (int)(s.Psum[row, n] + sum);
                    if (end)
                    {
                        acc[row, n] = (int)(acc[row, n] + (long)(int)s.Psum[row, n] * s.Scales[n]);
                        s.Psum[row, n] = 0;
                    }
                }
            }
            wl++;
            gp = end ? 0 : gp + 1;
            header = gp == 0;
        }
    }

    /// <summary>The next GEMM of the same chain, contiguous: one BMM with both instructions' headers.</summary>
    public override Instruction? MergedWith(Instruction next, HwConfig c) =>
        base.MergedWith(next, c) is BitMod merged ? merged with { Headers = Headers + ((BitMod)next).Headers } : null;
}

/// <summary>
/// The BitMoD engine's exact timing with a memory that never stalls (the serial mode of templates/hwgen_dense_engine.v.sbn):
/// the GEMM shell's (<see cref="DenseTimer"/>) with its MAC issue replaced. Issues go one a cycle: a header line one, each code
/// line two per row (terms 0 and 1). A group's last line (for a row) hands that row's partial sums to its dequantizer, which
/// adds them to the accumulators times the group scale bit-serially, one scale bit a cycle (low bit first, the partial sums
/// shifted up a bit a cycle): a hand-over issued in cycle T finishes in T + 1 + ScaleBits. The row's next hand-over waits (the issue stalls) until
/// the previous one is in its last cycle; the copy to the drain waits until every dequantizer has finished.
/// </summary>
public sealed class BitModTimer(HwConfig config) : DenseTimer(config)
{
    readonly long[] done = Enumerable.Repeat(long.MinValue, config.ArrayRows).ToArray();

    protected override long IssueEnd(Gemm g, long first)
    {
        var b = (BitMod)g;
        long t = first;
        int gp = b.GroupPos;
        for (int wl = 0; wl < b.Lines; wl++)
        {
            if (gp == 0) t++;
            bool end = gp == b.GroupLines - 1 || b.Last && wl == b.Lines - 1;
            for (int m = 0; m < b.Rows; m++)
            {
                t++;
                if (end)
                {
                    t = Math.Max(t, done[m]);
                    done[m] = t + 1 + Config.BitmodScaleBits;
                }
                t++;
            }
            gp = end ? 0 : gp + 1;
        }
        return t;
    }

    protected override long CopyReady() => done.Max() + 1;
}
