using Runner.Core.Keys;

namespace Runner.Storage.Tests;

/// <summary>
/// Batches that may wait (the relay's deletes of published items) share the commit of the next batch
/// someone waits on, for a bounded time and only while such batches keep coming; they are committed just
/// as durably, and a store that closes commits them rather than dropping them.
/// </summary>
public sealed class CompanyCommitTests : IDisposable
{
    private readonly StoreDirectory _dir = new();
    private readonly CancellationTokenSource _cts = new(Batches.Timeout);

    [Fact]
    public async Task A_batch_that_may_wait_shares_the_next_urgent_commit()
    {
        using var store = _dir.Open(_dir.Options() with { CompanyWindow = TimeSpan.FromMinutes(10) });
        await CommitUrgentAsync(store);
        Assert.Equal(1, store.Writer.Commits);

        var deletes = MayWait("deletes");
        var waiting = store.Writer.CommitAsync(deletes, _cts.Token);
        // Held for company: nothing else comes for this long, and the window is ten minutes.
        await Task.Delay(TimeSpan.FromMilliseconds(300), _cts.Token);
        Assert.False(waiting.IsCompleted, "a batch that may wait was committed alone right after an urgent commit");
        Assert.Equal(1, store.Writer.Commits);

        var next = Batches.Transition(0, "order-2", 2, "second");
        await store.Writer.CommitAsync(next, _cts.Token);
        await waiting.WaitAsync(_cts.Token);

        Assert.Equal(2, store.Writer.Commits);
        Assert.Equal(3, store.Writer.Batches);
        Batches.AssertCommitted(store, deletes);
        Batches.AssertCommitted(store, next);
    }

    [Fact]
    public async Task A_held_batch_is_applied_before_the_batch_that_ends_its_wait()
    {
        // A relay's delete held while a restored partition writes the same outbox key again: queue order holds.
        using var store = _dir.Open(_dir.Options() with { CompanyWindow = TimeSpan.FromMinutes(10) });
        var key = Batches.Utf8("outbox/p0/1/0");
        var first = new WriteBatch();
        first.Put(KeySpace.Outbox, key, Batches.Utf8("v1"));
        await store.Writer.CommitAsync(first, _cts.Token);

        var delete = new WriteBatch { MayWait = true };
        delete.Delete(KeySpace.Outbox, key);
        var waiting = store.Writer.CommitAsync(delete, _cts.Token);
        await Task.Delay(TimeSpan.FromMilliseconds(100), _cts.Token);
        var again = new WriteBatch();
        again.Put(KeySpace.Outbox, key, Batches.Utf8("v2"));
        await store.Writer.CommitAsync(again, _cts.Token);
        await waiting.WaitAsync(_cts.Token);

        Assert.Equal(2, store.Writer.Commits);
        Assert.Equal("v2", System.Text.Encoding.UTF8.GetString(Batches.Get(store, KeySpace.Outbox, key) ?? []));
    }

    [Fact]
    public async Task A_batch_that_may_wait_commits_alone_once_the_window_has_passed()
    {
        using var store = _dir.Open(_dir.Options() with { CompanyWindow = TimeSpan.FromMilliseconds(50) });
        await CommitUrgentAsync(store);

        await CommitMayWaitAsync(store, "deletes");

        Assert.Equal(2, store.Writer.Commits);
    }

    [Fact]
    public async Task A_batch_that_may_wait_does_not_wait_when_no_urgent_batch_came_lately()
    {
        // A window far longer than the test's own timeout: a batch held for it would fail the test.
        using var store = _dir.Open(_dir.Options() with { CompanyWindow = TimeSpan.FromHours(1) });
        await CommitMayWaitAsync(store, "alone");

        Assert.Equal(1, store.Writer.Commits);
    }

    [Fact]
    public async Task A_batch_that_may_wait_does_not_wait_once_urgent_batches_stopped_coming()
    {
        // A relay draining a backlog after the transitions stopped: its deletes must not each wait the window.
        var clock = new SteppedClock();
        using var store = _dir.Open(_dir.Options() with { CompanyWindow = TimeSpan.FromHours(1) }, clock);
        await CommitUrgentAsync(store);
        clock.Advance(TimeSpan.FromHours(2));

        await CommitMayWaitAsync(store, "late");

        Assert.Equal(2, store.Writer.Commits);
    }

    [Fact]
    public async Task A_store_closing_commits_the_batch_held_for_company()
    {
        var store = _dir.Open(_dir.Options() with { CompanyWindow = TimeSpan.FromHours(1) });
        await CommitUrgentAsync(store);
        var deletes = MayWait("at-close");
        var waiting = store.Writer.CommitAsync(deletes, _cts.Token);
        await Task.Delay(TimeSpan.FromMilliseconds(100), _cts.Token);
        Assert.False(waiting.IsCompleted);

        await Task.Run(store.Dispose, _cts.Token).WaitAsync(_cts.Token);
        await waiting.WaitAsync(_cts.Token);

        using var reopened = _dir.Open();
        Batches.AssertCommitted(reopened, deletes);
    }

    [Fact]
    public async Task Without_fsync_nothing_waits()
    {
        using var store = _dir.Open(_dir.Options() with { Durable = false, CompanyWindow = TimeSpan.FromHours(1) });
        await CommitUrgentAsync(store);
        await CommitMayWaitAsync(store, "no-fsync");

        Assert.Equal(2, store.Writer.Commits);
    }

    /// <summary>A clock that moves only when told to.</summary>
    private sealed class SteppedClock : TimeProvider
    {
        private long _now = 1;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => Interlocked.Read(ref _now);

        public void Advance(TimeSpan by) => Interlocked.Add(ref _now, by.Ticks);
    }

    private Task CommitUrgentAsync(LmdbStore store) =>
        store.Writer.CommitAsync(Batches.Transition(0, "order-1", 1, "first"), _cts.Token);

    /// <summary>Commits a batch that may wait and checks it is in the store; one held for a window longer than the test's timeout fails here.</summary>
    private async Task CommitMayWaitAsync(LmdbStore store, string tag)
    {
        var batch = MayWait(tag);
        await store.Writer.CommitAsync(batch, _cts.Token).WaitAsync(_cts.Token);
        Batches.AssertCommitted(store, batch);
    }

    private static WriteBatch MayWait(string tag)
    {
        var batch = new WriteBatch { MayWait = true };
        batch.Put(KeySpace.Saga, Batches.Utf8($"{tag}/key"), Batches.Utf8($"{tag}/value"));
        return batch;
    }

    public void Dispose()
    {
        _cts.Dispose();
        _dir.Dispose();
    }
}
