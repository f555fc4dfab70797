namespace HwGen.Scheduling;

/// <summary>
/// One step of a schedule, in this order: store the listed tensors to off-chip memory, evict the listed tensors,
/// load the listed tensors at their addresses, run the op (its results are placed at their addresses).
/// </summary>
public sealed record ScheduleStep(int Op, IReadOnlyList<int> Stores, IReadOnlyList<int> Evictions,
    IReadOnlyList<int> Loads, IReadOnlyDictionary<int, long> Addresses)
{
    /// <summary>
    /// The step's transfers in the order the DMA runs them (Store true for a store): the loads that no store of the step must
    /// precede, then the stores, then the loads that wait for them (into a stored tensor's bytes, or of a stored tensor). The
    /// DMA runs in program order and a store waits for the engine that made its tensor, so loads go first: they prefetch this
    /// step's operands while the engine still works on the last step. <paramref name="storedAt"/> gives a stored tensor's
    /// current address, <paramref name="size"/> a tensor's bytes.
    /// </summary>
    public IEnumerable<(int Tensor, bool Store)> DmaOrder(Func<int, long> storedAt, Func<int, long> size)
    {
        var stored = Stores.Select(t => (Tensor: t, From: storedAt(t), To: storedAt(t) + size(t))).ToList();
        bool Waits(int l) => stored.Any(r => r.Tensor == l || r.From < Addresses[l] + size(l) && Addresses[l] < r.To);
        return Loads.Where(l => !Waits(l)).Select(l => (l, false))
            .Concat(Stores.Select(t => (t, true)))
            .Concat(Loads.Where(Waits).Select(l => (l, false)));
    }
}

/// <summary>Off-chip traffic of a schedule, in bytes.</summary>
public sealed record Traffic(long Loaded, long Stored, long Compulsory)
{
    public long Total => Loaded + Stored;
    public long NonCompulsory => Total - Compulsory;
}

/// <summary>How a solver finished.</summary>
public enum SolveStatus { Optimal, Feasible, Heuristic }

/// <summary>A schedule for a <see cref="ScratchpadProblem"/>: steps in execution order, then the stores after the last op.</summary>
public sealed partial record Schedule(IReadOnlyList<ScheduleStep> Steps, IReadOnlyList<int> FinalStores, string Solver,
    SolveStatus Status = SolveStatus.Heuristic, double Gap = double.NaN, TimeSpan SolveTime = default)
{
    public IEnumerable<int> Order => Steps.Select(s => s.Op);

    /// <summary>A lower bound on the total off-chip traffic (bytes) of any schedule of the problem, when the solver proved one.</summary>
    public long? TrafficBound { get; init; }

    /// <summary>This schedule, of total traffic <paramref name="total"/>, with a proven lower bound: optimal when the
    /// bound reaches the total, otherwise feasible with the gap.</summary>
    public Schedule WithBound(long bound, long total) => this with
    {
        Status = bound >= total ? SolveStatus.Optimal : SolveStatus.Feasible,
        Gap = total <= 0 ? 0 : Math.Max(0, (total - bound) / (double)total),
        TrafficBound = bound,
    };

    /// <summary>Bytes the steps and final stores load and store, without proving anything (a window of divide and
    /// conquer starts from a state <see cref="Verify"/> does not model).</summary>
    public long Moved(Func<int, long> bytes) => MovedBy(Steps, FinalStores, bytes);

    /// <summary>Bytes a run of steps loads and stores, with the final stores.</summary>
    public static long MovedBy(IEnumerable<ScheduleStep> steps, IEnumerable<int> finalStores, Func<int, long> bytes) =>
        steps.Sum(st => st.Loads.Concat(st.Stores).Sum(bytes)) + finalStores.Sum(bytes);

    /// <summary>
    /// Proves the schedule legal for <paramref name="p"/> and returns its traffic; throws <see cref="ScheduleException"/>
    /// naming the first violation: every op once, after its operands' producers; operands resident when used;
    /// loads only of tensors off chip (inputs, weights, or stored earlier); stores and evictions only of resident
    /// tensors; no two resident tensors overlapping; everything inside the capacity and aligned; every output stored.
    /// A timed problem's schedule must also have a legal <see cref="Timeline"/> (<see cref="VerifyTimed"/>).
    /// </summary>
    public Traffic Verify(ScratchpadProblem p)
    {
        var traffic = VerifyPlacement(p);
        if (p.Timed) CheckTimes(p, Timeline(p));
        return traffic;
    }

    /// <summary>Verify without the timeline: order, residency, addresses and traffic.</summary>
    Traffic VerifyPlacement(ScratchpadProblem p)
    {
        var resident = new Dictionary<int, long>();   // tensor -> address
        var offChip = new HashSet<int>(p.Tensors.Where(t => t.StartsOffChip).Select(t => t.Id));
        var produced = new HashSet<int>();
        var done = new HashSet<int>();
        long loaded = 0, stored = 0;
        ScheduleException Bad(int step, string why) => new($"step {step}: {why}");
        string N(int t) => t >= 0 && t < p.Tensors.Count ? $"'{p.Tensors[t].Name}'" : $"#{t}";

        for (int s = 0; s < Steps.Count; s++)
        {
            var st = Steps[s];
            if (st.Op < 0 || st.Op >= p.Ops.Count) throw Bad(s, $"op {st.Op} does not exist");
            var op = p.Ops[st.Op];
            if (!done.Add(op.Id)) throw Bad(s, $"op '{op.Name}' runs twice");
            if (op.After is { } after && (s == 0 || Steps[s - 1].Op != after))
                throw Bad(s, $"op '{op.Name}' must run right after '{p.Ops[after].Name}'");
            foreach (var t in st.Stores)
            {
                if (!resident.ContainsKey(t)) throw Bad(s, $"stores {N(t)}, which is not resident");
                if (offChip.Contains(t)) throw Bad(s, $"stores {N(t)} again; an identical copy is already off chip");
                offChip.Add(t);
                stored += p.Tensors[t].Bytes;
            }
            foreach (var t in st.Evictions)
                if (!resident.Remove(t)) throw Bad(s, $"evicts {N(t)}, which is not resident");
            foreach (var t in st.Loads)
            {
                if (resident.ContainsKey(t)) throw Bad(s, $"loads {N(t)}, which is already resident");
                if (!offChip.Contains(t)) throw Bad(s, $"loads {N(t)}, which is not off chip (a reload needs a store first)");
                Place(s, t);
                loaded += p.Tensors[t].Bytes;
            }
            foreach (var t in op.Inputs)
            {
                if (p.Producer(t) >= 0 && !produced.Contains(t)) throw Bad(s, $"op '{op.Name}' runs before the producer of its operand {N(t)}");
                if (!resident.ContainsKey(t)) throw Bad(s, $"op '{op.Name}' needs {N(t)}, which is not resident");
            }
            foreach (var t in op.Outputs)
            {
                if (resident.ContainsKey(t)) throw Bad(s, $"result {N(t)} is already resident");
                Place(s, t);
                produced.Add(t);
            }
        }
        if (done.Count != p.Ops.Count) throw new ScheduleException($"{p.Ops.Count - done.Count} ops never run");
        foreach (var t in FinalStores)
        {
            if (!resident.ContainsKey(t)) throw new ScheduleException($"final store of {N(t)}, which is not resident");
            if (!offChip.Add(t)) throw new ScheduleException($"final store of {N(t)}, which is already off chip");
            stored += p.Tensors[t].Bytes;
        }
        foreach (var t in p.Tensors.Where(t => t.Kind == TensorKind.Output))
            if (!offChip.Contains(t.Id)) throw new ScheduleException($"output {N(t.Id)} is never stored");
        return new Traffic(loaded, stored, p.CompulsoryTraffic);

        void Place(int s, int t)
        {
            if (!Steps[s].Addresses.TryGetValue(t, out long a)) throw Bad(s, $"{N(t)} has no address");
            long size = p.Size(t);
            if (a < 0 || a + size > p.Capacity) throw Bad(s, $"{N(t)} at [{a}, {a + size}) is outside the scratchpad of {p.Capacity} bytes");
            if (a % p.AlignmentOf(t) != 0) throw Bad(s, $"{N(t)} at {a} is not aligned to {p.AlignmentOf(t)}");
            if (!p.InOneBank(a, size)) throw Bad(s, $"{N(t)} at [{a}, {a + size}) crosses a bank boundary (banks of {p.BankBytes} bytes)");
            if (!p.InItsBank(t, a)) throw Bad(s, $"{N(t)} at {a} is outside its bank {p.Tensors[t].Bank} (banks of {p.BankBytes} bytes)");
            foreach (var (u, b) in resident)
                if (a < b + p.Size(u) && b < a + size)
                    throw Bad(s, $"{N(t)} at [{a}, {a + size}) overlaps resident {N(u)} at [{b}, {b + p.Size(u)})");
            resident[t] = a;
        }
    }
}

/// <summary>An illegal schedule: a solver bug, never a user error.</summary>
public sealed class ScheduleException(string message) : Exception(message);
