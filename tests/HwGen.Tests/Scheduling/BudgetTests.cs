using HwGen.Scheduling;

namespace HwGen.Tests.Scheduling;

/// <summary>One scheduling budget per compile: every CP-SAT solve draws from it, so the time is bounded whatever the graph.</summary>
public sealed class BudgetTests
{
    [Fact]
    public void Divide_and_conquer_with_every_pass_spends_one_budget()
    {
        var p = ProblemGenerators.RandomDag(4, 70, 0.05, chains: true);
        var budget = new SolveBudget(1.0);
        var s = DivideAndConquerScheduler.Solve(p, 40, new IlpOptions(0.25) { Budget = budget }, wholeMaxOps: 300);
        s.Verify(p);
        Assert.True(budget.Spent > 0, "the windows should have used some of the budget");
        // CP-SAT checks its deterministic limit as it goes, so a solve may run a little past it.
        Assert.True(budget.Spent <= 1.1, $"spent {budget.Spent} deterministic s of 1");
    }

    /// <summary>A stage's share is capped, so what an early stage spends cannot starve the later ones.</summary>
    [Fact]
    public void A_share_spends_from_its_parent_and_stops_at_its_own_size()
    {
        var b = new SolveBudget(1.0);
        var first = b.Share(0.25);
        first.Spend(0.25, 0.1, false);
        Assert.True(first.Exhausted);
        Assert.False(b.Exhausted);
        Assert.Equal(0.75, b.Remaining, 9);
        Assert.Equal(0.25, b.Share(0.25).Total, 9);
        b.Spend(0.7, 0, false);
        Assert.Equal(0.05, b.Share(0.25).Total, 9);
        Assert.False(b.WallCapHit);
        b.Share(0.01).Spend(0, 0, true);
        Assert.True(b.WallCapHit);
    }

    [Fact]
    public void A_spent_budget_starts_no_solve()
    {
        var p = ProblemGenerators.RandomDag(3, 20, 0.05);
        var budget = new SolveBudget(0.5);
        budget.Spend(0.5, 0, false);
        Assert.Null(IlpScheduler.Solve(p, new IlpOptions(5) { Budget = budget }));
        Assert.NotNull(IlpScheduler.Solve(p, new IlpOptions(5)));
    }

    [Fact]
    public void The_same_problem_and_budget_give_the_same_schedule()
    {
        var p = ProblemGenerators.RandomDag(4, 70, 0.05, chains: true);
        Schedule Run() => DivideAndConquerScheduler.Solve(p, 40, new IlpOptions(0.25) { Budget = new SolveBudget(1.0) }, wholeMaxOps: 300);
        var a = Run();
        var b = Run();
        Assert.Equal(a.Verify(p), b.Verify(p));
        Assert.Equal(a.Order, b.Order);
    }
}
