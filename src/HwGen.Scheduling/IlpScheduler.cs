using System.Diagnostics;
using System.Globalization;
using Google.OrTools.Sat;

namespace HwGen.Scheduling;

/// <summary>
/// Fixed states at the ends of a window (divide and conquer): tensors resident at the start at their addresses,
/// tensors already off chip at the start, tensors that must be resident at the end at given addresses, and
/// tensors that must be off chip by the end. With <see cref="KeepAtEnd"/> the end is free instead (rolling
/// horizon): each of those tensors must end resident (anywhere) or off chip, and each one in
/// <see cref="UsedLater"/> that does not end resident costs its reload.
/// </summary>
public sealed record Boundary(IReadOnlyDictionary<int, long> InitialResident, IReadOnlySet<int> InitiallyOffChip,
    IReadOnlyDictionary<int, long> FinalResident, IReadOnlySet<int> MustEndOffChip)
{
    public IReadOnlySet<int>? KeepAtEnd { get; init; }
    public IReadOnlySet<int> UsedLater { get; init; } = new HashSet<int>();
}

/// <summary>Options of the exact model. The time limit is CP-SAT's deterministic time, independent of load; with one
/// worker the same problem always gives the same schedule. More workers search in parallel (often better schedules)
/// but CP-SAT's parallel search is not reproducible, even with interleaving (measured). Wall time is capped at
/// <see cref="WallFactor"/> times the limit, a safety net only: a solve that hits it is not reproducible.</summary>
/// <remarks>Divide and conquer shares <see cref="TimeLimitSeconds"/> among its windows unless
/// <see cref="WindowTimeLimitSeconds"/> gives each window its own limit.</remarks>
public sealed record IlpOptions(double TimeLimitSeconds = 10, int Workers = 1, bool HintWithGreedy = true, double? WindowTimeLimitSeconds = null)
{
    /// <summary>A budget every solve draws from (the compiler's: one per compile); null: each solve has only its own limit.</summary>
    public SolveBudget? Budget { get; init; }

    /// <summary>Add the tight-segment dominance (on by default; off only to measure what it gains).</summary>
    public bool Tight { get; init; } = true;

    /// <summary>Search for a better lower bound rather than for better schedules (CP-SAT's objective lower-bound search);
    /// the benchmark uses it after a normal solve that did not prove optimality, to tighten the gap it reports.</summary>
    public bool BoundSearch { get; init; }

    /// <summary>Core-based search (CP-SAT's optimize_with_core): poor at finding schedules, strong at raising the lower
    /// bound; given enough time it proves optima the default search does not (the benchmark's <c>--prove</c>).</summary>
    public bool CoreSearch { get; init; }

    /// <summary>Solve the timing first (order and residency segments under the capacity, no addresses), then place
    /// addresses with that timing fixed; only if the segments do not fit side by side (fragmentation) solve the full
    /// model. On by default; off only to measure what it gains. Banked scratchpads and rolling-horizon windows (free
    /// ends) always use the full model: their timings rarely pack (2 of 3 rolling windows of random-708-100 did not).</summary>
    public bool TimingFirst { get; init; } = true;
}

/// <summary>
/// The scheduling time of one compile: deterministic seconds that every CP-SAT solve draws from (a solve's limit is
/// clipped to what remains, and it spends the deterministic time CP-SAT reports, so the same problem always gets the
/// same schedule), and wall seconds inside the solves of <see cref="IlpScheduler.WallFactor"/> times that, a safety net
/// only (a solve cut by it is not reproducible; <see cref="WallCapHit"/> says so). Once it is spent, solves return no
/// schedule and the caller keeps what it has. A stage takes a <see cref="Share"/> so that later stages keep theirs.
/// </summary>
public sealed class SolveBudget
{
    readonly object gate = new();
    readonly SolveBudget? parent;
    double spent, wallSpent;

    /// <summary>Below this many deterministic seconds a solve is not started.</summary>
    public const double MinSolveSeconds = 0.01;

    public SolveBudget(double deterministicSeconds) => Total = deterministicSeconds;

    SolveBudget(SolveBudget parent, double deterministicSeconds)
    {
        this.parent = parent;
        Total = Math.Min(deterministicSeconds, parent.Remaining);
    }

    public double Total { get; }
    public double Spent { get { lock (gate) return spent; } }
    public double Remaining => Math.Max(0, Total - Spent);
    /// <summary>Wall seconds left for solving: <see cref="IlpScheduler.WallFactor"/> times the budget, less the wall time the
    /// solves took (building the models is linear work and is not counted).</summary>
    public double WallRemaining
    {
        get
        {
            double own;
            lock (gate) own = Total * IlpScheduler.WallFactor - wallSpent;
            return parent is null ? own : Math.Min(own, parent.WallRemaining);
        }
    }
    public bool Exhausted => Remaining < MinSolveSeconds || WallRemaining <= 0 || parent?.Exhausted == true;
    /// <summary>Whether a solve was cut by the wall-clock safety net (the schedule may then differ run to run).</summary>
    public bool WallCapHit { get; private set; }

    /// <summary>A share of what remains, for one stage (a pass of divide and conquer): what it spends is spent here too.</summary>
    public SolveBudget Share(double deterministicSeconds) => new(this, deterministicSeconds);

    public void Spend(double deterministic, double wallSeconds, bool capHit)
    {
        lock (gate)
        {
            spent += deterministic;
            wallSpent += wallSeconds;
            WallCapHit |= capHit;
        }
        parent?.Spend(deterministic, wallSeconds, capHit);
    }
}

/// <summary>
/// The exact scheduling model in OR-Tools CP-SAT (our formulation with COSMA's semantics):
/// <list type="bullet">
/// <item>pos[o] in [0, T): the step of op o; all different; producers before consumers.</item>
/// <item>each tensor has up to one residency segment per use: an optional time interval [start, end) at a fixed
/// aligned address; segment 0 of a produced tensor starts at its producer's step; segments are ordered.</item>
/// <item>every use of a tensor lies inside one present segment; a segment of a produced tensor other than the
/// first is a reload and needs the tensor stored; outputs are stored.</item>
/// <item>no two segments overlap in (time x address): AddNoOverlap2D; addresses lie inside the capacity, and inside
/// one bank when the scratchpad is banked.</item>
/// <item>minimize bytes loaded (every segment of an input or weight, every later segment of the others) plus bytes stored.
/// The objective is traffic, not cycles, also for a timed problem: at batch 1 the designs are memory bound, so bytes
/// moved is the first-order term of the cycles; the compiler's event model gives the exact cycles of the result; and a
/// makespan objective would need each step's start time and the DMA's and engines' order in the model, seconds per solve.
/// Cycles break ties instead, between the schedules the solvers and the compiler compare (<see cref="Schedule.Cost"/>).</item>
/// <item>dominance: segments are tight (they start at a use or at production and end right after a use or after
/// production), which removes many equivalent solutions from the search.</item>
/// </list>
/// Solved in two stages by default (<see cref="IlpOptions.TimingFirst"/>): the model without the rectangles (the
/// capacity as a cumulative constraint only) is a relaxation whose optimum and bound hold for the full model, and
/// its schedule almost always packs; the full model runs only when it does not.
/// Returns null when no schedule is found within the time limit.
/// </summary>
public static class IlpScheduler
{
    const int MaxTightUses = 3;

    /// <summary>Wall-time cap as a multiple of the deterministic limit. A deterministic unit takes about 1-3 s of wall
    /// time on a 2-core machine; a cap of 3 was hit under a loaded test run and changed a schedule, so the cap sits
    /// well above the usual rate.</summary>
    public const double WallFactor = 10;
    sealed record Segment(int Tensor, int K, BoolVar Present, IntVar Start, IntVar End, IntVar Address);

    /// <summary>What one CP-SAT model decides: everything, the timing alone (no addresses), or the addresses of a fixed timing.</summary>
    enum Stage { Full, Timing, Placement }

    /// <summary>A solve's schedule with its objective (total traffic in bytes).</summary>
    sealed record Solved(Schedule Schedule, long Objective);

    /// <summary>The exact schedule; of a whole timed problem (no boundary), with double-buffered addresses when that shortens
    /// its timeline (<see cref="GreedyScheduler.DoubleBuffered"/>).</summary>
    public static Schedule? Solve(ScratchpadProblem p, IlpOptions? options = null, Boundary? boundary = null, Schedule? hint = null)
    {
        var s = SolveModel(p, options, boundary, hint);
        return s is not null && boundary is null ? GreedyScheduler.DoubleBuffered(p, s) : s;
    }

    static Schedule? SolveModel(ScratchpadProblem p, IlpOptions? options, Boundary? boundary, Schedule? hint)
    {
        options ??= new IlpOptions();
        var sw = Stopwatch.StartNew();
        if (!options.TimingFirst || (p.Banks > 1 && !p.AllPinned) || boundary?.KeepAtEnd is not null)
            return Finish(SolveStage(p, options, boundary, hint, Stage.Full), null, "cp-sat");
        var timing = SolveStage(p, options, boundary, hint, Stage.Timing);
        if (timing is null) return null;
        // Placement either succeeds at once or is infeasible; a quarter of the limit is plenty.
        var placed = SolveStage(p, options with { TimeLimitSeconds = options.TimeLimitSeconds / 4 }, boundary, timing.Schedule, Stage.Placement);
        if (placed is not null) return Finish(placed, timing, "cp-sat: timing, then addresses");
        return Finish(SolveStage(p, options, boundary, hint, Stage.Full), timing, "cp-sat: full model (the best timing did not fit side by side)");

        // The status, gap and bound of the final schedule: the timing stage's bound holds for every schedule.
        Schedule? Finish(Solved? s, Solved? relaxation, string solver)
        {
            if (s is null) return null;
            long bound = Math.Max(s.Schedule.TrafficBound ?? 0, relaxation?.Schedule.TrafficBound ?? 0);
            return s.Schedule.WithBound(bound, s.Objective) with { Solver = solver, SolveTime = sw.Elapsed };
        }
    }

    static Solved? SolveStage(ScratchpadProblem p, IlpOptions options, Boundary? boundary, Schedule? hint, Stage stage)
    {
        double limit = options.TimeLimitSeconds, wall = limit * WallFactor;
        if (options.Budget is { } budget)
        {
            if (budget.Exhausted) return null;
            limit = Math.Min(limit, budget.Remaining);
            wall = Math.Min(wall, budget.WallRemaining);
        }
        int T = p.Ops.Count;
        long align = p.Alignment;
        var m = new CpModel();
        var pos = p.Ops.Select(o => m.NewIntVar(0, T - 1, $"pos_{o.Id}")).ToArray();
        m.AddAllDifferent(pos);
        foreach (var o in p.Ops) if (o.After is { } a) m.Add(pos[o.Id] == pos[a] + 1);
        foreach (var t in p.Tensors)
            if (p.Producer(t.Id) is var q and >= 0)
                foreach (var c in p.Consumers(t.Id).Distinct()) m.Add(pos[q] < pos[c]);

        var segments = new List<Segment>();
        var segs = new Segment[p.Tensors.Count][];
        var stored = new Dictionary<int, BoolVar>();
        var costTerms = new List<(ILiteral Lit, long Bytes)>();
        var rects = m.AddNoOverlap2D();
        // Redundant with the rectangles, but a stronger relaxation: at every step, resident sizes sum to at most the capacity.
        var occupancy = m.AddCumulative(p.Capacity / align);
        // With every tensor in its own bank, each bank's occupancy is bounded on its own too (the timing stage's relaxation stays tight).
        var bankOccupancy = p.AllPinned ? Enumerable.Range(0, p.Banks).Select(_ => m.AddCumulative(p.BankBytes / align)).ToArray() : null;
        foreach (var t in p.Tensors)
        {
            int producer = p.Producer(t.Id);
            var consumers = p.Consumers(t.Id).Distinct().ToList();
            long? initial = boundary?.InitialResident.TryGetValue(t.Id, out var ia) == true ? ia / align : null;
            long? final = boundary?.FinalResident.TryGetValue(t.Id, out var fa) == true ? fa / align : null;
            bool offAtStart = boundary is null ? t.StartsOffChip : boundary.InitiallyOffChip.Contains(t.Id);
            bool mustStore = t.Kind == TensorKind.Output && (boundary is null || producer >= 0) && !offAtStart
                             || boundary?.MustEndOffChip.Contains(t.Id) == true && !offAtStart;
            int n = consumers.Count + (Made(p, boundary, t.Id, 0) ? 1 : 0) + (final is not null ? 1 : 0);
            bool keep = boundary?.KeepAtEnd?.Contains(t.Id) == true;
            long units = p.Size(t.Id) / align, maxAddr = p.Capacity / align - units;
            segs[t.Id] = new Segment[n];
            for (int k = 0; k < n; k++)
            {
                var present = m.NewBoolVar($"p_{t.Id}_{k}");
                // The initial residency may end at 0: evicted before the first op runs, occupying no step.
                bool mayEndAtStart = k == 0 && initial is not null;
                var start = m.NewIntVar(0, T - 1, $"s_{t.Id}_{k}");
                var end = m.NewIntVar(mayEndAtStart ? 0 : 1, T, $"e_{t.Id}_{k}");
                var dur = m.NewIntVar(mayEndAtStart ? 0 : 1, T, $"d_{t.Id}_{k}");
                var addr = m.NewIntVar(0, maxAddr, $"a_{t.Id}_{k}");
                if (p.AlignmentOf(t.Id) / align is var factor and > 1)
                {
                    // A tensor with its own alignment sits at a multiple of it.
                    var slot = m.NewIntVar(0, maxAddr / factor, $"al_{t.Id}_{k}");
                    m.Add(addr == slot * factor);
                }
                var occupies = present;
                if (mayEndAtStart)
                {
                    occupies = m.NewBoolVar($"o_{t.Id}");
                    m.AddImplication(occupies, present);
                    m.Add(end >= 1).OnlyEnforceIf(occupies);
                    m.Add(end == 0).OnlyEnforceIf(occupies.Not());
                }
                var time = m.NewOptionalIntervalVar(start, dur, end, occupies, $"ti_{t.Id}_{k}");
                var space = m.NewOptionalFixedSizeIntervalVar(addr, units, occupies, $"ai_{t.Id}_{k}");
                if (t.Bank is { } pin)
                {
                    long bankUnits = p.BankBytes / align;
                    m.Add(addr >= pin * bankUnits).OnlyEnforceIf(present);   // an absent segment sits at 0
                    m.Add(addr + units <= pin * bankUnits + bankUnits);
                }
                else if (p.Banks > 1)
                {
                    // Inside one bank: bank * bankUnits <= addr and addr + units <= (bank + 1) * bankUnits.
                    long bankUnits = p.BankBytes / align;
                    var bank = m.NewIntVar(0, p.Banks - 1, $"b_{t.Id}_{k}");
                    m.Add(addr >= bank * bankUnits);
                    m.Add(addr + units <= bank * bankUnits + bankUnits);
                }
                if (stage != Stage.Timing) rects.AddRectangle(time, space);
                occupancy.AddDemand(time, units);
                if (bankOccupancy is not null) bankOccupancy[t.Bank!.Value].AddDemand(time, units);
                // An absent segment's variables are fixed, so the search does not branch on them.
                m.Add(start == 0).OnlyEnforceIf(present.Not());
                m.Add(end == 1).OnlyEnforceIf(present.Not());
                m.Add(addr == 0).OnlyEnforceIf(present.Not());
                var seg = new Segment(t.Id, k, present, start, end, addr);
                segs[t.Id][k] = seg;
                segments.Add(seg);
                if (k > 0)
                {
                    m.AddImplication(present, segs[t.Id][k - 1].Present);
                    m.Add(segs[t.Id][k - 1].End <= start).OnlyEnforceIf(present);
                }
                // A load: every segment but one that starts at production or as the initial residency.
                if (!Made(p, boundary, t.Id, k)) costTerms.Add((present, t.Bytes));
            }
            if (n == 0) continue;
            var first = segs[t.Id][0];
            if (producer >= 0) m.Add(first.Start == pos[producer]);
            if (initial is { } a0)
            {
                m.Add(first.Start == 0);
                m.Add(first.Address == a0);
            }
            if (Made(p, boundary, t.Id, 0) || consumers.Count > 0) m.Add(first.Present == 1);
            if (!offAtStart)
            {
                // Made here or resident from before without an off-chip copy: a reload needs a store first.
                var st = m.NewBoolVar($"st_{t.Id}");
                stored[t.Id] = st;
                costTerms.Add((st, t.Bytes));
                if (mustStore) m.Add(st == 1);
                if (n > 1) m.AddImplication(segs[t.Id][1].Present, st);
            }
            if (final is { } af)
            {
                var ends = segs[t.Id].Select(s =>
                {
                    var b = m.NewBoolVar($"fin_{t.Id}_{s.K}");
                    m.AddImplication(b, s.Present);
                    m.Add(s.End == T).OnlyEnforceIf(b);
                    m.Add(s.Address == af).OnlyEnforceIf(b);
                    return (ILiteral)b;
                }).ToList();
                m.AddBoolOr(ends);
            }
            if (keep)
            {
                // Free end: the tensor ends resident (a segment reaching T) or off chip; if used later and not resident, it is reloaded later.
                var endsResident = m.NewBoolVar($"keep_{t.Id}");
                var reaches = segs[t.Id].Select(s =>
                {
                    var b = m.NewBoolVar($"reach_{t.Id}_{s.K}");
                    m.AddImplication(b, s.Present);
                    m.Add(s.End == T).OnlyEnforceIf(b);
                    m.Add(s.End < T).OnlyEnforceIf([b.Not(), s.Present]);
                    m.AddImplication(b, endsResident);
                    return (ILiteral)b;
                }).ToList();
                if (reaches.Count == 0) m.Add(endsResident == 0);
                else m.AddBoolOr(reaches).OnlyEnforceIf(endsResident);
                if (!offAtStart) m.AddBoolOr([endsResident, stored[t.Id]]);
                if (boundary!.UsedLater.Contains(t.Id)) costTerms.Add((endsResident.Not(), t.Bytes));
            }
            var startsAt = segs[t.Id].Select(_ => new List<ILiteral>()).ToArray();
            var endsAt = segs[t.Id].Select(_ => new List<ILiteral>()).ToArray();
            // Dominance (tight segments): a segment can always shrink to start at its first use (unless it starts at
            // production or as the initial residency) and end right after its last use, or right after production, so
            // only such segments are searched. Skipped for tensors with many uses (the extra literals grow as uses
            // squared) and for tensors whose end state is fixed or free.
            bool tight = options.Tight && consumers.Count <= MaxTightUses && !EndFixed(boundary, t.Id);
            foreach (var c in consumers)
            {
                var inSeg = new List<ILiteral>();
                foreach (var s in segs[t.Id])
                {
                    var b = m.NewBoolVar($"in_{c}_{t.Id}_{s.K}");
                    m.AddImplication(b, s.Present);
                    m.Add(s.Start <= pos[c]).OnlyEnforceIf(b);
                    m.Add(pos[c] + 1 <= s.End).OnlyEnforceIf(b);
                    inSeg.Add(b);
                    if (tight)
                    {
                        var sa = m.NewBoolVar($"sa_{c}_{t.Id}_{s.K}");
                        m.AddImplication(sa, b);
                        m.Add(s.Start == pos[c]).OnlyEnforceIf(sa);
                        startsAt[s.K].Add(sa);
                        var ea = m.NewBoolVar($"ea_{c}_{t.Id}_{s.K}");
                        m.AddImplication(ea, b);
                        m.Add(s.End == pos[c] + 1).OnlyEnforceIf(ea);
                        endsAt[s.K].Add(ea);
                    }
                }
                m.AddExactlyOne(inSeg);
            }
            if (tight)
                foreach (var s in segs[t.Id])
                {
                    bool made = Made(p, boundary, t.Id, s.K);
                    if (!made && startsAt[s.K].Count > 0) m.AddBoolOr(startsAt[s.K]).OnlyEnforceIf(s.Present);
                    if (made)
                    {
                        // Right after production, or (an initial residency) evicted before the first op.
                        var early = m.NewBoolVar($"ee_{t.Id}");
                        m.Add(producer >= 0 ? s.End == s.Start + 1 : s.End == 0).OnlyEnforceIf(early);
                        endsAt[0].Add(early);
                    }
                    m.AddBoolOr(endsAt[s.K]).OnlyEnforceIf(s.Present);
                }
        }
        m.Minimize(LinearExpr.WeightedSum(costTerms.Select(c => (ILiteral)c.Lit), costTerms.Select(c => c.Bytes)));

        if (hint is not null) Hint(m, p, pos, segs, stored, hint, boundary, fixTiming: stage == Stage.Placement);
        else if (options.HintWithGreedy && boundary is null) Hint(m, p, pos, segs, stored, GreedyScheduler.Solve(p), null);

        var solver = new CpSolver
        {
            StringParameters = string.Create(CultureInfo.InvariantCulture,
                $"max_deterministic_time:{limit} max_time_in_seconds:{wall} num_workers:{options.Workers} random_seed:1{(options.BoundSearch ? " use_objective_lb_search:true" : "")}{(options.CoreSearch ? " optimize_with_core:true" : "")}"),
        };
        var clock = Stopwatch.StartNew();
        var status = solver.Solve(m);
        double took = clock.Elapsed.TotalSeconds;
        options.Budget?.Spend(solver.Response?.DeterministicTime ?? limit, took, took >= wall * 0.99);
        if (status is not (CpSolverStatus.Optimal or CpSolverStatus.Feasible)) return null;

        // Rebuild the steps from the solution.
        var order = Enumerable.Range(0, T).OrderBy(o => solver.Value(pos[o])).ToArray();
        var chosen = segments.Where(s => solver.BooleanValue(s.Present)).ToList();
        var steps = new List<ScheduleStep>();
        var finalStores = new List<int>();
        for (int step = 0; step < T; step++)
        {
            var op = p.Ops[order[step]];
            var stores = stored.Where(kv => solver.BooleanValue(kv.Value) && solver.Value(segs[kv.Key][0].End) == step).Select(kv => kv.Key).ToList();
            var evictions = chosen.Where(s => solver.Value(s.End) == step).Select(s => s.Tensor).ToList();
            var loads = chosen.Where(s => solver.Value(s.Start) == step && !Made(p, boundary, s.Tensor, s.K)).ToList();
            var results = chosen.Where(s => s.K == 0 && op.Outputs.Contains(s.Tensor)).ToList();
            var addresses = loads.Concat(results).ToDictionary(s => s.Tensor, s => solver.Value(s.Address) * align);
            steps.Add(new ScheduleStep(op.Id, stores, evictions, loads.Select(s => s.Tensor).ToList(), addresses));
        }
        finalStores.AddRange(stored.Where(kv => solver.BooleanValue(kv.Value) && solver.Value(segs[kv.Key][0].End) == T).Select(kv => kv.Key));
        // Placement fixes the timing, so its bound says nothing about other timings.
        long bound = stage == Stage.Placement ? 0 : (long)Math.Ceiling(solver.BestObjectiveBound - 1e-6);
        return new Solved(new Schedule(steps, finalStores, "cp-sat") { TrafficBound = bound }, (long)Math.Round(solver.ObjectiveValue));
    }

    /// <summary>Whether a window fixes where the tensor ends (resident at an address) or leaves it free (rolling horizon):
    /// then its last segment may reach the end without a use, so segments are not tightened.</summary>
    static bool EndFixed(Boundary? b, int t) => b?.FinalResident.ContainsKey(t) == true || b?.KeepAtEnd?.Contains(t) == true;

    /// <summary>Whether segment <paramref name="k"/> of tensor <paramref name="t"/> begins without a load: the first
    /// segment of a tensor made in the window or resident at its start. Every other segment is a load.</summary>
    static bool Made(ScratchpadProblem p, Boundary? b, int t, int k) =>
        k == 0 && (p.Producer(t) >= 0 || b?.InitialResident.ContainsKey(t) == true);

    /// <summary>Residency segments of a legal schedule: (tensor, start step, end step, address), in start order per tensor;
    /// <paramref name="initial"/> are resident before the first step.</summary>
    public static List<(int Tensor, int Start, int End, long Address)> SegmentsOf(ScratchpadProblem p, Schedule s, IReadOnlyDictionary<int, long>? initial = null)
    {
        var open = (initial ?? new Dictionary<int, long>()).ToDictionary(kv => kv.Key, kv => (Start: 0, Address: kv.Value));
        var result = new List<(int, int, int, long)>();
        for (int step = 0; step < s.Steps.Count; step++)
        {
            var st = s.Steps[step];
            foreach (var t in st.Evictions) { var (a, addr) = open[t]; open.Remove(t); result.Add((t, a, step, addr)); }
            foreach (var (t, addr) in st.Addresses) open[t] = (step, addr);
        }
        foreach (var (t, (a, addr)) in open) result.Add((t, a, s.Steps.Count, addr));
        return result.OrderBy(r => r.Item1).ThenBy(r => r.Item2).ToList();
    }

    /// <summary>Hints the model with schedule <paramref name="g"/>; with <paramref name="fixTiming"/> its order and segments
    /// become constraints and only addresses (and stores) are left to choose.</summary>
    static void Hint(CpModel m, ScratchpadProblem p, IntVar[] pos, Segment[][] segs, Dictionary<int, BoolVar> stored, Schedule g,
        Boundary? boundary, bool fixTiming = false)
    {
        var initial = boundary?.InitialResident;
        var order = g.Order.ToList();
        var stepOf = new int[order.Count];
        for (int i = 0; i < order.Count; i++) stepOf[order[i]] = i;
        for (int i = 0; i < order.Count; i++)
        {
            m.AddHint(pos[order[i]], i);
            if (fixTiming) m.Add(pos[order[i]] == i);
        }
        var byTensor = SegmentsOf(p, g, initial).GroupBy(r => r.Tensor).ToDictionary(x => x.Key, x => x.ToList());
        foreach (var t in p.Tensors)
        {
            var list = byTensor.GetValueOrDefault(t.Id) ?? [];
            for (int k = 0; k < segs[t.Id].Length; k++)
            {
                var s = segs[t.Id][k];
                if (k < list.Count)
                {
                    var (start, end) = (list[k].Start, list[k].End);
                    if (!EndFixed(boundary, t.Id))
                    {
                        // Shrink the segment around its uses (always legal), as tight segments require.
                        var inside = p.Consumers(t.Id).Select(c => stepOf[c]).Where(x => x >= start && x < end).ToList();
                        bool made = Made(p, boundary, t.Id, k);
                        if (!made && inside.Count > 0) start = inside.Min();
                        end = inside.Count > 0 ? inside.Max() + 1 : p.Producer(t.Id) < 0 && made ? 0 : start + 1;
                    }
                    m.AddHint(s.Present, 1);
                    m.AddHint(s.Start, start);
                    m.AddHint(s.End, end);
                    if (fixTiming)
                    {
                        m.Add(s.Present == 1);
                        m.Add(s.Start == start);
                        m.Add(s.End == end);
                    }
                    m.AddHint(s.Address, list[k].Address / p.Alignment);
                }
                else
                {
                    m.AddHint(s.Present, 0);
                    if (fixTiming) m.Add(s.Present == 0);
                }
            }
        }
        var storedSet = new HashSet<int>(g.Steps.SelectMany(s => s.Stores).Concat(g.FinalStores));
        foreach (var (t, v) in stored) m.AddHint(v, storedSet.Contains(t) ? 1 : 0);
    }
}
