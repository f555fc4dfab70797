using HwGen.Core;
using HwGen.Scheduling;
using HwGen.Tests.Support;
using Xunit.Abstractions;

namespace HwGen.Tests.Scheduling;

/// <summary>Timed schedules: the timeline a decoupled machine runs a schedule at (DMA and engines in their own order,
/// ordered by data and lines), its independent check, and the ranking by bytes moved, then cycles.</summary>
public sealed class TimelineTests(ITestOutputHelper log)
{
    /// <summary>op0 (mac, 10 cycles): x, w0 -> y; op1 (vec, 4): x -> u; op2 (mac, 10): y, u, w1 -> z. Tensors of 8 bytes, lines
    /// of 8, 48 bytes; the DMA moves 4 bytes a cycle after 1 cycle of overhead: 3 cycles a transfer.</summary>
    static ScratchpadProblem Timed() => new("timed",
        [new SchedOp(0, "op0", [0, 1], [2]) { Cycles = 10, Resource = "mac" },
         new SchedOp(1, "op1", [0], [3]) { Cycles = 4, Resource = "vec" },
         new SchedOp(2, "op2", [2, 3, 4], [5]) { Cycles = 10, Resource = "mac" }],
        [new(0, "x", 8, TensorKind.Input), new(1, "w0", 8, TensorKind.Weight), new(2, "y", 8, TensorKind.Intermediate),
         new(3, "u", 8, TensorKind.Intermediate), new(4, "w1", 8, TensorKind.Weight), new(5, "z", 8, TensorKind.Output)], 48, 8)
    { DmaBytesPerCycle = 4, DmaOverheadCycles = 1 };

    static ScheduleStep Step(int op, int[]? stores = null, int[]? evict = null, int[]? loads = null, params (int T, long A)[] at) =>
        new(op, stores ?? [], evict ?? [], loads ?? [], at.ToDictionary(x => x.T, x => x.A));

    /// <summary>u goes into w0's lines and w1 into x's, so each waits for the ops reading what was there.</summary>
    static Schedule Reusing(long w1At = 0) => new(
        [Step(0, loads: [0, 1], at: [(0, 0), (1, 8), (2, 16)]),
         Step(1, evict: [1], at: [(3, 8)]),
         Step(2, evict: [0], loads: [4], at: [(4, w1At), (5, 24)])], [5], "hand");

    static string Show(Timeline t) =>
        string.Join(" ", t.Ops.Select((o, s) => $"s{s}[{o.Start},{o.End})")) + " | " +
        string.Join(" ", t.Transfers.Select(x => $"{(x.Store ? "st" : "ld")}{x.Tensor}@{x.Step}[{x.Start},{x.End})"));

    [Fact]
    public void The_timeline_runs_each_task_as_early_as_data_lines_and_engines_allow()
    {
        var p = Timed();
        p.Check();
        Assert.True(p.Timed);
        var s = Reusing();
        var t = s.Timeline(p);
        log.WriteLine(Show(t));
        // op0 after both loads; op1 waits for op0 to stop reading w0's lines; w1's load for op1 to stop reading x's; op2 for w1.
        Assert.Equal([new(6, 16), new(16, 20), new(23, 33)], t.Ops);
        Assert.Equal([(0, 0L, 3L), (1, 3, 6), (4, 20, 23), (5, 33, 36)], t.Transfers.Select(x => (x.Tensor, x.Start, x.End)));
        Assert.Equal(36, t.Makespan);
        s.VerifyTimed(p, t);
        Assert.Equal(32, s.Verify(p).Total);
        // Lines nobody used in the previous step: the load of w1 overlaps op0, and op2 waits only for op1.
        var apart = Reusing(w1At: 32);
        Assert.Equal(33, apart.Makespan(p));
        Assert.Equal((32L, 33L), apart.Cost(p));
        Assert.True(apart.NoWorseThan(p, s));
        Assert.False(s.NoWorseThan(p, apart));
    }

    [Fact]
    public void A_load_into_the_lines_of_a_tensor_stored_in_the_same_step_follows_the_store()
    {
        var p = Timed();
        // Step 2 stores y, evicts it and reloads it into the same lines (legal, if wasteful).
        var s = new Schedule(
            [Step(0, loads: [0, 1], at: [(0, 0), (1, 8), (2, 16)]),
             Step(1, evict: [1], at: [(3, 8)]),
             Step(2, stores: [2], evict: [0, 2], loads: [4, 2], at: [(4, 32), (2, 16), (5, 24)])], [5], "spill");
        Assert.Equal(48, s.Verify(p).Total);
        var t = s.Timeline(p);
        log.WriteLine(Show(t));
        // The DMA order of step 2: w1 (its lines are free), the store of y, then y's reload, which waits for it.
        Assert.Equal([(4, false, 6L, 9L), (2, true, 16, 19), (2, false, 19, 22)], t.Transfers.Where(x => x.Step == 2).Select(x => (x.Tensor, x.Store, x.Start, x.End)));
        Assert.Equal(new Span(22, 32), t.Ops[2]);
        s.VerifyTimed(p, t);
    }

    [Fact]
    public void Double_buffered_addresses_shorten_the_timeline_with_the_same_transfers()
    {
        var p = Timed();
        var s = Reusing();
        var d = GreedyScheduler.DoubleBuffered(p, s);
        // u and w1 avoid the lines the step's evictions free: op1 overlaps op0 on the other engine, w1's load waits only for w0's lines.
        Assert.Equal([(0, 0L), (1, 8), (2, 16), (3, 24), (4, 8), (5, 32)], d.Steps.SelectMany(st => st.Addresses).Select(kv => (kv.Key, kv.Value)));
        Assert.Equal(s.Steps.Select(st => (st.Op, string.Join(",", st.Loads), string.Join(",", st.Stores), string.Join(",", st.Evictions))),
            d.Steps.Select(st => (st.Op, string.Join(",", st.Loads), string.Join(",", st.Stores), string.Join(",", st.Evictions))));
        var t = d.Timeline(p);
        log.WriteLine(Show(t));
        Assert.Equal([new(6, 16), new(3, 7), new(19, 29)], t.Ops);
        Assert.Equal((32L, 32L), d.Cost(p));
        Assert.Equal((32L, 36L), s.Cost(p));
        // Untimed, or no shorter: the schedule itself.
        var untimed = new ScratchpadProblem("untimed", p.Ops.Select(o => o with { Cycles = null }).ToList(), p.Tensors, 48, 8);
        Assert.Same(s, GreedyScheduler.DoubleBuffered(untimed, s));
        Assert.Same(d, GreedyScheduler.DoubleBuffered(p, d));
    }

    public static TheoryData<string, string> Violations => new()
    {
        { "engine", "engine 'mac' runs op 'op0' [6, 16) and op 'op2' [15, 25) at once" },
        { "dma", "the DMA runs the load of 'x' [0, 3) and the load of 'w0' [2, 5) at once" },
        { "operand-loaded", "op 'op0' starts at cycle 5, before its operand 'w0' is loaded at 6" },
        { "operand-produced", "op 'op2' starts at cycle 19, before its operand 'u' is produced at 20" },
        { "load-overwrites", "the load of 'w1' overwrites [0, 8) from cycle 17, while op 'op1' reads 'x' until cycle 20" },
        { "result-overwrites", "op 'op1' writing 'u' overwrites [8, 16) from cycle 10, while op 'op0' reads 'w0' until cycle 16" },
        { "store-early", "the final store of 'z' starts at cycle 30, before 'z' is complete at 33" },
        { "op-short", "op 'op1' runs [16, 19), not the 4 cycles it takes" },
        { "transfer-short", "the load of 'x' runs [0, 2), not the 3 cycles it takes" },
        { "missing", "the store of 'z' has no time" },
        { "extra", "the timeline has a load of 'y' the schedule does not have" },
    };

    [Theory]
    [MemberData(nameof(Violations))]
    public void VerifyTimed_names_the_first_violation(string kind, string reason)
    {
        var p = Timed();
        var s = Reusing();
        var t = s.Timeline(p);
        s.VerifyTimed(p, t);
        Timeline Op(int step, long start, long end) => t with { Ops = t.Ops.Select((o, i) => i == step ? new Span(start, end) : o).ToList() };
        Timeline Transfer(int tensor, long start, long end) =>
            t with { Transfers = t.Transfers.Select(x => x.Tensor == tensor ? x with { Start = start, End = end } : x).ToList() };
        var bad = kind switch
        {
            "engine" => Op(2, 15, 25),
            "dma" => Transfer(1, 2, 5),
            "operand-loaded" => Op(0, 5, 15),
            "operand-produced" => Op(2, 19, 29),
            "load-overwrites" => Transfer(4, 17, 20),
            "result-overwrites" => Op(1, 10, 14),
            "store-early" => Transfer(5, 30, 33),
            "op-short" => Op(1, 16, 19),
            "transfer-short" => Transfer(0, 0, 2),
            "missing" => t with { Transfers = t.Transfers.Where(x => x.Tensor != 5).ToList() },
            _ => t with { Transfers = [.. t.Transfers, new TimedTransfer(2, 2, false, 40, 43)] },
        };
        var e = Assert.Throws<ScheduleException>(() => s.VerifyTimed(p, bad));
        log.WriteLine(e.Message);
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public void VerifyTimed_rejects_a_reload_before_its_store_ends()
    {
        var p = Timed();
        var s = new Schedule(
            [Step(0, loads: [0, 1], at: [(0, 0), (1, 8), (2, 16)]),
             Step(1, stores: [2], evict: [1, 2], at: [(3, 8)]),
             Step(2, evict: [0], loads: [2, 4], at: [(2, 16), (4, 0), (5, 24)])], [5], "spill");
        var t = s.Timeline(p);
        log.WriteLine(Show(t));
        s.VerifyTimed(p, t);
        var early = t with { Transfers = t.Transfers.Select(x => x is { Tensor: 2, Store: false } ? x with { Start = 10, End = 13 } : x).ToList() };
        var e = Assert.Throws<ScheduleException>(() => s.VerifyTimed(p, early));
        Assert.Contains("the load of 'y' starts at cycle 10, before its off-chip copy is complete at 19", e.Message);
    }

    [Fact]
    public void Check_rejects_negative_cycles_and_a_DMA_that_moves_nothing()
    {
        var p = Timed();
        var e = Assert.Throws<HwGenException>(() => new ScratchpadProblem("neg", [p.Ops[0] with { Cycles = -1 }, p.Ops[1], p.Ops[2]], p.Tensors, 48, 8).Check());
        Assert.Contains("op 'op0' runs -1 cycles", e.Message);
        e = Assert.Throws<HwGenException>(() => new ScratchpadProblem("dma", p.Ops, p.Tensors, 48, 8) { DmaBytesPerCycle = 0 }.Check());
        Assert.Contains("the DMA must move a positive number of bytes per cycle", e.Message);
    }

    [Fact]
    public void Untimed_problems_rank_by_bytes_alone()
    {
        var p = ProblemGenerators.RandomDag(3, 20, 0.05);
        Assert.False(p.Timed);
        var g = GreedyScheduler.Solve(p);
        Assert.Equal((g.Verify(p).Total, 0L), g.Cost(p));
        // The timeline still exists: one cycle an op, a byte a cycle.
        var t = g.Timeline(p);
        g.VerifyTimed(p, t);
        Assert.True(t.Makespan >= g.Verify(p).Total);
    }

    /// <summary>Random DAGs with random durations on two engines: every solver's schedule has a legal, deterministic timeline,
    /// between the busiest unit's work and all the work done one thing at a time.</summary>
    [Theory]
    [InlineData(1, 20)]
    [InlineData(2, 35)]
    [InlineData(5, 60)]
    public void Every_solver_gives_a_legal_timeline_on_timed_random_graphs(int seed, int ops)
    {
        var u = ProblemGenerators.RandomDag(seed, ops, 0.08, chains: true);
        var rng = new Random(seed);
        var p = new ScratchpadProblem(u.Name, u.Ops.Select(o => o with { Cycles = rng.Next(0, 200), Resource = o.Id % 3 == 0 ? "vec" : "mac" }).ToList(),
            u.Tensors, u.Capacity, u.Alignment) { DmaBytesPerCycle = 8, DmaOverheadCycles = 2 };
        p.Check();
        var plain = GreedyScheduler.Solve(p);
        var buffered = GreedyScheduler.Solve(p, doubleBuffer: true);
        var exact = ops <= 35 ? IlpScheduler.Solve(p, new IlpOptions(0.5)) : null;
        foreach (var s in new[] { plain, buffered, exact }.OfType<Schedule>())
        {
            var t = s.Timeline(p);
            s.VerifyTimed(p, t);
            Assert.Equal(t.Ops, s.Timeline(p).Ops);   // deterministic
            Assert.Equal(t.Transfers, s.Timeline(p).Transfers);
            long dma = t.Transfers.Sum(x => p.TransferCycles(x.Tensor));
            long busiest = Math.Max(dma, p.Ops.GroupBy(o => o.Resource).Max(e => e.Sum(p.CyclesOf)));
            log.WriteLine($"{s.Solver}: {s.Verify(p).Total} B, {t.Makespan} cycles (busiest unit {busiest}, all in a row {p.Ops.Sum(p.CyclesOf) + dma})");
            Assert.InRange(t.Makespan, busiest, p.Ops.Sum(p.CyclesOf) + dma - 1);
        }
    }

    [Fact]
    public void Window_problems_and_banked_copies_keep_the_timing()
    {
        var u = ProblemGenerators.RandomDag(4, 20, 0.08);
        var p = new ScratchpadProblem(u.Name, u.Ops.Select(o => o with { Cycles = 5, Resource = "e" }).ToList(), u.Tensors, u.Capacity, u.Alignment)
            { DmaBytesPerCycle = 16, DmaOverheadCycles = 3 };
        var b = ProblemGenerators.WithBanks(p, 2);
        Assert.Equal((16L, 3L, true), (b.DmaBytesPerCycle, b.DmaOverheadCycles, b.Timed));
        Assert.All(b.Ops, o => Assert.Equal((5L, "e"), (o.Cycles!.Value, o.Resource!)));
        var d = DivideAndConquerScheduler.Solve(p, 8, new IlpOptions(0.2, WindowTimeLimitSeconds: 0.05));
        d.Verify(p);
    }
}
