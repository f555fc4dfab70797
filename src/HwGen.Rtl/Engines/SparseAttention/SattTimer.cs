using HwGen.Rtl.Program;

namespace HwGen.Rtl.Engines.SparseAttention;

/// <summary>
/// The sparse engine's three stages (templates/hwgen_sparse_engine.v.sbn), exact without stalls. Row r (counted by the score
/// SATTs that are <see cref="Satt.First"/>) uses buffer slot r mod 2.
/// <list type="bullet">
/// <item>Score stage: a score SATT taken in cycle a reads from max(a + 1, gates) a line a cycle (<see cref="Satt.StageCycles"/>)
/// and finishes with its last read; gates: a first one waits for the softmax of row r - 2 to take its last score (in f: from
/// f + 1); one of
/// another unit than the score SATT before it waits for that one's last score (out in o: from o + 1). A score comes out
/// 1 + the score unit's latency after its column's last read.</item>
/// <item>Softmax stage: row r's softmax starts in g = max(o + 1, f(r - 1) + 1, e(r - 2) + 1) (o: its last score; e: the last
/// read of row r - 2's weighted sums, which frees the probability slot), the unit takes its last score in
/// f = g + <see cref="Satt.FeedCycles"/> and gives its last probability in d = f + the unit's latency.</item>
/// <item>Weighted-sum stage: a weighted-sum SATT taken in a reads from max(a + 1, d(r) + 1) a line a cycle and finishes
/// with its last read, or, when last, with the last of its output lines, written from 2 cycles after that read.</item>
/// <item>A stage takes its next SATT in the cycle it finishes; SATTs retire in the order taken, at most one a cycle, each at
/// or after its finish.</item>
/// </list>
/// </summary>
public sealed class SattTimer : IUnitTimer
{
    sealed class Row
    {
        public int Count;
        public long? ScoresIn, Fed, Done, Released;
    }

    readonly List<Row> rows = [];
    int sRow = -1, vRow = -1, sUnit;
    long sReady, vReady, lastArrival = long.MinValue, lastRetire = long.MinValue;

    public long ReadyFor(Instruction next) => ((Satt)next).Pv ? vReady : sReady;

    /// <summary>Busy: the cycles it adds to the engine's time between taking and retiring (overlapping SATTs count once).</summary>
    public UnitTime Take(Instruction i, long a)
    {
        var s = (Satt)i;
        long start = a + 1, fin;
        int kept = s.KeptColumns;
        if (!s.Pv)
        {
            if (s.First) { sRow++; rows.Add(new Row()); }
            if (sRow < 0) throw new InstructionSimulator.ProgramException($"{s}: scores of a row that was not begun");
            if (s.First && sRow >= 2) start = Math.Max(start, Softmax(sRow - 2).Fed + 1);
            if (s.UnitIndex != sUnit && lastArrival != long.MinValue) start = Math.Max(start, lastArrival + 1);
            fin = start + Satt.StageCycles(false, s.First, s.Last, kept, s.Groups) - 1;
            lastArrival = fin + 1 + SparseScores.Latency(s.Op);
            sUnit = s.UnitIndex;
            rows[sRow].Count += kept;
            if (s.Last) rows[sRow].ScoresIn = lastArrival;
            sReady = fin;
        }
        else
        {
            if (s.First) vRow++;
            if (vRow < 0 || vRow >= rows.Count) throw new InstructionSimulator.ProgramException($"{s}: weighted sums of a row that was not scored");
            start = Math.Max(start, Softmax(vRow).Done + 1);
            long reads = Satt.StageCycles(true, false, false, kept, s.Groups), e = start + reads - 1;
            fin = e;
            if (s.Last)
            {
                rows[vRow].Released = e;
                fin = start + Satt.StageCycles(true, false, true, kept, s.Groups) - 1;
            }
            vReady = fin;
        }
        long retire = Math.Max(fin, lastRetire + 1), busy = retire - Math.Max(a, lastRetire);
        lastRetire = retire;
        return new UnitTime(Math.Max(a + 1, Math.Min(sReady, vReady)), retire, busy);
    }

    /// <summary>The cycles row r's softmax takes its last score and gives its last probability.</summary>
    (long Fed, long Done) Softmax(int r)
    {
        var row = rows[r];
        if (row.Fed is { } f) return (f, row.Done!.Value);
        long go = (row.ScoresIn ?? throw Stuck(r, "its scores are not all issued")) + 1;
        if (r >= 1) go = Math.Max(go, Softmax(r - 1).Fed + 1);
        if (r >= 2) go = Math.Max(go, (rows[r - 2].Released ?? throw Stuck(r, $"the weighted sums of row {r - 2} are not all issued")) + 1);
        row.Fed = go + Satt.FeedCycles(row.Count);
        row.Done = row.Fed + NnLut.NnLutCycles.SoftmaxLatency;
        return (row.Fed.Value, row.Done.Value);
    }

    static InstructionSimulator.ProgramException Stuck(int r, string why) =>
        new($"the sparse engine would wait forever for the softmax of row {r}: {why} (a row's score SATTs must come after the weighted sums of the row two before it)");
}
