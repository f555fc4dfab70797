namespace HwGen.Scheduling;

/// <summary>Cycles [Start, End) during which something runs.</summary>
public readonly record struct Span(long Start, long End);

/// <summary>A DMA transfer in a <see cref="Timeline"/>: the load or store of tensor <see cref="Tensor"/> listed in step
/// <see cref="Step"/> of the schedule (the number of steps: a final store), and the cycles it runs.</summary>
public sealed record TimedTransfer(int Step, int Tensor, bool Store, long Start, long End);

/// <summary>When a decoupled machine runs a schedule: the op of each step (indexed by step) and the DMA's transfers,
/// in the order the DMA runs them.</summary>
public sealed record Timeline(IReadOnlyList<Span> Ops, IReadOnlyList<TimedTransfer> Transfers)
{
    /// <summary>The cycle the last op or transfer ends (0 when nothing runs).</summary>
    public long Makespan => Math.Max(Ops.Select(o => o.End).DefaultIfEmpty(0).Max(), Transfers.Select(t => t.End).DefaultIfEmpty(0).Max());
}

public sealed partial record Schedule
{
    /// <summary>
    /// The times a decoupled machine (after VTA: a DMA unit and engines, each running its own work in program order,
    /// all at once, ordered by dependency tokens) runs this legal schedule at. The DMA runs one transfer at a time, each
    /// step's in the controller program's order (the loads into lines no store of the step reads, then the stores,
    /// then the other loads; the final stores last); a transfer takes <see cref="ScratchpadProblem.TransferCycles"/>.
    /// A store starts once its tensor is complete; a load once its off-chip copy is (inputs and weights: at once)
    /// and once every access to what lay in its lines before has ended. Each op starts once its operands are complete,
    /// its predecessors have ended, its engine (<see cref="SchedOp.Resource"/>) has finished the previous op it runs,
    /// and the lines of its results are free as a load's are; it runs <see cref="ScratchpadProblem.CyclesOf"/>.
    /// Every start is the earliest these rules allow, so the timeline is deterministic; it takes time linear in the
    /// steps and transfers (times a search in the few address ranges the scratchpad is split into).
    /// It models no bank ports, queue depths or instruction fetch: the compiler's event model gives the exact cycles.
    /// </summary>
    public Timeline Timeline(ScratchpadProblem p)
    {
        int n = p.Tensors.Count;
        var ready = new long[n];      // when the tensor's on-chip copy is complete (its load or its producer ended)
        var lastUse = new long[n];    // when the last access to that copy ends (its writer, readers and stores)
        var offChipAt = new long[n];  // when its off-chip copy is complete (inputs and weights: 0)
        var at = new Dictionary<int, long>();
        var clock = new RegionClock();
        var opEnd = new long[p.Ops.Count];
        var engineFree = new Dictionary<string, long>();
        var ops = new Span[Steps.Count];
        var transfers = new List<TimedTransfer>();
        long dma = 0;

        void Release(int t)
        {
            clock.Release(at[t], at[t] + p.Size(t), lastUse[t], null);
            at.Remove(t);
        }
        void Transfer(int step, int t, bool store, long address)
        {
            long start = Math.Max(dma, store ? ready[t] : Math.Max(offChipAt[t], clock.FreeAt(address, address + p.Size(t)).Free));
            long end = dma = start + p.TransferCycles(t);
            transfers.Add(new TimedTransfer(step, t, store, start, end));
            if (store)
            {
                offChipAt[t] = end;
                lastUse[t] = Math.Max(lastUse[t], end);
            }
            else
            {
                at[t] = address;
                ready[t] = lastUse[t] = end;
            }
        }

        for (int s = 0; s < Steps.Count; s++)
        {
            var st = Steps[s];
            var op = p.Ops[st.Op];
            var storing = new HashSet<int>(st.Stores);
            var evicting = new HashSet<int>(st.Evictions);
            foreach (var t in st.Evictions.Where(t => !storing.Contains(t))) Release(t);
            foreach (var (t, store) in st.DmaOrder(t => at[t], p.Size).ToList())
            {
                Transfer(s, t, store, store ? at[t] : st.Addresses[t]);
                if (store && evicting.Contains(t)) Release(t);
            }

            string engine = op.Resource ?? "";
            long start = engineFree.GetValueOrDefault(engine);
            foreach (var t in op.Inputs) start = Math.Max(start, ready[t]);
            foreach (var q in p.Predecessors(op)) start = Math.Max(start, opEnd[q]);
            foreach (var t in op.Outputs) start = Math.Max(start, clock.FreeAt(st.Addresses[t], st.Addresses[t] + p.Size(t)).Free);
            long end = start + p.CyclesOf(op);
            ops[s] = new Span(start, end);
            engineFree[engine] = opEnd[op.Id] = end;
            foreach (var t in op.Inputs) lastUse[t] = Math.Max(lastUse[t], end);
            foreach (var t in op.Outputs)
            {
                at[t] = st.Addresses[t];
                ready[t] = lastUse[t] = end;
            }
        }
        foreach (var t in FinalStores) Transfer(Steps.Count, t, true, at[t]);
        return new Timeline(ops, transfers);
    }

    /// <summary>The makespan of this schedule's <see cref="Timeline"/>.</summary>
    public long Makespan(ScratchpadProblem p) => Timeline(p).Makespan;

    /// <summary>
    /// What the solvers and the compiler rank schedules by: bytes moved first, then, for a timed problem, the makespan
    /// (0 for an untimed one). Tuples compare in that order. Throws <see cref="ScheduleException"/> for an illegal schedule
    /// (<see cref="Verify"/> without proving the timeline again, which is the timeline's own check).
    /// </summary>
    public (long Bytes, long Cycles) Cost(ScratchpadProblem p) => (VerifyPlacement(p).Total, p.Timed ? Makespan(p) : 0);

    /// <summary>Whether this schedule is no worse than <paramref name="other"/> by <see cref="Cost"/>.</summary>
    public bool NoWorseThan(ScratchpadProblem p, Schedule other) => Cost(p).CompareTo(other.Cost(p)) <= 0;

    /// <summary>
    /// Proves <paramref name="timeline"/> legal for this schedule (which <see cref="Verify"/> must accept), however it
    /// was made; throws <see cref="ScheduleException"/> naming the first violation: every op and transfer of the
    /// schedule has a time, and runs at least its cycles; no engine runs two ops at once and the DMA not two transfers;
    /// no op starts before its operands are loaded or produced and its predecessors ended; nothing is stored before it
    /// is complete, nor loaded before its off-chip copy is; and no lines are overwritten (by a load or by an op's result)
    /// while an op still reads or writes, or a store or load still moves, what lay there.
    /// </summary>
    public void VerifyTimed(ScratchpadProblem p, Timeline timeline)
    {
        VerifyPlacement(p);
        CheckTimes(p, timeline);
    }

    void CheckTimes(ScratchpadProblem p, Timeline tl)
    {
        ScheduleException Bad(int step, string why) => new($"timeline, step {step}: {why}");
        string N(int t) => $"'{p.Tensors[t].Name}'";
        string Kind(bool store) => store ? "store" : "load";
        if (tl.Ops.Count != Steps.Count) throw new ScheduleException($"timeline: {tl.Ops.Count} op times for {Steps.Count} steps");
        for (int s = 0; s < Steps.Count; s++)
        {
            var (a, b) = tl.Ops[s];
            var op = p.Ops[Steps[s].Op];
            if (a < 0 || b - a < p.CyclesOf(op)) throw Bad(s, $"op '{op.Name}' runs [{a}, {b}), not the {p.CyclesOf(op)} cycles it takes");
        }
        var times = new Dictionary<(int Step, int Tensor, bool Store), TimedTransfer>();
        foreach (var tr in tl.Transfers)
        {
            if (tr.Tensor < 0 || tr.Tensor >= p.Tensors.Count) throw Bad(tr.Step, $"a {Kind(tr.Store)} of tensor #{tr.Tensor}, which does not exist");
            if (!times.TryAdd((tr.Step, tr.Tensor, tr.Store), tr)) throw Bad(tr.Step, $"the {Kind(tr.Store)} of {N(tr.Tensor)} has two times");
            if (tr.Start < 0 || tr.End - tr.Start < p.TransferCycles(tr.Tensor))
                throw Bad(tr.Step, $"the {Kind(tr.Store)} of {N(tr.Tensor)} runs [{tr.Start}, {tr.End}), not the {p.TransferCycles(tr.Tensor)} cycles it takes");
        }

        // One op at a time on each engine, one transfer at a time on the DMA.
        foreach (var engine in Enumerable.Range(0, Steps.Count).GroupBy(s => p.Ops[Steps[s].Op].Resource ?? ""))
        {
            var runs = engine.OrderBy(s => tl.Ops[s].Start).ThenBy(s => tl.Ops[s].End).ThenBy(s => s).ToList();
            for (int i = 1; i < runs.Count; i++)
                if (tl.Ops[runs[i]].Start < tl.Ops[runs[i - 1]].End)
                {
                    var (x, y) = (runs[i - 1], runs[i]);
                    throw Bad(y, $"{(engine.Key == "" ? "the default engine" : $"engine '{engine.Key}'")} runs op '{p.Ops[Steps[x].Op].Name}' [{tl.Ops[x].Start}, {tl.Ops[x].End}) " +
                                 $"and op '{p.Ops[Steps[y].Op].Name}' [{tl.Ops[y].Start}, {tl.Ops[y].End}) at once");
                }
        }
        var byStart = tl.Transfers.OrderBy(t => t.Start).ThenBy(t => t.End).ToList();
        for (int i = 1; i < byStart.Count; i++)
            if (byStart[i].Start < byStart[i - 1].End)
            {
                var (x, y) = (byStart[i - 1], byStart[i]);
                throw Bad(y.Step, $"the DMA runs the {Kind(x.Store)} of {N(x.Tensor)} [{x.Start}, {x.End}) and the {Kind(y.Store)} of {N(y.Tensor)} [{y.Start}, {y.End}) at once");
            }

        // Replay the steps: data and lines.
        int n = p.Tensors.Count;
        var ready = new long[n];
        var lastUse = new long[n];
        var lastUser = new string?[n];
        var offChipAt = new long[n];
        var loaded = new bool[n];    // whether the tensor's on-chip copy came from a load (for messages)
        var at = new Dictionary<int, long>();
        var opEnd = new long[p.Ops.Count];
        var clock = new RegionClock();
        TimedTransfer Time(int s, int t, bool store) =>
            times.Remove((s, t, store), out var tr) ? tr : throw Bad(s, $"the {Kind(store)} of {N(t)} has no time");
        void Use(int t, long end, string who)
        {
            if (end <= lastUse[t]) return;
            lastUse[t] = end;
            lastUser[t] = who;
        }
        void Write(int s, int t, long address, long start, string who)
        {
            var (free, user) = clock.FreeAt(address, address + p.Size(t));
            if (start < free)
                throw Bad(s, $"{who} overwrites [{address}, {address + p.Size(t)}) from cycle {start}, while {user} until cycle {free}");
            at[t] = address;
        }
        for (int s = 0; s < Steps.Count; s++)
        {
            var st = Steps[s];
            var op = p.Ops[st.Op];
            foreach (var t in st.Stores)
            {
                var tr = Time(s, t, true);
                if (tr.Start < ready[t]) throw Bad(s, $"the store of {N(t)} starts at cycle {tr.Start}, before {N(t)} is complete at {ready[t]}");
                offChipAt[t] = tr.End;
                Use(t, tr.End, $"the store of {N(t)} reads it");
            }
            foreach (var t in st.Evictions)
            {
                clock.Release(at[t], at[t] + p.Size(t), lastUse[t], lastUser[t]);
                at.Remove(t);
            }
            foreach (var t in st.Loads)
            {
                var tr = Time(s, t, false);
                if (tr.Start < offChipAt[t]) throw Bad(s, $"the load of {N(t)} starts at cycle {tr.Start}, before its off-chip copy is complete at {offChipAt[t]}");
                Write(s, t, st.Addresses[t], tr.Start, $"the load of {N(t)}");
                ready[t] = lastUse[t] = tr.End;
                lastUser[t] = $"the load of {N(t)} writes it";
                loaded[t] = true;
            }
            var (start, end) = tl.Ops[s];
            foreach (var t in op.Inputs)
                if (start < ready[t])
                    throw Bad(s, $"op '{op.Name}' starts at cycle {start}, before its operand {N(t)} is {(loaded[t] ? "loaded" : "produced")} at {ready[t]}");
            foreach (var q in p.Predecessors(op))
                if (start < opEnd[q]) throw Bad(s, $"op '{op.Name}' starts at cycle {start}, before op '{p.Ops[q].Name}' it follows ends at {opEnd[q]}");
            foreach (var t in op.Outputs) Write(s, t, st.Addresses[t], start, $"op '{op.Name}' writing {N(t)}");
            opEnd[op.Id] = end;
            foreach (var t in op.Inputs) Use(t, end, $"op '{op.Name}' reads {N(t)}");
            foreach (var t in op.Outputs)
            {
                ready[t] = lastUse[t] = end;
                lastUser[t] = $"op '{op.Name}' writes {N(t)}";
                loaded[t] = false;
            }
        }
        foreach (var t in FinalStores)
        {
            var tr = Time(Steps.Count, t, true);
            if (tr.Start < ready[t]) throw Bad(Steps.Count, $"the final store of {N(t)} starts at cycle {tr.Start}, before {N(t)} is complete at {ready[t]}");
        }
        if (times.Values.OrderBy(t => t.Step).FirstOrDefault() is { } extra)
            throw Bad(extra.Step, $"the timeline has a {Kind(extra.Store)} of {N(extra.Tensor)} the schedule does not have");
    }
}

/// <summary>
/// For each byte of the scratchpad, the cycle from which it may be written again: when the last access to the tensors
/// that lay there ended, and who made that access. Kept as a few ranges sorted by address (split where tensors begin
/// and end, merged where one is released).
/// </summary>
sealed class RegionClock
{
    readonly List<long> from = [0];             // range i is [from[i], from[i + 1]), the last one unbounded
    readonly List<long> free = [0];
    readonly List<string?> who = [null];

    /// <summary>The cycle from which [a, b) may be written, and who uses it until then.</summary>
    public (long Free, string? Who) FreeAt(long a, long b)
    {
        int i = from.BinarySearch(a);
        if (i < 0) i = ~i - 1;
        (long Free, string? Who) result = (0, null);
        for (; i < from.Count && from[i] < b; i++)
            if (free[i] > result.Free) result = (free[i], who[i]);
        return result;
    }

    /// <summary>[a, b) is free from cycle <paramref name="until"/> (or later, if it already was).</summary>
    public void Release(long a, long b, long until, string? user)
    {
        if (b <= a) return;
        int i = Split(a), j = Split(b);
        for (int k = i; k < j; k++)
            if (free[k] > until) (until, user) = (free[k], who[k]);
        from.RemoveRange(i + 1, j - i - 1);
        free.RemoveRange(i + 1, j - i - 1);
        who.RemoveRange(i + 1, j - i - 1);
        (free[i], who[i]) = (until, user);
    }

    /// <summary>Index of the range starting at <paramref name="at"/>, splitting the one that contains it.</summary>
    int Split(long at)
    {
        int i = from.BinarySearch(at);
        if (i >= 0) return i;
        i = ~i;
        from.Insert(i, at);
        free.Insert(i, free[i - 1]);
        who.Insert(i, who[i - 1]);
        return i;
    }
}
