using HwGen.Core;
using HwGen.Scheduling;
using HwGen.Tests.Support;
using Xunit.Abstractions;

namespace HwGen.Tests.Scheduling;

public sealed class SchedulingTests(ITestOutputHelper log)
{
    /// <summary>a -> op0 -> b -> op1 -> c, with weights; capacity in bytes, unit alignment.</summary>
    static ScratchpadProblem Chain(long capacity) => new("chain",
        [new SchedOp(0, "op0", [0, 1], [2]), new SchedOp(1, "op1", [2, 3], [4])],
        [new(0, "x", 4, TensorKind.Input), new(1, "w0", 2, TensorKind.Weight), new(2, "y", 3, TensorKind.Intermediate),
         new(3, "w1", 2, TensorKind.Weight), new(4, "z", 1, TensorKind.Output)], capacity);

    static ScheduleStep Step(int op, int[]? stores = null, int[]? evict = null, int[]? loads = null, params (int T, long A)[] at) =>
        new(op, stores ?? [], evict ?? [], loads ?? [], at.ToDictionary(x => x.T, x => x.A));

    [Fact]
    public void A_legal_hand_schedule_verifies_with_its_traffic()
    {
        var p = Chain(12);
        p.Check();
        var s = new Schedule([Step(0, loads: [0, 1], at: [(0, 0), (1, 4), (2, 6)]),
                              Step(1, evict: [0, 1], loads: [3], at: [(3, 0), (4, 2)])], [4], "hand");
        var t = s.Verify(p);
        Assert.Equal((8L, 1L, 9L, 0L), (t.Loaded, t.Stored, t.Compulsory, t.NonCompulsory));
    }

    public static TheoryData<string, string> IllegalSchedules => new()
    {
        { "operand-missing", "needs 'w1', which is not resident" },
        { "overlap", "overlaps resident 'x'" },
        { "capacity", "outside the scratchpad" },
        { "reload-without-store", "not off chip (a reload needs a store first)" },
        { "output-not-stored", "output 'z' is never stored" },
        { "order", "runs before the producer" },
        { "twice", "runs twice" },
        { "evict-absent", "evicts 'w1', which is not resident" },
    };

    [Theory]
    [MemberData(nameof(IllegalSchedules))]
    public void Verify_rejects_illegal_schedules(string kind, string reason)
    {
        var p = Chain(12);
        Schedule s = kind switch
        {
            "operand-missing" => new([Step(0, loads: [0, 1], at: [(0, 0), (1, 4), (2, 6)]), Step(1, at: [(4, 9)])], [4], "bad"),
            "overlap" => new([Step(0, loads: [0, 1], at: [(0, 0), (1, 3), (2, 6)])], [], "bad"),
            "capacity" => new([Step(0, loads: [0, 1], at: [(0, 0), (1, 4), (2, 10)])], [], "bad"),
            "reload-without-store" => new([Step(0, loads: [0, 1], at: [(0, 0), (1, 4), (2, 6)]),
                                           Step(1, evict: [2], loads: [2, 3], at: [(2, 6), (3, 9), (4, 11)])], [4], "bad"),
            "output-not-stored" => new([Step(0, loads: [0, 1], at: [(0, 0), (1, 4), (2, 6)]),
                                        Step(1, evict: [0, 1], loads: [3], at: [(3, 0), (4, 2)])], [], "bad"),
            "order" => new([Step(1, loads: [3], at: [(3, 0), (4, 2)])], [], "bad"),
            "twice" => new([Step(0, loads: [0, 1], at: [(0, 0), (1, 4), (2, 6)]), Step(0, at: [])], [], "bad"),
            _ => new([Step(0, evict: [3], loads: [0, 1], at: [(0, 0), (1, 4), (2, 6)])], [], "bad"),
        };
        var e = Assert.Throws<ScheduleException>(() => s.Verify(p));
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public void Check_rejects_a_cyclic_graph_and_a_scratchpad_too_small_for_one_op()
    {
        var cyclic = new ScratchpadProblem("cyc", [new SchedOp(0, "a", [1], [0]), new SchedOp(1, "b", [0], [1])],
            [new(0, "p", 1, TensorKind.Intermediate), new(1, "q", 1, TensorKind.Intermediate)], 10);
        Assert.Contains("cycle", Assert.Throws<HwGenException>(cyclic.Check).Message);
        Assert.Contains("too small for op 'op0'", Assert.Throws<HwGenException>(Chain(8).Check).Message);
        var twice = new ScratchpadProblem("two", [new SchedOp(0, "a", [], [0]), new SchedOp(1, "b", [], [0])],
            [new(0, "p", 1, TensorKind.Output)], 10);
        Assert.Contains("produced by more than one op", Assert.Throws<HwGenException>(twice.Check).Message);
    }

    public static TheoryData<int, int, double> Small => new()
    {
        { 1, 3, 0.35 }, { 2, 4, 0.3 }, { 3, 4, 0.4 }, { 4, 5, 0.3 }, { 5, 5, 0.45 }, { 6, 3, 0.25 }, { 7, 4, 0.25 }, { 8, 5, 0.35 },
    };

    [Theory]
    [MemberData(nameof(Small))]
    public void Ilp_optimum_equals_brute_force_on_small_graphs(int seed, int ops, double share)
    {
        var p = ProblemGenerators.RandomDag(seed, ops, share, maxUnits: 3, unit: 1, weights: ops <= 4);
        p.Check();
        var ilp = IlpScheduler.Solve(p, new IlpOptions(TimeLimitSeconds: 20))!;
        Assert.Equal(SolveStatus.Optimal, ilp.Status);
        var t = ilp.Verify(p);
        long brute = ScheduleBruteForce.Optimum(p);
        var greedy = GreedyScheduler.Solve(p).Verify(p);
        log.WriteLine($"seed {seed}, {ops} ops, capacity {p.Capacity}: brute force {brute}, ILP {t.Total}, greedy {greedy.Total}");
        Assert.Equal(brute, t.Total);
        Assert.Equal(t.Total, ilp.TrafficBound);
        Assert.True(greedy.Total >= t.Total);
    }

    [Fact]
    public void A_window_may_evict_its_initial_residents_before_its_first_op()
    {
        // The scratchpad starts full (a divide-and-conquer window): 'a' (already off chip) and 'b' fill it. Running
        // op1 first on 'b', then dropping 'a' and 'b' for the weight, moves only the compulsory 4 bytes. Before the
        // initial residency could end at step 0, this window was infeasible and divide and conquer fell back to greedy.
        var p = new ScratchpadProblem("full start",
            [new SchedOp(0, "op0", [2], [3]), new SchedOp(1, "op1", [1], [4])],
            [new(0, "a", 2, TensorKind.Input), new(1, "b", 2, TensorKind.Input), new(2, "w", 2, TensorKind.Weight),
             new(3, "y", 1, TensorKind.Output), new(4, "z", 1, TensorKind.Output)], 4);
        p.Check();
        var boundary = new Boundary(new Dictionary<int, long> { [0] = 0, [1] = 2 }, new HashSet<int> { 0, 2 },
            new Dictionary<int, long>(), new HashSet<int> { 3, 4 });
        var s = IlpScheduler.Solve(p, new IlpOptions(TimeLimitSeconds: 5), boundary);
        Assert.NotNull(s);
        Assert.Equal(SolveStatus.Optimal, s.Status);
        Assert.Equal([1, 0], s.Order);
        Assert.Contains(0, s.Steps[0].Evictions);
        long moved = s.Moved(t => p.Tensors[t].Bytes);
        Assert.Equal(4, moved);
        Assert.DoesNotContain(1, s.Steps.SelectMany(st => st.Stores).Concat(s.FinalStores));
    }

    [Theory]
    [InlineData(41, 10, 0.12)]
    [InlineData(42, 12, 0.1)]
    [InlineData(43, 12, 0.15)]
    public void Tight_segments_keep_the_optimum(int seed, int ops, double share)
    {
        // The dominance only removes equivalent schedules: with and without it, the proven optimum is the same.
        var p = ProblemGenerators.RandomDag(seed, ops, share, maxUnits: 3, unit: 1);
        var tight = IlpScheduler.Solve(p, new IlpOptions(TimeLimitSeconds: 20))!;
        var loose = IlpScheduler.Solve(p, new IlpOptions(TimeLimitSeconds: 20) { Tight = false })!;
        Assert.Equal(SolveStatus.Optimal, tight.Status);
        Assert.Equal(SolveStatus.Optimal, loose.Status);
        log.WriteLine($"seed {seed}: tight {tight.Verify(p).Total} in {tight.SolveTime.TotalSeconds:F2} s, loose {loose.Verify(p).Total} in {loose.SolveTime.TotalSeconds:F2} s, greedy {GreedyScheduler.Solve(p).Verify(p).Total}");
        Assert.Equal(loose.Verify(p).Total, tight.Verify(p).Total);
        Assert.True(GreedyScheduler.Solve(p).Verify(p).NonCompulsory > 0, "the graph should spill");
        // The lower-bound search (the benchmark's second solve) proves the same optimum.
        var bound = IlpScheduler.Solve(p, new IlpOptions(TimeLimitSeconds: 20) { BoundSearch = true }, hint: tight)!;
        Assert.Equal(tight.Verify(p).Total, bound.TrafficBound);
        // So does the core-based search (the benchmark's --prove).
        var cores = IlpScheduler.Solve(p, new IlpOptions(TimeLimitSeconds: 20) { CoreSearch = true }, hint: tight)!;
        Assert.Equal(tight.Verify(p).Total, cores.TrafficBound);
    }

    [Theory]
    [InlineData(21, 3, 0.35)]
    [InlineData(22, 4, 0.3)]
    [InlineData(23, 4, 0.4)]
    public void Ilp_optimum_equals_brute_force_with_chained_ops(int seed, int ops, double share)
    {
        var p = ProblemGenerators.RandomDag(seed, ops, share, maxUnits: 3, unit: 1, weights: false, chains: true);
        p.Check();
        Assert.Contains(p.Ops, o => o.After is not null);
        var ilp = IlpScheduler.Solve(p, new IlpOptions(TimeLimitSeconds: 20))!;
        Assert.Equal(SolveStatus.Optimal, ilp.Status);
        var greedy = GreedyScheduler.Solve(p).Verify(p);
        long brute = ScheduleBruteForce.Optimum(p);
        log.WriteLine($"chains, seed {seed}: brute force {brute}, ILP {ilp.Verify(p).Total}, greedy {greedy.Total}");
        Assert.Equal(brute, ilp.Verify(p).Total);
    }

    [Fact]
    public void Verify_rejects_a_broken_chain()
    {
        var p = new ScratchpadProblem("chain", [new SchedOp(0, "a", [0], []), new SchedOp(1, "x", [0], [1]), new SchedOp(2, "b", [0], [2], After: 0)],
            [new(0, "in", 1, TensorKind.Input), new(1, "y", 1, TensorKind.Output), new(2, "z", 1, TensorKind.Output)], 4);
        p.Check();
        Assert.Equal([0, 2, 1], p.TopologicalOrder()!);
        var s = new Schedule([Step(0, loads: [0], at: [(0, 0)]), Step(1, at: [(1, 1)]), Step(2, stores: [1], at: [(2, 2)])], [2], "bad");
        Assert.Contains("must run right after 'a'", Assert.Throws<ScheduleException>(() => s.Verify(p)).Message);
        GreedyScheduler.Solve(p).Verify(p);
    }

    [Theory]
    [InlineData(11, 20, 0.2)]
    [InlineData(12, 30, 0.15)]
    [InlineData(13, 40, 0.25)]
    public void Greedy_and_ilp_give_legal_schedules_and_the_ilp_is_no_worse(int seed, int ops, double share)
    {
        var p = ProblemGenerators.RandomDag(seed, ops, share);
        p.Check();
        var g = GreedyScheduler.Solve(p);
        var gt = g.Verify(p);
        var ilp = IlpScheduler.Solve(p, new IlpOptions(TimeLimitSeconds: 10))!;
        var it = ilp.Verify(p);
        log.WriteLine($"{p.Name}: greedy non-compulsory {gt.NonCompulsory}, ILP {it.NonCompulsory} ({ilp.Status}, gap {ilp.Gap:P1}, {ilp.SolveTime.TotalSeconds:F1} s)");
        Assert.True(it.Total <= gt.Total, $"ILP {it.Total} is worse than greedy {gt.Total}");
        Assert.True(it.Compulsory == gt.Compulsory);
    }

    [Theory]
    [InlineData(41, 120, 0.15, false)]
    [InlineData(42, 150, 0.1, true)]
    [InlineData(45, 100, 0.04, false)]
    [InlineData(46, 120, 0.03, true)]
    public void Divide_and_conquer_gives_legal_schedules_on_large_graphs(int seed, int ops, double share, bool chains)
    {
        var p = ProblemGenerators.RandomDag(seed, ops, share, chains: chains);
        p.Check();
        var dnc = DivideAndConquerScheduler.Solve(p, 40, new IlpOptions(TimeLimitSeconds: 2));
        var t = dnc.Verify(p);
        var g = GreedyScheduler.Solve(p).Verify(p);
        log.WriteLine($"{p.Name}: divide and conquer non-compulsory {t.NonCompulsory}, greedy {g.NonCompulsory}, {dnc.SolveTime.TotalSeconds:F1} s");
        Assert.Equal(g.Compulsory, t.Compulsory);
        Assert.True(t.Total <= g.Total, $"divide and conquer moved {t.Total} bytes, greedy {g.Total}");
    }

    [Fact]
    public void Divide_and_conquer_then_the_whole_graph_from_its_schedule_improves_it()
    {
        // 95 ops, more than the compiler's exact model takes alone; from cold, the whole model finds nothing in 3 s.
        var p = ProblemGenerators.RandomDag(4, 70, 0.05, chains: true);
        var options = new IlpOptions(TimeLimitSeconds: 5);
        var windows = DivideAndConquerScheduler.Solve(p, 40, options).Verify(p);
        var then = DivideAndConquerScheduler.Solve(p, 40, options, wholeMaxOps: 300);
        var t = then.Verify(p);
        log.WriteLine($"{then.Solver}: {t.NonCompulsory} B non-compulsory; divide and conquer alone {windows.NonCompulsory} B");
        Assert.Contains("on the whole graph", then.Solver);
        Assert.True(t.Total < windows.Total, $"{t.Total} bytes against divide and conquer's {windows.Total}");
    }

    [Theory]
    [InlineData(76)]
    [InlineData(78)]   // the rolling pass loads a tensor at a window's last step and evicts it at the next one, unused
    public void Divide_and_conquer_improves_on_its_passes_with_windows_shifted_by_half(int seed)
    {
        var p = ProblemGenerators.RandomDag(seed, 30, 0.06);
        var options = new IlpOptions(TimeLimitSeconds: 1, WindowTimeLimitSeconds: 1);
        var dnc = DivideAndConquerScheduler.Solve(p, 10, options);
        var rolling = DivideAndConquerScheduler.SolveRolling(p, 10, options).Verify(p);
        var t = dnc.Verify(p);
        log.WriteLine($"{p.Name}: {dnc.Solver}: {t.NonCompulsory} B non-compulsory, rolling horizon alone {rolling.NonCompulsory} B");
        Assert.Contains("shifted by half", dnc.Solver);
        Assert.True(t.Total < rolling.Total, $"shifted windows moved {t.Total} bytes, the rolling pass {rolling.Total}");
    }

    [Theory]
    [InlineData(41, 10, 0.12)]
    [InlineData(42, 12, 0.1)]
    [InlineData(249, 35, 0.04)]
    public void Solving_the_timing_first_keeps_the_optimum(int seed, int ops, double share)
    {
        // The timing model (no addresses) is a relaxation: its optimum, once placed, is the full model's optimum.
        var p = ProblemGenerators.RandomDag(seed, ops, share, unit: seed < 100 ? 1 : 64, maxUnits: seed < 100 ? 3 : 4);
        var staged = IlpScheduler.Solve(p, new IlpOptions(TimeLimitSeconds: 20))!;
        var full = IlpScheduler.Solve(p, new IlpOptions(TimeLimitSeconds: 20) { TimingFirst = false })!;
        log.WriteLine($"seed {seed}: {staged.Solver} {staged.Verify(p).Total} in {staged.SolveTime.TotalSeconds:F2} s, full model {full.Verify(p).Total} in {full.SolveTime.TotalSeconds:F2} s");
        Assert.Equal(SolveStatus.Optimal, staged.Status);
        Assert.Equal(SolveStatus.Optimal, full.Status);
        Assert.Equal("cp-sat: timing, then addresses", staged.Solver);
        Assert.Equal(full.Verify(p).Total, staged.Verify(p).Total);
        Assert.Equal(staged.Verify(p).Total, staged.TrafficBound);
    }

    [Fact]
    public void A_timing_whose_segments_do_not_fit_side_by_side_falls_back_to_the_full_model()
    {
        // 'a' starts resident in the middle of a 3-byte scratchpad; op0 reads it and writes e (2 bytes). The capacity
        // alone allows that (1 + 2 <= 3), but e fits beside 'a' only once 'a' moves: stored, evicted and reloaded at an end.
        var p = new ScratchpadProblem("fragmented",
            [new SchedOp(0, "op0", [0], [1])],
            [new(0, "a", 1, TensorKind.Input), new(1, "e", 2, TensorKind.Output)], 3);
        p.Check();
        var boundary = new Boundary(new Dictionary<int, long> { [0] = 1 }, new HashSet<int>(), new Dictionary<int, long>(), new HashSet<int> { 1 });
        var s = IlpScheduler.Solve(p, new IlpOptions(TimeLimitSeconds: 5), boundary)!;
        Assert.StartsWith("cp-sat: full model", s.Solver);
        Assert.Equal(SolveStatus.Optimal, s.Status);
        long moved = s.Moved(t => p.Tensors[t].Bytes);
        Assert.Equal(4, moved);   // store and reload 'a', store e
        Assert.Equal(4, s.TrafficBound);
        Assert.Equal([0], s.Steps[0].Loads);
    }

    [Fact]
    public void Divide_and_conquer_with_one_window_is_the_exact_model()
    {
        var p = ProblemGenerators.RandomDag(43, 12, 0.2);
        p.Check();
        var dnc = DivideAndConquerScheduler.Solve(p, 100, new IlpOptions(TimeLimitSeconds: 5)).Verify(p);
        var ilp = IlpScheduler.Solve(p, new IlpOptions(TimeLimitSeconds: 5))!;
        Assert.Equal(SolveStatus.Optimal, ilp.Status);
        Assert.Equal(ilp.Verify(p).Total, dnc.Total);
    }

    [Fact]
    public void The_exact_model_returns_nothing_when_it_finds_no_schedule_in_time()
    {
        var p = ProblemGenerators.RandomDag(44, 60, 0.08, chains: true);
        p.Check();
        Assert.Null(IlpScheduler.Solve(p, new IlpOptions(TimeLimitSeconds: 0.0001, HintWithGreedy: false)));
    }

    [Fact]
    public void The_exact_model_with_default_options_is_reproducible()
    {
        var p = ProblemGenerators.RandomDag(354, 50, 0.04);
        p.Check();
        string Signature(Schedule s) => string.Join(";", s.Steps.Select(st =>
            $"{st.Op}|{string.Join(",", st.Loads)}|{string.Join(",", st.Stores)}|{string.Join(",", st.Addresses.OrderBy(a => a.Key).Select(a => $"{a.Key}@{a.Value}"))}"));
        var a = IlpScheduler.Solve(p, new IlpOptions(TimeLimitSeconds: 4));
        var b = IlpScheduler.Solve(p, new IlpOptions(TimeLimitSeconds: 4));
        Assert.NotNull(a);
        Assert.NotNull(b);
        Assert.Equal(Signature(a), Signature(b));
        Assert.True(a.Verify(p).NonCompulsory < GreedyScheduler.Solve(p).Verify(p).NonCompulsory);
    }

    [Fact]
    public void Greedy_repacks_when_fragmentation_leaves_no_gap()
    {
        // Capacity 6: a(2) at 0, b(2) at 2, c(2) at 4 → op3 reads a and c and writes d(2): only b can go, d fits at 2.
        // Then op4 reads d(2) and writes e(4): needs a 4-wide gap, which the repack makes.
        var p = new ScratchpadProblem("frag",
            [new SchedOp(0, "o0", [], [0]), new SchedOp(1, "o1", [], [1]), new SchedOp(2, "o2", [], [2]),
             new SchedOp(3, "o3", [0, 2], [3]), new SchedOp(4, "o4", [3, 1], [4])],
            [new(0, "a", 2, TensorKind.Intermediate), new(1, "b", 1, TensorKind.Intermediate), new(2, "c", 2, TensorKind.Intermediate),
             new(3, "d", 2, TensorKind.Intermediate), new(4, "e", 3, TensorKind.Output)], 6);
        p.Check();
        var t = GreedyScheduler.Solve(p).Verify(p);
        Assert.True(t.Total >= p.CompulsoryTraffic);
    }

    /// <summary>Two layers over 4 row blocks (x_b -> y_b -> z_b, 4 bytes each) in 12 bytes: layer by layer every y is resident at
    /// once and some spill; in 4 chunks of rows each block goes through both layers before the next, and nothing spills.</summary>
    [Fact]
    public void A_chunked_order_takes_every_layers_first_rows_first_and_spills_less()
    {
        var ops = Enumerable.Range(0, 8).Select(o => new SchedOp(o, $"op{o}", [o], [o + 4]) { Position = o % 4 / 4.0 }).ToList();
        var tensors = Enumerable.Range(0, 12).Select(t => new SchedTensor(t, $"t{t}", 4,
            t < 4 ? TensorKind.Input : t < 8 ? TensorKind.Intermediate : TensorKind.Output)).ToList();
        var p = new ScratchpadProblem("rows", ops, tensors, 12);
        p.Check();
        Assert.Equal([0, 1, 2, 3, 4, 5, 6, 7], p.TopologicalOrder());
        Assert.Equal([0, 1, 4, 5, 2, 3, 6, 7], p.TopologicalOrder(2));
        Assert.Equal([0, 4, 1, 5, 2, 6, 3, 7], p.TopologicalOrder(4));
        var layered = GreedyScheduler.Solve(p).Verify(p);
        var chunked = GreedyScheduler.Solve(p, p.TopologicalOrder(4)!).Verify(p);
        Assert.True(layered.NonCompulsory > 0);
        Assert.Equal(0, chunked.NonCompulsory);
    }
}
