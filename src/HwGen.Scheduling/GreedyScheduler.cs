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
    int step;
    List<int> stores = [], evictions = [], loads = [];
    Dictionary<int, long> placed = [];                  // placed during this step

    GreedyScheduler(ScratchpadProblem p, IReadOnlyList<int> order)
    {
        this.p = p;
        this.order = order;
        var stepOf = new int[p.Ops.Count];
        for (int i = 0; i < order.Count; i++) stepOf[order[i]] = i;
        uses = p.Tensors.Select(_ => new List<int>()).ToArray();
        foreach (var o in p.Ops) foreach (var t in p.Uses(o)) uses[t].Add(stepOf[o.Id]);
        foreach (var u in uses) u.Sort();
        offChip = new HashSet<int>(p.Tensors.Where(t => t.StartsOffChip).Select(t => t.Id));
    }

    public static Schedule Solve(ScratchpadProblem p) => Solve(p, p.TopologicalOrder()!);

    public static Schedule Solve(ScratchpadProblem p, IReadOnlyList<int> order)
    {
        var sw = Stopwatch.StartNew();
        var g = new GreedyScheduler(p, order);
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
        return new Schedule(steps, pendingStores, "greedy", SolveStatus.Heuristic, double.NaN, sw.Elapsed);
    }

    /// <summary>The first step after <paramref name="after"/> that uses tensor t, or int.MaxValue.</summary>
    int NextUse(int t, int after)
    {
        foreach (var s in uses[t]) if (s > after) return s;
        return int.MaxValue;
    }

    void Run(SchedOp op)
    {
        foreach (var t in addressOf.Keys.Where(t => NextUse(t, step - 1) == int.MaxValue).ToList()) Evict(t);
        var mine = new HashSet<int>(p.Uses(op));
        var needed = op.Inputs.Distinct().Where(t => !addressOf.ContainsKey(t)).Concat(op.Outputs).ToList();
        foreach (var t in needed)
        {
            long? a = FirstFit(p.Size(t));
            while (a is null && Victim(mine) is { } v)
            {
                Evict(v);
                a = FirstFit(p.Size(t));
            }
            if (a is null) { Repack(op); return; }
            Put(t, a.Value, isLoad: !op.Outputs.Contains(t));
        }
    }

    /// <summary>Fragmentation fallback: evict everything and place the op's operands, then results, from address 0.</summary>
    void Repack(SchedOp op)
    {
        foreach (var t in addressOf.Keys.ToList()) Evict(t);
        long next = 0;
        foreach (var t in op.Inputs.Distinct()) { Put(t, next, isLoad: true); next += p.Size(t); }
        foreach (var t in op.Outputs) { Put(t, next, isLoad: false); next += p.Size(t); }
    }

    int? Victim(HashSet<int> mine) => addressOf.Keys.Where(t => !mine.Contains(t))
        .OrderByDescending(t => NextUse(t, step)).ThenBy(t => t).Cast<int?>().FirstOrDefault();

    long? FirstFit(long size)
    {
        long cursor = 0;
        foreach (var (a, t) in byAddress)
        {
            if (a - cursor >= size) return cursor;
            cursor = Math.Max(cursor, a + p.Size(t));
        }
        return p.Capacity - cursor >= size ? cursor : null;
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
        bool neededLater = NextUse(t, step - 1) != int.MaxValue || (p.Tensors[t].Kind == TensorKind.Output && !offChip.Contains(t));
        if (neededLater && offChip.Add(t)) stores.Add(t);
        evictions.Add(t);
    }
}
