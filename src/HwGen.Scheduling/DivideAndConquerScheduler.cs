using System.Diagnostics;

namespace HwGen.Scheduling;

/// <summary>
/// Divide and conquer for graphs too large for the exact model (our choice, in the spirit of COSMA's heuristic):
/// a large-neighbourhood search on the greedy schedule. The greedy order is cut into windows of at most
/// <c>windowOps</c> ops (a chain is never split). Each window is solved exactly between the greedy's states at
/// its two ends (what is resident where, what is off chip), hinted with the greedy's own steps; the cheaper of
/// the two is kept. States at the window ends match, so the windows stitch into one legal schedule that moves
/// no more than the greedy. A second pass (rolling horizon) solves the same windows in order from the state the
/// previous window left, with a free end: what stays resident is the next window's start, and a tensor used later
/// that does not stay costs its reload. A third pass solves windows shifted by half a window between the states of
/// the cheaper of the two, so what the first cuts split is solved whole (random-704-100: 2,432 to 2,304 B; its
/// 4-bank variant 2,176 to 1,920 B; a second shifted round improved neither). Each pass gets the time limit (with a compile's budget, a share of it each).
/// Optionally the result then starts one exact solve of the whole graph (see <c>wholeMaxOps</c>).
/// </summary>
public static class DivideAndConquerScheduler
{
    /// <summary>The state before a step: what is resident where, and whether a tensor is off chip (a test, not a set: a set per
    /// window boundary would hold every weight of the model once per window).</summary>
    sealed record State(Dictionary<int, long> Resident, Func<int, bool> OffChip);

    /// <param name="wholeMaxOps">up to this many ops, the result then starts one exact solve of the whole graph, which
    /// keeps it or improves it (the exact model alone, from cold, can find nothing on such graphs in a short limit).</param>
    public static Schedule Solve(ScratchpadProblem p, int windowOps, IlpOptions options, int wholeMaxOps = 0)
    {
        var sw = Stopwatch.StartNew();
        var greedy = GreedyScheduler.Solve(p);
        if (greedy.Verify(p).NonCompulsory == 0) return greedy;  // nothing to gain
        var windows = Windows(p, greedy, windowOps);
        // With a budget, each pass and the whole-graph solve take a share of their own, so early windows cannot starve them.
        IlpOptions Pass(IlpOptions o) => o.Budget is { } b ? o with { Budget = b.Share(options.TimeLimitSeconds) } : o;
        var fixedEnds = FixedEnds(p, greedy, windows, Pass(PerWindow(options, windows.Count)), "divide-and-conquer between greedy states");
        var rolling = RollingHorizon(p, greedy, windows, Pass(PerWindow(options, windows.Count)));
        // Ranked by bytes moved, then (a timed problem) by makespan: see Schedule.Cost.
        var best = fixedEnds.NoWorseThan(p, rolling) ? fixedEnds : rolling;
        if (best.Verify(p).NonCompulsory > 0)
        {
            // Third pass: windows shifted by half a window, between the better schedule's own states, so that what
            // the first cuts split is solved whole.
            var shifted = FixedEnds(p, best, Windows(p, best, windowOps, first: windowOps / 2), Pass(PerWindow(options, windows.Count)),
                $"{best.Solver}, then between its states with windows shifted by half");
            if (!best.NoWorseThan(p, shifted)) best = shifted;
        }
        if (p.Ops.Count <= wholeMaxOps && best.Verify(p).NonCompulsory > 0
            && IlpScheduler.Solve(p, Pass(options), hint: best) is { } whole && !best.NoWorseThan(p, whole))
            best = whole with { Solver = $"{best.Solver}, then {whole.Solver} on the whole graph from it" };
        return GreedyScheduler.DoubleBuffered(p, best) with { SolveTime = sw.Elapsed };
    }

    /// <summary>The rolling-horizon pass alone (for tests and measurements).</summary>
    public static Schedule SolveRolling(ScratchpadProblem p, int windowOps, IlpOptions options)
    {
        var greedy = GreedyScheduler.Solve(p);
        var windows = Windows(p, greedy, windowOps);
        return RollingHorizon(p, greedy, windows, PerWindow(options, windows.Count));
    }

    /// <summary>Each window's exact solve: the options' window limit, or the total limit shared by the windows.</summary>
    static IlpOptions PerWindow(IlpOptions options, int windows) =>
        options with { TimeLimitSeconds = options.WindowTimeLimitSeconds ?? Math.Max(0.5, options.TimeLimitSeconds / windows) };

    /// <summary>Windows between the states of schedule <paramref name="basis"/> (the greedy, or a better schedule).</summary>
    static Schedule FixedEnds(ScratchpadProblem p, Schedule basis, List<(int S, int E)> windows, IlpOptions perWindow, string name)
    {
        var sw = Stopwatch.StartNew();
        var states = States(p, basis, windows.SelectMany(w => new[] { w.S, w.E }));

        var steps = new List<ScheduleStep>();
        var offChip = new HashSet<int>(p.Tensors.Where(t => t.StartsOffChip).Select(t => t.Id));
        List<int> carriedStores = [], carriedEvictions = [];
        List<int> finalStores = [];
        int improved = 0;
        // Nothing follows the last window: it only has to leave every output off chip.
        var last = new State([], t => p.Tensors[t].Kind == TensorKind.Output || p.Tensors[t].StartsOffChip);
        foreach (var (s, e) in windows)
        {
            var endState = e == basis.Steps.Count ? last : states[e];
            var (windowSteps, windowFinal, better) = SolveWindow(p, basis, states[s], endState, s, e, perWindow);
            if (better) improved++;
            for (int i = 0; i < windowSteps.Count; i++)
            {
                var st = windowSteps[i];
                var stores = (i == 0 ? carriedStores.Concat(st.Stores) : st.Stores).Where(offChip.Add).ToList();
                var evictions = i == 0 ? carriedEvictions.Concat(st.Evictions).Distinct().ToList() : st.Evictions.ToList();
                steps.Add(st with { Stores = stores, Evictions = evictions });
            }
            // Tensors the window leaves resident beyond the basis's state go at the next step; its end stores come first.
            var resident = new Dictionary<int, long>(states[s].Resident);
            foreach (var st in windowSteps) Apply(st, resident);
            carriedEvictions = resident.Keys.Where(t => !endState.Resident.ContainsKey(t)).ToList();
            carriedStores = windowFinal;
            finalStores = windowFinal;
        }
        return new Schedule(steps, finalStores.Where(offChip.Add).ToList(),
            $"{name} ({windows.Count} windows, {improved} improved)",
            SolveStatus.Heuristic, double.NaN, sw.Elapsed);
    }

    /// <summary>Windows in order, each from the state the previous one left, with a free end. A window the exact model
    /// cannot improve in time keeps the greedy's steps from that state. A window's end stores, and the evictions of
    /// what it leaves resident but nobody needs, happen at the next window's first step.</summary>
    static Schedule RollingHorizon(ScratchpadProblem p, Schedule greedy, List<(int S, int E)> windows, IlpOptions perWindow)
    {
        var sw = Stopwatch.StartNew();
        var resident = new Dictionary<int, long>();
        var offChip = new HashSet<int>(p.Tensors.Where(t => t.StartsOffChip).Select(t => t.Id));
        var steps = new List<ScheduleStep>();
        List<int> carriedStores = [], carriedEvictions = [], finalStores = [];
        var lastUse = new int[p.Tensors.Count];
        for (int i = 0; i < greedy.Steps.Count; i++)
            foreach (var t in p.Uses(p.Ops[greedy.Steps[i].Op])) lastUse[t] = i;
        bool IsOutput(int t) => p.Tensors[t].Kind == TensorKind.Output;
        foreach (var (s, e) in windows)
        {
            bool lastWindow = e == greedy.Steps.Count;
            var ops = greedy.Steps.Skip(s).Take(e - s).Select(st => st.Op).ToList();
            var (sub, global, local, _) = SubProblem(p, ops, resident.Keys, $"/rolling{s}-{e}");
            var usedLater = global.Where(t => lastUse[t] >= e).ToList();
            var boundary = new Boundary(resident.ToDictionary(kv => local[kv.Key], kv => kv.Value), global.Where(offChip.Contains).Select(t => local[t]).ToHashSet(),
                new Dictionary<int, long>(), lastWindow ? global.Where(IsOutput).Select(t => local[t]).ToHashSet() : new HashSet<int>())
            {
                KeepAtEnd = lastWindow ? null : usedLater.Concat(global.Where(IsOutput)).Select(t => local[t]).ToHashSet(),
                UsedLater = usedLater.Select(t => local[t]).ToHashSet(),
            };
            // The greedy from this window's start state: a legal hint, and the fallback.
            var fallback = GreedyScheduler.Solve(sub, Enumerable.Range(0, ops.Count).ToList(), boundary);
            var ilp = IlpScheduler.Solve(sub, perWindow, boundary, fallback) ?? fallback;
            for (int i = 0; i < ilp.Steps.Count; i++)
            {
                var g = Renumber(ilp.Steps[i], o => ops[o], t => global[t]);
                var stores = (i == 0 ? carriedStores : []).Concat(g.Stores.Where(offChip.Add)).ToList();
                var evictions = i == 0 ? carriedEvictions.Concat(g.Evictions).Distinct().ToList() : g.Evictions.ToList();
                g = g with { Stores = stores, Evictions = evictions };
                steps.Add(g);
                Apply(g, resident);
            }
            // End stores: off chip from here on (the next window knows), executed at its first step.
            carriedStores = ilp.FinalStores.Select(t => global[t]).Where(offChip.Add).ToList();
            if (lastWindow) finalStores = carriedStores;
            // What stays resident but nobody needs any more leaves at the next window's first step.
            carriedEvictions = resident.Keys.Where(t => lastUse[t] < e && (!IsOutput(t) || offChip.Contains(t))).ToList();
            foreach (var t in carriedEvictions) resident.Remove(t);
        }
        return new Schedule(steps, finalStores, $"divide-and-conquer, rolling horizon ({windows.Count} windows)", SolveStatus.Heuristic, double.NaN, sw.Elapsed);
    }

    /// <summary>The exact model on steps [s, e) of <paramref name="basis"/> between the given states; keeps the basis's own steps unless it does better.</summary>
    static (List<ScheduleStep> Steps, List<int> Final, bool Better) SolveWindow(ScratchpadProblem p, Schedule basis,
        State start, State end, int s, int e, IlpOptions options)
    {
        var basisSteps = basis.Steps.Skip(s).Take(e - s).ToList();
        var basisFinal = e == basis.Steps.Count ? basis.FinalStores.ToList() : [];
        long basisCost = Schedule.MovedBy(basisSteps, basisFinal, t => p.Tensors[t].Bytes);
        if (basisCost == 0) return (basisSteps, basisFinal, false);  // nothing to gain

        var ops = basisSteps.Select(st => st.Op).ToList();
        var (sub, global, local, localOp) = SubProblem(p, ops, start.Resident.Keys.Concat(end.Resident.Keys)
            .Concat(basisSteps.SelectMany(st => st.Loads.Concat(st.Stores).Concat(st.Evictions))), $"/steps{s}-{e}");
        var tensors = sub.Tensors;
        Dictionary<int, long> Local(Dictionary<int, long> m) => m.ToDictionary(kv => local[kv.Key], kv => kv.Value);
        HashSet<int> LocalSet(Func<int, bool> offChip) => global.Where(offChip).Select(t => local[t]).ToHashSet();
        var boundary = new Boundary(Local(start.Resident), LocalSet(start.OffChip), Local(end.Resident), LocalSet(end.OffChip));
        var hint = new Schedule(basisSteps.Select(st => Renumber(st, o => localOp[o], t => local[t])).ToList(),
            basisFinal.Select(t => local[t]).ToList(), basis.Solver);

        var ilp = IlpScheduler.Solve(sub, options, boundary, hint);
        if (ilp is null) return (basisSteps, basisFinal, false);
        if (ilp.Moved(t => tensors[t].Bytes) >= basisCost) return (basisSteps, basisFinal, false);
        return (ilp.Steps.Select(st => Renumber(st, o => ops[o], t => global[t])).ToList(), ilp.FinalStores.Select(t => global[t]).ToList(), true);
    }

    /// <summary>The problem of a window: its ops (renumbered from 0) and every tensor they use or that is resident at its
    /// ends or moved inside it (renumbered; tensors made outside the window count as inputs, their boundary says where they are).</summary>
    static (ScratchpadProblem Sub, List<int> Global, Dictionary<int, int> Local, Dictionary<int, int> LocalOp) SubProblem(
        ScratchpadProblem p, List<int> ops, IEnumerable<int> resident, string suffix)
    {
        var inWindow = new HashSet<int>(ops);
        var global = ops.SelectMany(o => p.Uses(p.Ops[o])).Concat(resident).Distinct().ToList();
        var local = global.Select((t, i) => (t, i)).ToDictionary(x => x.t, x => x.i);
        var localOp = ops.Select((o, i) => (o, i)).ToDictionary(x => x.o, x => x.i);
        var tensors = global.Select((t, i) => new SchedTensor(i, p.Tensors[t].Name, p.Tensors[t].Bytes,
            p.Producer(t) >= 0 && inWindow.Contains(p.Producer(t)) ? TensorKind.Intermediate : TensorKind.Input) { Bank = p.Tensors[t].Bank, Alignment = p.Tensors[t].Alignment }).ToList();
        var sub = new ScratchpadProblem(p.Name + suffix,
            ops.Select((o, i) => new SchedOp(i, p.Ops[o].Name, p.Ops[o].Inputs.Select(t => local[t]).ToList(),
                p.Ops[o].Outputs.Select(t => local[t]).ToList(), p.Ops[o].After is { } a && localOp.TryGetValue(a, out var la) ? la : null)
                { Cycles = p.Ops[o].Cycles, Resource = p.Ops[o].Resource }).ToList(),
            tensors, p.Capacity, p.Alignment, p.Banks) { DmaBytesPerCycle = p.DmaBytesPerCycle, DmaOverheadCycles = p.DmaOverheadCycles };
        return (sub, global, local, localOp);
    }

    /// <summary>A step with its op and tensor ids mapped (between a window's problem and the whole problem).</summary>
    static ScheduleStep Renumber(ScheduleStep st, Func<int, int> op, Func<int, int> tensor) =>
        new(op(st.Op), st.Stores.Select(tensor).ToList(), st.Evictions.Select(tensor).ToList(), st.Loads.Select(tensor).ToList(),
            st.Addresses.ToDictionary(kv => tensor(kv.Key), kv => kv.Value));

    /// <summary>Advances a residency map over one step.</summary>
    static void Apply(ScheduleStep st, Dictionary<int, long> resident)
    {
        foreach (var t in st.Evictions) resident.Remove(t);
        foreach (var (t, a) in st.Addresses) resident[t] = a;
    }

    /// <summary>The state before each step in <paramref name="at"/> of a schedule (after the previous one ran); the state at
    /// the schedule's end includes the final stores. Residency is copied at those steps only, and a tensor is off chip from
    /// the step after its store, so the states take memory linear in the schedule, not in its steps times its tensors.</summary>
    static Dictionary<int, State> States(ScratchpadProblem p, Schedule g, IEnumerable<int> at)
    {
        var wanted = new HashSet<int>(at);
        var storedAt = new int[p.Tensors.Count];   // the step whose state first has the tensor off chip
        Array.Fill(storedAt, int.MaxValue);
        foreach (var t in p.Tensors.Where(t => t.StartsOffChip)) storedAt[t.Id] = 0;
        var resident = new Dictionary<int, long>();
        var states = new Dictionary<int, State>();
        bool OffChipAt(int step, int t) => storedAt[t] <= step;
        for (int i = 0; i <= g.Steps.Count; i++)
        {
            if (wanted.Contains(i)) { int step = i; states[i] = new(new(resident), t => OffChipAt(step, t)); }
            if (i == g.Steps.Count) break;
            foreach (var t in g.Steps[i].Stores) storedAt[t] = Math.Min(storedAt[t], i + 1);
            Apply(g.Steps[i], resident);
        }
        foreach (var t in g.FinalStores) storedAt[t] = Math.Min(storedAt[t], g.Steps.Count);
        return states;
    }

    /// <summary>Step ranges [s, e) of at most <paramref name="size"/> steps (the first of <paramref name="first"/> when
    /// given), extended so a chain stays whole.</summary>
    static List<(int S, int E)> Windows(ScratchpadProblem p, Schedule g, int size, int first = 0)
    {
        var windows = new List<(int, int)>();
        int s = 0;
        for (int i = 0; i < g.Steps.Count; i++)
        {
            bool chainContinues = i + 1 < g.Steps.Count && p.Ops[g.Steps[i + 1].Op].After == g.Steps[i].Op;
            if (i + 1 - s >= (windows.Count == 0 && first > 0 ? first : size) && !chainContinues) { windows.Add((s, i + 1)); s = i + 1; }
        }
        if (s < g.Steps.Count) windows.Add((s, g.Steps.Count));
        return windows;
    }
}
