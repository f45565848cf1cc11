using Runner.Effects.Workers;
using Xunit;

namespace Runner.Effects.Tests;

public sealed class ClaimAheadTests
{
    private static readonly TimeSpan s_claim = TimeSpan.FromMilliseconds(2);

    [Fact]
    public void Nothing_is_claimed_ahead_before_a_command_has_been_claimed_and_one_has_run()
    {
        var budgets = new List<int>();
        var ahead = new ClaimAhead(8, 1, budgets.Add);
        Assert.Equal(8, ahead.Budget);

        ahead.Ran(TimeSpan.FromMilliseconds(0.01));
        Assert.Equal(0, ahead.Ahead);
        ahead.Claimed(s_claim);
        Assert.Equal(0, ahead.Ahead);
        Assert.Empty(budgets);

        ahead.Ran(TimeSpan.FromMilliseconds(0.01));
        Assert.Equal(8, ahead.Ahead);
        Assert.Equal([16], budgets);
    }

    [Theory]
    [InlineData(1.0, 64, 64)]
    [InlineData(0.5, 64, 32)]
    [InlineData(4.0, 3, 12)]
    [InlineData(9.0, 3, 12)]
    [InlineData(0.0, 64, 0)]
    public void Brief_runs_claim_ahead_up_to_the_factor_of_the_concurrency(double factor, int concurrency, int expected)
    {
        var budgets = new List<int>();
        var ahead = new ClaimAhead(concurrency, factor, budgets.Add);
        ahead.Claimed(s_claim);
        ahead.Ran(TimeSpan.Zero);

        Assert.Equal(expected, ahead.Ahead);
        Assert.Equal(concurrency + expected, ahead.Budget);
        Assert.Equal(expected == 0 ? [] : [concurrency + expected], budgets);
    }

    [Theory]
    [InlineData(2.0, 8, 8)] // claims take as long as runs: one claimed ahead per slot
    [InlineData(4.0, 8, 4)]
    [InlineData(20.0, 8, 0)] // runs ten times a claim: 0.8 of a command, none
    [InlineData(10_000.0, 64, 0)] // a slice: none
    public void Runs_long_against_a_claim_claim_less_or_nothing_ahead(double runMs, int concurrency, int expected)
    {
        var ahead = new ClaimAhead(concurrency, 1, _ => { });
        ahead.Claimed(s_claim);
        ahead.Ran(TimeSpan.FromMilliseconds(runMs));

        Assert.Equal(expected, ahead.Ahead);
    }

    [Fact]
    public void The_budget_follows_runs_that_grow_longer_down_to_nothing_ahead_and_back()
    {
        var budgets = new List<int>();
        var ahead = new ClaimAhead(16, 1, budgets.Add);
        ahead.Claimed(s_claim);
        ahead.Ran(TimeSpan.FromMilliseconds(0.1));
        Assert.Equal(16, ahead.Ahead);

        // An upstream slowing down to a second per call: the running average moves there within a few dozen runs.
        for (var i = 0; i < 100; i++)
        {
            ahead.Ran(TimeSpan.FromSeconds(1));
        }
        Assert.Equal(0, ahead.Ahead);
        // Every change was told, in order, ending at the slots alone.
        Assert.Equal(16, budgets[^1]);
        Assert.Equal(budgets.OrderDescending(), budgets);
        Assert.Equal(budgets.Count, budgets.Distinct().Count());

        for (var i = 0; i < 200; i++)
        {
            ahead.Ran(TimeSpan.FromMilliseconds(0.1));
        }
        Assert.Equal(16, ahead.Ahead);
        Assert.Equal(32, budgets[^1]);
    }

    [Fact]
    public void A_fixed_count_is_claimed_ahead_from_the_start_and_does_not_follow_the_averages()
    {
        var budgets = new List<int>();
        var ahead = new ClaimAhead(4, 1, budgets.Add, fixedAhead: 3);
        Assert.Equal((3, 7), (ahead.Ahead, ahead.Budget));
        Assert.Equal([7], budgets);

        ahead.Claimed(s_claim);
        ahead.Ran(TimeSpan.FromSeconds(10));
        ahead.Ran(TimeSpan.Zero);
        Assert.Equal(3, ahead.Ahead);
        Assert.Equal([7], budgets);

        var none = new ClaimAhead(4, 1, budgets.Add, fixedAhead: 0);
        none.Claimed(s_claim);
        none.Ran(TimeSpan.Zero);
        Assert.Equal((0, 4), (none.Ahead, none.Budget));
        Assert.Equal([7], budgets);
    }

    [Fact]
    public void A_concurrency_below_one_or_a_negative_factor_is_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ClaimAhead(0, 1, _ => { }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ClaimAhead(4, -0.5, _ => { }));
    }
}
