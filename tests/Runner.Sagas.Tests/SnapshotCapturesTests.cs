using Runner.Core.Ids;
using Runner.Sagas.Snapshots;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>Snapshot captures keep off the thread pool and take turns, and a replica's partitions come due one after another.</summary>
public sealed class SnapshotCapturesTests
{
    [Fact]
    public async Task Captures_run_one_at_a_time_on_threads_of_their_own()
    {
        var captures = new SnapshotCaptures();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var release = new ManualResetEventSlim();
        var running = 0;
        var most = 0;
        var onPool = 0;
        int Capture(int n)
        {
            var now = Interlocked.Increment(ref running);
            InterlockedMax(ref most, now);
            if (Thread.CurrentThread.IsThreadPoolThread)
            {
                Interlocked.Increment(ref onPool);
            }
            release.Wait(cts.Token);
            Interlocked.Decrement(ref running);
            return n;
        }

        var all = Enumerable.Range(0, 4).Select(n => captures.RunAsync(() => Capture(n), takeTurn: true, cts.Token)).ToList();
        // The first is under way and holds the others back: none of them has started.
        await SagaHarness.WaitUntilAsync(() => Volatile.Read(ref running) == 1, TimeSpan.FromSeconds(10), "the first capture to start");
        await Task.Delay(100, cts.Token);
        Assert.Equal(1, Volatile.Read(ref running));
        Assert.All(all.Skip(1), t => Assert.False(t.IsCompleted));

        release.Set();
        var results = await Task.WhenAll(all);
        Assert.Equal(new[] { 0, 1, 2, 3 }, results);
        Assert.Equal(1, most);
        Assert.Equal(0, onPool);
    }

    [Fact]
    public async Task A_capture_waiting_its_turn_can_be_called_off()
    {
        var captures = new SnapshotCaptures();
        using var release = new ManualResetEventSlim();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var first = captures.RunAsync(() => { release.Wait(cts.Token); return true; }, takeTurn: true, cts.Token);
        using var second = new CancellationTokenSource();
        var ran = false;
        var waiting = captures.RunAsync(() => ran = true, takeTurn: true, second.Token);
        await second.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        release.Set();
        Assert.True(await first);
        Assert.False(ran);
    }

    [Fact]
    public async Task A_hand_overs_capture_does_not_wait_its_turn()
    {
        var captures = new SnapshotCaptures();
        using var release = new ManualResetEventSlim();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var periodic = captures.RunAsync(() => { release.Wait(cts.Token); return 1; }, takeTurn: true, cts.Token);
        var onPool = true;
        var handOver = await captures.RunAsync(() => { onPool = Thread.CurrentThread.IsThreadPoolThread; return 2; }, takeTurn: false, cts.Token);
        Assert.Equal(2, handOver);
        Assert.False(onPool);
        Assert.False(periodic.IsCompleted);
        release.Set();
        Assert.Equal(1, await periodic);
    }

    [Fact]
    public void A_replicas_first_snapshots_are_spread_evenly_over_the_interval_after_the_first()
    {
        var interval = TimeSpan.FromSeconds(32);
        var waits = Enumerable.Range(0, 16).Select(p => PartitionSnapshots.FirstWait(interval, new PartitionId(p), 16)).ToList();
        Assert.All(waits, w => Assert.InRange(w, interval, (2 * interval) - TimeSpan.FromTicks(1)));
        Assert.Equal(16, waits.Distinct().Count());
        Assert.Equal(TimeSpan.FromSeconds(2), waits[1] - waits[0]);
        Assert.Equal(interval, PartitionSnapshots.FirstWait(interval, new PartitionId(0), 0));
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen)
        {
        }
    }
}
