using System.Diagnostics;
using Xunit;

namespace Runner.Scripting.Tests;

/// <summary>
/// The time budget counts the CPU the script's thread uses: a thread that is off the CPU (a busy node, a collection
/// that suspends it) is not late, one that computes is stopped, and a thread that waits far past the limit still meets
/// the wall-clock backstop.
/// </summary>
public sealed class SandboxBudgetTests
{
    [Fact]
    public void A_thread_off_the_cpu_past_the_limit_is_not_late_and_one_that_computes_is_stopped()
    {
        Assert.True(ThreadCpuClock.Available, "this test needs the Linux thread CPU clock");
        var budget = new SandboxBudget();
        budget.Arm(maxStatements: long.MaxValue, TimeSpan.FromMilliseconds(50), maxBytes: long.MaxValue);

        // Four times the limit of wall time, hardly any CPU: as a descheduled or suspended script thread sees it.
        Thread.Sleep(200);
        budget.CheckAfterCall();

        // The same budget, now spent on the CPU.
        var spinning = Stopwatch.StartNew();
        var ex = Assert.Throws<SandboxLimitException>(() =>
        {
            while (spinning.Elapsed < TimeSpan.FromSeconds(4))
            {
                budget.CheckAfterCall();
            }
        });
        Assert.Equal(ScriptFailure.Timeout, ex.Code);
        Assert.True(spinning.Elapsed < TimeSpan.FromSeconds(4), $"stopped only by the test's own bound after {spinning.Elapsed}");
    }

    [Fact]
    public void A_thread_that_waits_past_the_wall_clock_backstop_is_stopped()
    {
        var budget = new SandboxBudget();
        // 1 ms of CPU, so the backstop is its minimum.
        budget.Arm(maxStatements: long.MaxValue, TimeSpan.FromMilliseconds(1), maxBytes: long.MaxValue);
        Thread.Sleep(SandboxBudget.MinWallBackstop + TimeSpan.FromMilliseconds(200));

        var ex = Assert.Throws<SandboxLimitException>(budget.CheckAfterCall);
        Assert.Equal(ScriptFailure.Timeout, ex.Code);
    }
}
