using HwGen.Core;
using HwGen.Scheduling;
using HwGen.Tests.Support;
using Xunit.Abstractions;

namespace HwGen.Tests.Scheduling;

/// <summary>A banked scratchpad: every tensor lies inside one bank. Verify rejects a tensor across a boundary, Check a
/// tensor larger than a bank; every solver respects the banks, and the exact model still equals brute force.</summary>
public sealed class BankingTests(ITestOutputHelper log)
{
    static ScratchpadProblem Banked(ScratchpadProblem p, int banks) => ProblemGenerators.WithBanks(p, banks);

    [Fact]
    public void Verify_rejects_a_tensor_across_a_bank_boundary()
    {
        var p = new ScratchpadProblem("banks", [new SchedOp(0, "op", [0], [1])],
            [new(0, "x", 2, TensorKind.Input), new(1, "y", 2, TensorKind.Output)], 8, 1, banks: 2);
        p.Check();
        var ok = new Schedule([new ScheduleStep(0, [], [], [0], new Dictionary<int, long> { [0] = 0, [1] = 4 })], [1], "hand");
        Assert.Equal(4, ok.Verify(p).Total);
        var bad = new Schedule([new ScheduleStep(0, [], [], [0], new Dictionary<int, long> { [0] = 3, [1] = 5 })], [1], "hand");
        var e = Assert.Throws<ScheduleException>(() => bad.Verify(p));
        Assert.Contains("'x' at [3, 5) crosses a bank boundary (banks of 4 bytes)", e.Message);
    }

    [Fact]
    public void Check_rejects_a_tensor_larger_than_a_bank_and_an_op_that_does_not_pack()
    {
        var big = new ScratchpadProblem("big", [new SchedOp(0, "op", [0], [1])],
            [new(0, "x", 5, TensorKind.Input), new(1, "y", 1, TensorKind.Output)], 8, 1, banks: 2);
        Assert.Contains("tensor 'x' of 5 bytes is larger than a bank of 4 bytes", Assert.Throws<HwGenException>(big.Check).Message);
        var packs = new ScratchpadProblem("packs", [new SchedOp(0, "op", [0, 1], [2])],
            [new(0, "a", 3, TensorKind.Input), new(1, "b", 3, TensorKind.Input), new(2, "c", 2, TensorKind.Output)], 8, 1, banks: 2);
        Assert.Contains("do not pack into 2 banks of 4 bytes", Assert.Throws<HwGenException>(packs.Check).Message);
        var uneven = new ScratchpadProblem("uneven", [new SchedOp(0, "op", [0], [1])],
            [new(0, "x", 1, TensorKind.Input), new(1, "y", 1, TensorKind.Output)], 9, 1, banks: 2);
        Assert.Contains("split the capacity 9 into whole aligned banks", Assert.Throws<HwGenException>(uneven.Check).Message);
    }

    [Theory]
    [InlineData(1, 4, 0.35)]
    [InlineData(2, 4, 0.3)]
    [InlineData(4, 5, 0.3)]
    [InlineData(8, 5, 0.35)]
    public void Exact_model_equals_brute_force_with_two_banks(int seed, int ops, double share)
    {
        var p = Banked(ProblemGenerators.RandomDag(seed, ops, share, maxUnits: 3, unit: 1, weights: ops <= 4), 2);
        var ilp = IlpScheduler.Solve(p, new IlpOptions(TimeLimitSeconds: 20))!;
        Assert.Equal(SolveStatus.Optimal, ilp.Status);
        long brute = ScheduleBruteForce.Optimum(p);
        var greedy = GreedyScheduler.Solve(p).Verify(p);
        log.WriteLine($"seed {seed}: capacity {p.Capacity} in 2 banks: brute force {brute}, exact {ilp.Verify(p).Total}, greedy {greedy.Total}");
        Assert.Equal(brute, ilp.Verify(p).Total);
        Assert.True(greedy.Total >= brute);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public void Every_solver_respects_the_banks_on_larger_graphs(int banks)
    {
        var p = Banked(ProblemGenerators.RandomDag(31, 70, 0.04, chains: true), banks);
        var greedy = GreedyScheduler.Solve(p).Verify(p);
        var dnc = DivideAndConquerScheduler.Solve(p, 40, new IlpOptions(TimeLimitSeconds: 2)).Verify(p);
        var window = ProblemGenerators.RandomDag(32, 25, 0.2);
        var pw = Banked(window, banks);
        var ilp = IlpScheduler.Solve(pw, new IlpOptions(TimeLimitSeconds: 3))!.Verify(pw);
        log.WriteLine($"{banks} banks: 70 ops greedy {greedy.NonCompulsory}, d&c {dnc.NonCompulsory}; 25 ops exact {ilp.NonCompulsory}, greedy {GreedyScheduler.Solve(pw).Verify(pw).NonCompulsory}");
        Assert.True(greedy.NonCompulsory > 0, "the 70-op graph should spill");
        Assert.True(dnc.Total <= greedy.Total);
    }

    [Theory]
    [InlineData(51, 90, 0.05, false, 1)]
    [InlineData(52, 120, 0.04, true, 1)]
    [InlineData(53, 90, 0.05, true, 4)]
    public void The_rolling_horizon_pass_gives_legal_schedules(int seed, int ops, double share, bool chains, int banks)
    {
        var p = ProblemGenerators.RandomDag(seed, ops, share, chains: chains);
        if (banks > 1) p = Banked(p, banks);
        var rolling = DivideAndConquerScheduler.SolveRolling(p, 40, new IlpOptions(TimeLimitSeconds: 3)).Verify(p);
        var greedy = GreedyScheduler.Solve(p).Verify(p);
        log.WriteLine($"{p.Name}: greedy {greedy.NonCompulsory}, rolling horizon {rolling.NonCompulsory}");
        Assert.True(greedy.NonCompulsory > 0, "the graph should spill");
    }
}
