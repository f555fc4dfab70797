using HwGen.Scheduling;

namespace HwGen.Tests.Support;

/// <summary>
/// Exhaustive optimum for tiny problems: every topological order, every eviction subset, every aligned address.
/// Outputs are charged when produced (any legal schedule stores each once); dead tensors leave for free; loads
/// happen only at use (loading earlier never saves traffic).
/// </summary>
public static class ScheduleBruteForce
{
    public static long Optimum(ScratchpadProblem p)
    {
        long best = long.MaxValue;
        foreach (var order in TopologicalOrders(p)) best = Math.Min(best, ForOrder(p, order));
        return best;
    }

    static IEnumerable<int[]> TopologicalOrders(ScratchpadProblem p)
    {
        var order = new List<int>();
        var done = new HashSet<int>();
        IEnumerable<int[]> Rec()
        {
            if (order.Count == p.Ops.Count) { yield return order.ToArray(); yield break; }
            foreach (var o in p.Ops)
            {
                if (done.Contains(o.Id) || p.Predecessors(o).Any(q => !done.Contains(q))) continue;
                if (o.After is { } a && order[^1] != a) continue;
                if (order.Count > 0 && p.Ops.Any(x => x.After == order[^1]) && o.After != order[^1]) continue;
                order.Add(o.Id); done.Add(o.Id);
                foreach (var r in Rec()) yield return r;
                order.RemoveAt(order.Count - 1); done.Remove(o.Id);
            }
        }
        return Rec();
    }

    static long ForOrder(ScratchpadProblem p, int[] order)
    {
        int T = order.Length;
        bool UsedFrom(int t, int step) => Enumerable.Range(step, T - step).Any(s => p.Uses(p.Ops[order[s]]).Contains(t));
        long units = p.Capacity / p.Alignment;
        long U(int t) => p.Size(t) / p.Alignment;
        var memo = new Dictionary<string, long>();
        const long Inf = long.MaxValue / 4;

        long Rec(int step, SortedDictionary<int, long> resident, long offChip)
        {
            // Dead tensors leave at no cost.
            foreach (var t in resident.Keys.Where(t => !UsedFrom(t, step)).ToList()) resident.Remove(t);
            if (step == T) return 0;
            var key = $"{step}|{string.Join(",", resident.Select(kv => $"{kv.Key}@{kv.Value}"))}|{offChip}";
            if (memo.TryGetValue(key, out var cached)) return cached;
            var op = p.Ops[order[step]];
            var res = resident.Keys.ToList();
            long best = Inf;
            for (int mask = 0; mask < 1 << res.Count; mask++)
            {
                var kept = new SortedDictionary<int, long>();
                long cost = 0, off = offChip;
                for (int i = 0; i < res.Count; i++)
                {
                    int t = res[i];
                    if ((mask >> i & 1) == 0) { kept[t] = resident[t]; continue; }
                    if ((off >> t & 1) == 0) { cost += p.Tensors[t].Bytes; off |= 1L << t; }  // store before evicting: it is used later
                }
                var toLoad = op.Inputs.Distinct().Where(t => !kept.ContainsKey(t)).ToList();
                if (toLoad.Any(t => (off >> t & 1) == 0)) continue;
                long loadCost = toLoad.Sum(t => p.Tensors[t].Bytes);
                var place = toLoad.Concat(op.Outputs).ToList();
                foreach (var placed in Placements(kept, place, 0))
                {
                    long o2 = off, extra = 0;
                    foreach (var t in op.Outputs.Where(t => p.Tensors[t].Kind == TensorKind.Output)) { extra += p.Tensors[t].Bytes; o2 |= 1L << t; }
                    best = Math.Min(best, cost + loadCost + extra + Rec(step + 1, new SortedDictionary<int, long>(placed), o2));
                }
            }
            memo[key] = best;
            return best;
        }

        IEnumerable<SortedDictionary<int, long>> Placements(SortedDictionary<int, long> occupied, List<int> todo, int i)
        {
            if (i == todo.Count) { yield return occupied; yield break; }
            int t = todo[i];
            for (long a = 0; a + U(t) <= units; a++)
            {
                if (occupied.Any(kv => a < kv.Value + U(kv.Key) && kv.Value < a + U(t))) continue;
                if (!p.InOneBank(a * p.Alignment, p.Size(t))) continue;
                var next = new SortedDictionary<int, long>(occupied) { [t] = a };
                foreach (var r in Placements(next, todo, i + 1)) yield return r;
            }
        }

        long start = p.Tensors.Where(t => t.StartsOffChip).Aggregate(0L, (m, t) => m | 1L << t.Id);
        // Addresses are in alignment units inside the search; costs are in bytes.
        return Rec(0, new SortedDictionary<int, long>(), start);
    }
}
