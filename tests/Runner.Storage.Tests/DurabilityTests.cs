using Runner.Core.Ids;
using Runner.Core.Keys;

namespace Runner.Storage.Tests;

public sealed class DurabilityTests : IDisposable
{
    private readonly StoreDirectory _dir = new();
    private readonly CancellationTokenSource _cts = new(Batches.Timeout);

    [Fact]
    public async Task Committed_batch_is_visible_to_readers_and_survives_reopen()
    {
        var batch = Batches.Transition(partition: 7, "order-1", inboxSequence: 42, tag: "a");
        using (var store = _dir.Open())
        {
            await store.Writer.CommitAsync(batch, _cts.Token).WaitAsync(_cts.Token);

            Batches.AssertCommitted(store, batch);
            Assert.Equal(1, store.Writer.Commits);
        }

        using (var reopened = _dir.Open())
        {
            Batches.AssertCommitted(reopened, batch);
            Assert.Equal("42"u8.ToArray(), Batches.Get(reopened, KeySpace.Checkpoint, StoreKeys.Checkpoint(Batches.Consumer, new PartitionId(7))));
        }
    }

    [Fact]
    public async Task Overwrites_and_deletes_survive_reopen()
    {
        var p = new PartitionId(3);
        var first = Batches.Transition(3, "order-9", 1, "first");
        var second = Batches.Transition(3, "order-9", 2, "second");
        var outbox1 = StoreKeys.Outbox(p, 1, 0);
        using (var store = _dir.Open())
        {
            await store.Writer.CommitAsync(first, _cts.Token).WaitAsync(_cts.Token);
            await store.Writer.CommitAsync(second, _cts.Token).WaitAsync(_cts.Token);
            var ack = new WriteBatch();
            ack.Delete(KeySpace.Outbox, outbox1);
            await store.Writer.CommitAsync(ack, _cts.Token).WaitAsync(_cts.Token);
        }

        using var reopened = _dir.Open();
        Batches.AssertCommitted(reopened, second);
        Assert.Null(Batches.Get(reopened, KeySpace.Outbox, outbox1));
        Assert.NotNull(Batches.Get(reopened, KeySpace.Outbox, StoreKeys.Outbox(p, 1, 1)));
        Assert.Equal("2"u8.ToArray(), Batches.Get(reopened, KeySpace.Checkpoint, StoreKeys.Checkpoint(Batches.Consumer, p)));
    }

    public void Dispose()
    {
        _cts.Dispose();
        _dir.Dispose();
    }
}
