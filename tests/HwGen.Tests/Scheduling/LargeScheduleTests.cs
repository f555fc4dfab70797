using HwGen.Core;
using HwGen.Scheduling;

namespace HwGen.Tests.Scheduling;

/// <summary>Schedules past the old 2^14-task limit: the schedulers' state per task is bounded, so a long graph is cheap.</summary>
public sealed class LargeScheduleTests
{
    /// <summary>A chain of <paramref name="n"/> timed ops, op i reading activation i and one of four weights in turn and writing
    /// activation i + 1, on a scratchpad that holds two of the weights: the greedy reloads the others, so divide and conquer
    /// has windows to solve.</summary>
    static ScratchpadProblem RotatingWeights(int n)
    {
        var tensors = new List<SchedTensor>();
        for (int i = 0; i <= n; i++)
            tensors.Add(new(i, $"a{i}", 16, i == 0 ? TensorKind.Input : i == n ? TensorKind.Output : TensorKind.Intermediate));
        for (int w = 0; w < 4; w++) tensors.Add(new(n + 1 + w, $"w{w}", 32, TensorKind.Weight));
        var ops = Enumerable.Range(0, n).Select(i => new SchedOp(i, $"op{i}", [i, n + 1 + i % 4], [i + 1]) { Cycles = 4 }).ToList();
        return new ScratchpadProblem("rotating-weights", ops, tensors, capacity: 128, alignment: 16);
    }

    [Fact]
    public void A_graph_past_the_old_limit_schedules_in_windows_and_verifies()
    {
        var p = RotatingWeights(20_000);
        p.Check();
        var greedy = GreedyScheduler.Solve(p, doubleBuffer: true);
        var g = greedy.Verify(p);
        Assert.True(g.NonCompulsory > 0, "the greedy should reload weights, or divide and conquer has nothing to do");
        var s = DivideAndConquerScheduler.Solve(p, 40, new IlpOptions(0.2) { Budget = new SolveBudget(0.2) });
        Assert.Equal(p.Ops.Count, s.Steps.Count);
        var t = s.Verify(p);   // order, residency, addresses and, the problem being timed, the timeline
        s.VerifyTimed(p, s.Timeline(p));
        Assert.True(t.Total <= g.Total, $"divide and conquer moved {t.Total} B, the greedy {g.Total} B");
    }

    [Fact]
    public void A_graph_past_the_limit_is_refused_before_it_is_solved()
    {
        var p = RotatingWeights(Limits.MaxScheduleTasks + 1);
        var e = Assert.Throws<HwGenException>(p.Check);
        Assert.Contains($"{Limits.MaxScheduleTasks + 1} tasks, more than the {Limits.MaxScheduleTasks}", e.Message);
    }
}
