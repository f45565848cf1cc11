using Runner.Core.Ids;
using Runner.Core.Keys;

namespace Runner.Storage.Tests;

/// <summary>Invariant 2: a transition's state, outbox, schedule, checkpoint and dedupe writes commit together or not at all.</summary>
public sealed class AtomicityTests : IDisposable
{
    private readonly StoreDirectory _dir = new();
    private readonly LmdbStore _store;
    private readonly CancellationTokenSource _cts = new(Batches.Timeout);

    public AtomicityTests()
    {
        _store = _dir.Open();
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(5)]
    public async Task Fault_after_op_k_fails_the_batch_and_writes_none_of_it(int k)
    {
        var p = new PartitionId(1);
        var previous = Batches.Transition(1, "order-1", 1, "previous");
        await _store.Writer.CommitAsync(previous, _cts.Token).WaitAsync(_cts.Token);

        var faulty = Batches.Transition(1, "order-1", 2, "faulty");
        Assert.InRange(k, 0, faulty.Count - 1);
        _store.Writer.FaultInjector = (batch, op) =>
        {
            if (ReferenceEquals(batch, faulty) && op == k)
            {
                throw new InvalidOperationException($"injected after op {k}");
            }
        };

        var error = await Assert.ThrowsAsync<StorageException>(() => _store.Writer.CommitAsync(faulty, _cts.Token).WaitAsync(_cts.Token));
        Assert.Equal("invalid", error.Code);

        // The keys new to this transition do not exist; the ones it would overwrite keep the previous value.
        Batches.AssertNothingWritten(_store, faulty);
        Assert.Null(Batches.Get(_store, KeySpace.Outbox, StoreKeys.Outbox(p, 2, 0)));
        Assert.Null(Batches.Get(_store, KeySpace.Outbox, StoreKeys.Outbox(p, 2, 1)));
        Assert.Null(Batches.Get(_store, KeySpace.Dedupe, StoreKeys.Dedupe(p, Batches.Instance("order-1"), "evt-2")));
        Assert.Null(Batches.Get(_store, KeySpace.Schedule, StoreKeys.Schedule(p, 1_002, Batches.Instance("order-1"), "timeout", 1)));
        Assert.Equal("1"u8.ToArray(), Batches.Get(_store, KeySpace.Checkpoint, StoreKeys.Checkpoint(Batches.Consumer, p)));
        Batches.AssertCommitted(_store, previous);

        // The store keeps working: the redelivered transition commits in full.
        var retry = Batches.Transition(1, "order-1", 2, "retry");
        await _store.Writer.CommitAsync(retry, _cts.Token).WaitAsync(_cts.Token);
        Batches.AssertCommitted(_store, retry);
    }

    [Fact]
    public async Task Fault_in_a_fresh_batch_leaves_none_of_its_keys()
    {
        var faulty = Batches.Transition(9, "order-x", 7, "faulty");
        _store.Writer.FaultInjector = (batch, op) =>
        {
            if (ReferenceEquals(batch, faulty) && op == faulty.Count - 1)
            {
                throw new StorageException("injected", "io");
            }
        };

        var error = await Assert.ThrowsAsync<StorageException>(() => _store.Writer.CommitAsync(faulty, _cts.Token).WaitAsync(_cts.Token));

        Assert.Equal("io", error.Code);
        Batches.AssertAbsent(_store, faulty);
        Assert.Equal(0, _store.Writer.Commits);
    }

    [Fact]
    public async Task Lmdb_rejecting_an_op_mid_batch_fails_the_whole_batch()
    {
        var batch = Batches.Transition(2, "order-2", 5, "bad");
        // A key over LMDB's limit fails inside LMDB (MDB_BAD_VALSIZE) after the six transition puts succeeded.
        batch.Put(KeySpace.Saga, new byte[_store.Environment.MaxKeySize + 1], Batches.Utf8("too-long-key"));
        batch.Put(KeySpace.Quarantine, Batches.Utf8("after-the-bad-op"), Batches.Utf8("x"));

        var error = await Assert.ThrowsAsync<StorageException>(() => _store.Writer.CommitAsync(batch, _cts.Token).WaitAsync(_cts.Token));

        Assert.Equal("invalid", error.Code);
        Batches.AssertAbsent(_store, batch);
        var next = Batches.Transition(2, "order-2", 5, "good");
        await _store.Writer.CommitAsync(next, _cts.Token).WaitAsync(_cts.Token);
        Batches.AssertCommitted(_store, next);
    }

    public void Dispose()
    {
        _store.Dispose();
        _cts.Dispose();
        _dir.Dispose();
    }
}
