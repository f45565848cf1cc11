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

    [Fact]
    public void Collections_the_script_thread_runs_are_not_charged_to_the_script()
    {
        Assert.True(ThreadCpuClock.Available, "this test needs the Linux thread CPU clock");
        Assert.False(System.Runtime.GCSettings.IsServerGC, "this test needs workstation GC, where a collection runs on the thread that asks for it");
        // A heap of many small objects, so that each full compacting collection takes the calling thread real CPU.
        var heap = new object[400_000];
        for (var i = 0; i < heap.Length; i++)
        {
            heap[i] = new byte[64];
        }
        var budget = new SandboxBudget();
        budget.Arm(maxStatements: long.MaxValue, TimeSpan.FromMilliseconds(20), maxBytes: long.MaxValue);
        var cpu = ThreadCpuClock.Nanoseconds();
        var collections = 0;
        // Collect on this thread until it has used four times the limit, almost all of it collecting.
        while (ThreadCpuClock.Nanoseconds() - cpu < 80_000_000 && collections < 10_000)
        {
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            collections++;
            budget.CheckAfterCall();
        }
        Assert.True(ThreadCpuClock.Nanoseconds() - cpu >= 80_000_000, $"{collections} collections used only {(ThreadCpuClock.Nanoseconds() - cpu) / 1e6:F1} ms of this thread's CPU");
        GC.KeepAlive(heap);

        // The same budget, now spent computing: stopped.
        var spinning = Stopwatch.StartNew();
        var ex = Assert.Throws<SandboxLimitException>(() =>
        {
            while (spinning.Elapsed < TimeSpan.FromSeconds(4))
            {
                budget.CheckAfterCall();
            }
        });
        Assert.Equal(ScriptFailure.Timeout, ex.Code);
    }

    [Fact]
    public void A_budget_armed_from_an_earlier_reading_of_the_clock_is_never_stricter_than_its_limit()
    {
        Assert.True(ThreadCpuClock.Available, "this test needs the Linux thread CPU clock");
        var limit = TimeSpan.FromMilliseconds(20);

        // An earlier budget on this thread reads the clock; this thread then computes for a while, less than
        // the time a reading is used again, before the next budget is armed from that reading.
        new SandboxBudget().Arm(maxStatements: long.MaxValue, limit, maxBytes: long.MaxValue);
        var computing = Stopwatch.StartNew();
        while (computing.Elapsed < SandboxBudget.MaxClockReuse / 2)
        {
        }
        var budget = new SandboxBudget();
        // Read before arming: the CPU counted from here is at least what the budget has to count.
        var armed = ThreadCpuClock.Nanoseconds();
        budget.Arm(maxStatements: long.MaxValue, limit, maxBytes: long.MaxValue);

        // Past the limit in wall time first, so that only the CPU counted decides when the budget stops it.
        Thread.Sleep(limit * 2);
        var spinning = Stopwatch.StartNew();
        var ex = Assert.Throws<SandboxLimitException>(() =>
        {
            while (spinning.Elapsed < TimeSpan.FromSeconds(4))
            {
                budget.CheckAfterCall();
            }
        });
        var used = TimeSpan.FromTicks((ThreadCpuClock.Nanoseconds() - armed) / 100);
        Assert.Equal(ScriptFailure.Timeout, ex.Code);
        Assert.True(used >= limit, $"stopped after {used.TotalMilliseconds:F3} ms of CPU, before its {limit.TotalMilliseconds} ms");
    }
}
