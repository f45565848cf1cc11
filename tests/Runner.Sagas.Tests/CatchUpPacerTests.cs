using Runner.Sagas.Scheduling;
using Xunit;

namespace Runner.Sagas.Tests;

public sealed class CatchUpPacerTests
{
    private static readonly TimeSpan s_window = TimeSpan.FromSeconds(2);

    [Fact]
    public void Backlog_is_released_evenly_over_the_window_in_order()
    {
        var pacer = new CatchUpPacer(200, s_window);

        Assert.Equal(1, pacer.Allowance(TimeSpan.Zero));
        pacer.Released(1);
        Assert.Equal(0, pacer.Allowance(TimeSpan.FromMilliseconds(5)));
        Assert.Equal(TimeSpan.FromMilliseconds(5), pacer.UntilNext(TimeSpan.FromMilliseconds(5)));
        Assert.Equal(100, pacer.Allowance(TimeSpan.FromSeconds(1))); // items 1..100 are due by half the window
        pacer.Released(100);
        Assert.Equal(0, pacer.Allowance(TimeSpan.FromSeconds(1)));
        Assert.True(pacer.Active);
        Assert.Equal(long.MaxValue, pacer.Allowance(s_window));
        Assert.False(pacer.Active);
    }

    [Fact]
    public void Pacing_ends_when_the_backlog_is_released_or_found_gone()
    {
        var released = new CatchUpPacer(3, s_window);
        released.Released(3);
        Assert.False(released.Active);
        Assert.Equal(long.MaxValue, released.Allowance(TimeSpan.Zero));

        var cancelled = new CatchUpPacer(3, s_window);
        cancelled.Finish();
        Assert.Equal(long.MaxValue, cancelled.Allowance(TimeSpan.Zero));

        Assert.False(new CatchUpPacer(0, s_window).Active);
        Assert.False(new CatchUpPacer(50, TimeSpan.Zero).Active);
    }
}
