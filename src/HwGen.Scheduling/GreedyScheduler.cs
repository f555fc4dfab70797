using System.Diagnostics;

namespace HwGen.Scheduling;

/// <summary>
/// The baseline a simple compiler would use: ops in program (topological, lowest id first) order, first-fit
/// addresses, and when space runs out, evict the resident tensor whose next use is furthest away (Belady),
/// storing it first if it is needed again and not yet off chip. Outputs are stored when produced. Tensors
/// with no further use leave the scratchpad at once. If fragmentation leaves no gap, all of the op's tensors
/// are evicted and repacked from address 0 (always possible once Check has passed).
/// </summary>
public sealed class GreedyScheduler
{
    readonly ScratchpadProblem p;
    readonly IReadOnlyList<int> order;
    readonly List<int>[] uses;                          // steps using each tensor, ascending
    readonly SortedDictionary<long, int> byAddress = [];
    readonly Dictionary<int, long> addressOf = [];
    readonly HashSet<int> offChip;
    readonly IReadOnlySet<int> keep;                   // tensors needed after the last step (a window's free end)
    int step;
    List<int> stores = [], evictions = [], loads = [];
    Dictionary<int, long> placed = [];                  // placed during this step
    List<(long From, long To)> freed = [];              // ranges of the tensors whose last use was the previous step

    readonly bool doubleBuffer;

    GreedyScheduler(ScratchpadProblem p, IReadOnlyList<int> order, Boundary? start, bool doubleBuffer)
    {
        this.doubleBuffer = doubleBuffer;
        this.p = p;
        this.order = order;
        var stepOf = new int[p.Ops.Count];
        for (int i = 0; i < order.Count; i++) stepOf[order[i]] = i;
        uses = p.Tensors.Select(_ => new List<int>()).ToArray();
        foreach (var o in p.Ops) foreach (var t in p.Uses(o)) uses[t].Add(stepOf[o.Id]);
        foreach (var u in uses) u.Sort();
        offChip = start is null ? new HashSet<int>(p.Tensors.Where(t => t.StartsOffChip).Select(t => t.Id)) : new HashSet<int>(start.InitiallyOffChip);
        keep = start is null ? new HashSet<int>() : (start.KeepAtEnd ?? new HashSet<int>()).Concat(start.MustEndOffChip).ToHashSet();
        foreach (var (t, a) in start?.InitialResident ?? new Dictionary<int, long>())
        {
            byAddress[a] = t;
            addressOf[t] = a;
        }
    }

    /// <summary>With <paramref name="doubleBuffer"/>, a tensor goes elsewhere than the lines the previous step used when a gap
    /// fits (the same traffic, but a decoupled design can load it while the previous step still computes).</summary>
    public static Schedule Solve(ScratchpadProblem p, bool doubleBuffer = false) => Solve(p, p.TopologicalOrder()!, doubleBuffer: doubleBuffer);

    /// <summary>The greedy from a window's start state (<paramref name="start"/>: what is resident where, what is off
    /// chip); tensors to keep or leave off chip at the end are stored when evicted, and those that must end off chip
    /// are stored at the end.</summary>
    public static Schedule Solve(ScratchpadProblem p, IReadOnlyList<int> order, Boundary? start = null, bool doubleBuffer = false)
    {
        var sw = Stopwatch.StartNew();
        var g = new GreedyScheduler(p, order, start, doubleBuffer);
        var steps = new List<ScheduleStep>();
        var pendingStores = new List<int>();
        for (g.step = 0; g.step < order.Count; g.step++)
        {
            (g.stores, g.evictions, g.loads, g.placed) = (new List<int>(pendingStores), [], [], []);
            foreach (var t in pendingStores) g.offChip.Add(t);
            pendingStores.Clear();
            var op = p.Ops[order[g.step]];
            g.Run(op);
            pendingStores.AddRange(op.Outputs.Where(t => p.Tensors[t].Kind == TensorKind.Output));
            steps.Add(new ScheduleStep(op.Id, g.stores, g.evictions, g.loads, g.placed));
        }
        if (start is not null)
            pendingStores.AddRange(start.MustEndOffChip.Where(t => g.addressOf.ContainsKey(t) && !g.offChip.Contains(t) && !pendingStores.Contains(t)));
        return new Schedule(steps, pendingStores, "greedy", SolveStatus.Heuristic, double.NaN, sw.Elapsed);
    }

    /// <summary>
    /// Schedule <paramref name="s"/> (from the start of the problem) with the same order, loads, stores and evictions, so
    /// the same bytes moved, and addresses chosen as the double-buffering greedy chooses them: first fit, outside the lines
    /// the step's evictions free when a gap allows (a load or result there would wait for the ops still reading them).
    /// Null when first fit finds no room for a tensor (fragmentation the given addresses avoided).
    /// </summary>
    public static Schedule? Readdress(ScratchpadProblem p, Schedule s)
    {
        var g = new GreedyScheduler(p, s.Order.ToList(), null, doubleBuffer: true);
        var steps = new List<ScheduleStep>();
        foreach (var st in s.Steps)
        {
            g.freed = [];
            foreach (var t in st.Evictions)
            {
                g.freed.Add((g.addressOf[t], g.addressOf[t] + p.Size(t)));
                g.byAddress.Remove(g.addressOf[t]);
                g.addressOf.Remove(t);
            }
            var placed = new Dictionary<int, long>();
            foreach (var t in st.Loads.Concat(p.Ops[st.Op].Outputs))
            {
                if ((g.FirstFit(t, avoidFreed: true) ?? g.FirstFit(t, avoidFreed: false)) is not { } a) return null;
                g.byAddress[a] = t;
                g.addressOf[t] = a;
                placed[t] = a;
            }
            steps.Add(st with { Addresses = placed });
        }
        return s with { Steps = steps };
    }

    /// <summary>For a timed problem, <see cref="Readdress"/>'s schedule when its timeline is shorter (the same bytes moved),
    /// else <paramref name="s"/>. The exact model places addresses with no regard for time: on the examples' tile problems
    /// that spill (batch 4 to 16, 11 of them) this shortened every exact and divide-and-conquer schedule's timeline, by 0.2
    /// to 6.5 %, and the event model's cycles of 10 by 8 to 20 % (a tile's lines stay together, so more GEMMs merge; the
    /// eleventh lost 0.3 %).</summary>
    public static Schedule DoubleBuffered(ScratchpadProblem p, Schedule s)
    {
        if (!p.Timed || Readdress(p, s) is not { } r) return s;
        r.Verify(p);
        return r.Makespan(p) < s.Makespan(p) ? r : s;
    }

    /// <summary>The first step after <paramref name="after"/> that uses tensor t, or int.MaxValue.</summary>
    int NextUse(int t, int after)
    {
        // Binary search: a weight tile is used once per row block, so a tensor can have thousands of uses.
        var u = uses[t];
        int i = u.BinarySearch(after + 1);
        if (i < 0) i = ~i;
        return i < u.Count ? u[i] : int.MaxValue;
    }

    void Run(SchedOp op)
    {
        freed = [];
        foreach (var t in addressOf.Keys.Where(t => NextUse(t, step - 1) == int.MaxValue && !keep.Contains(t)).ToList())
        {
            freed.Add((addressOf[t], addressOf[t] + p.Size(t)));
            Evict(t);
        }
        var mine = new HashSet<int>(p.Uses(op));
        var needed = op.Inputs.Distinct().Where(t => !addressOf.ContainsKey(t)).Concat(op.Outputs).ToList();
        foreach (var t in needed)
        {
            // Double buffering (when asked): lines the previous step used stay untouched when another gap fits, so this
            // step's loads and results need not wait for the previous step to finish with them.
            long? a = (doubleBuffer ? FirstFit(t, avoidFreed: true) : null) ?? FirstFit(t, avoidFreed: false);
            while (a is null && Victim(mine) is { } v)
            {
                Evict(v);
                a = FirstFit(t, avoidFreed: false);
            }
            if (a is null) { Repack(op); return; }
            Put(t, a.Value, isLoad: !op.Outputs.Contains(t));
        }
    }

    /// <summary>Fragmentation fallback: evict everything and pack the op's operands and results from address 0 (into the
    /// banks, the way Check found possible).</summary>
    void Repack(SchedOp op)
    {
        foreach (var t in addressOf.Keys.ToList()) Evict(t);
        var at = p.PackIntoBanks(p.Uses(op))!;
        foreach (var t in op.Inputs.Distinct()) Put(t, at[t], isLoad: true);
        foreach (var t in op.Outputs) Put(t, at[t], isLoad: false);
    }

    /// <summary>The resident tensor, not the op's own, used furthest ahead (the smallest id of equals); one pass, no sort.</summary>
    int? Victim(HashSet<int> mine)
    {
        int? best = null;
        int bestUse = 0;
        foreach (var t in addressOf.Keys)
        {
            if (mine.Contains(t)) continue;
            int use = NextUse(t, step);
            if (best is null || use > bestUse || use == bestUse && t < best) (best, bestUse) = (t, use);
        }
        return best;
    }

    /// <summary>The lowest free address where tensor t fits inside one bank (its own bank when it has one), optionally
    /// outside the lines freed at the start of this step.</summary>
    long? FirstFit(int t, bool avoidFreed)
    {
        long size = p.Size(t);
        var (lo, hi) = p.Tensors[t].Bank is { } b ? (b * p.BankBytes, (b + 1) * p.BankBytes) : (0L, p.Capacity);
        var taken = byAddress.Select(kv => (From: kv.Key, To: kv.Key + p.Size(kv.Value)));
        if (avoidFreed && freed.Count > 0) taken = Merge(taken, freed.OrderBy(r => r.From));
        long cursor = lo;
        long? InGap(long from, long to)
        {
            long a = p.Aligned(t, from);
            if (!p.InOneBank(a, size)) a = (a / p.BankBytes + 1) * p.BankBytes;
            return a + size <= Math.Min(to, hi) ? a : null;
        }
        foreach (var (from, to) in taken)
        {
            if (to <= cursor) continue;
            if (InGap(cursor, from) is { } fit) return fit;
            cursor = Math.Max(cursor, to);
            if (cursor >= hi) return null;
        }
        return InGap(cursor, hi);
    }

    /// <summary>Two runs of ranges sorted by start, merged into one sorted run (the freed ranges are few, the resident many:
    /// no sort of the whole scratchpad per fit).</summary>
    static IEnumerable<(long From, long To)> Merge(IEnumerable<(long From, long To)> a, IEnumerable<(long From, long To)> b)
    {
        using var x = a.GetEnumerator();
        using var y = b.GetEnumerator();
        bool hasX = x.MoveNext(), hasY = y.MoveNext();
        while (hasX || hasY)
            if (hasX && (!hasY || x.Current.From <= y.Current.From)) { yield return x.Current; hasX = x.MoveNext(); }
            else { yield return y.Current; hasY = y.MoveNext(); }
    }

    void Put(int t, long a, bool isLoad)
    {
        byAddress[a] = t;
        addressOf[t] = a;
        placed[t] = a;
        if (isLoad) loads.Add(t);
    }

    void Evict(int t)
    {
        byAddress.Remove(addressOf[t]);
        addressOf.Remove(t);
        if (placed.Remove(t))
        {
            loads.Remove(t);  // placed in this step: it was never resident at the step's start
            return;
        }
        bool neededLater = NextUse(t, step - 1) != int.MaxValue || (p.Tensors[t].Kind == TensorKind.Output && !offChip.Contains(t)) || keep.Contains(t);
        if (neededLater && offChip.Add(t)) stores.Add(t);
        evictions.Add(t);
    }
}
