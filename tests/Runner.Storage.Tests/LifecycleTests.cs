using Runner.Core.Keys;

namespace Runner.Storage.Tests;

public sealed class LifecycleTests : IDisposable
{
    private readonly StoreDirectory _dir = new();
    private readonly CancellationTokenSource _cts = new(Batches.Timeout);

    [Fact]
    public void Fresh_store_opens_and_the_stale_reader_check_clears_nothing()
    {
        var logger = new CapturingLogger();

        using var store = new LmdbStore(_dir.Options(), logger);

        var opened = Assert.Single(logger.Events(CapturingLogger.Opened));
        Assert.Equal(0, opened["StaleReaders"]);
        Assert.Equal(0, store.Read(r => r.Count(KeySpace.Saga)));
    }

    [Fact]
    public async Task Stores_in_different_directories_are_independent()
    {
        using var otherDir = new StoreDirectory();
        var key = Batches.Utf8("same-key");
        using var one = _dir.Open();
        using (var two = otherDir.Open())
        {
            await Task.WhenAll(
                one.Writer.CommitAsync(Put(key, "one"), _cts.Token),
                two.Writer.CommitAsync(Put(key, "two"), _cts.Token)).WaitAsync(_cts.Token);
            var onlyInTwo = Put(Batches.Utf8("only-two"), "x");
            await two.Writer.CommitAsync(onlyInTwo, _cts.Token).WaitAsync(_cts.Token);

            Assert.Equal("one"u8.ToArray(), Batches.Get(one, KeySpace.Saga, key));
            Assert.Equal("two"u8.ToArray(), Batches.Get(two, KeySpace.Saga, key));
            Batches.AssertAbsent(one, onlyInTwo);
            Assert.Equal(1, one.Writer.Commits);
            Assert.Equal(2, two.Writer.Commits);
        }

        // Closing one store leaves the other working.
        var later = Put(Batches.Utf8("later"), "y");
        await one.Writer.CommitAsync(later, _cts.Token).WaitAsync(_cts.Token);
        Batches.AssertCommitted(one, later);
    }

    [Fact]
    public async Task Commit_after_dispose_faults_with_closed_and_read_throws_disposed()
    {
        var store = _dir.Open();
        store.Dispose();
        store.Dispose();

        // The failure is reported through the task, like every other storage failure, not thrown.
        var commit = store.Writer.CommitAsync(Put(Batches.Utf8("k"), "v"), _cts.Token);
        var error = await Assert.ThrowsAsync<StorageException>(() => commit.WaitAsync(_cts.Token));

        Assert.Equal("closed", error.Code);
        Assert.Throws<ObjectDisposedException>(() => store.Read(r => r.Count(KeySpace.Saga)));
    }

    [Fact]
    public async Task Dispose_with_batches_queued_completes_every_caller_and_loses_nothing_it_acknowledged()
    {
        var store = _dir.Open();
        using var gate = new WriterGate();
        store.Writer.FaultInjector = (batch, _) => gate.OnOp(batch);
        var queued = Enumerable.Range(0, 10).Select(i => Batches.Transition(i, $"order-{i}", 1, $"q{i}")).ToList();

        var blocker = store.Writer.CommitAsync(gate.Blocker, _cts.Token);
        await gate.Entered.WaitAsync(_cts.Token);
        var commits = queued.Select(b => store.Writer.CommitAsync(b, _cts.Token)).ToList();
        var disposing = Task.Run(store.Dispose, _cts.Token);
        gate.Open();
        await disposing.WaitAsync(_cts.Token);

        await blocker.WaitAsync(_cts.Token);
        var acknowledged = new List<WriteBatch>();
        var refused = new List<WriteBatch>();
        for (var i = 0; i < queued.Count; i++)
        {
            Assert.True(commits[i].IsCompleted, $"batch {i} was neither committed nor failed after Dispose returned");
            if (commits[i].IsCompletedSuccessfully)
            {
                acknowledged.Add(queued[i]);
            }
            else
            {
                var error = await Assert.ThrowsAsync<StorageException>(() => commits[i]);
                Assert.Equal("closed", error.Code);
                refused.Add(queued[i]);
            }
        }

        using var reopened = _dir.Open();
        acknowledged.ForEach(b => Batches.AssertCommitted(reopened, b));
        refused.ForEach(b => Batches.AssertAbsent(reopened, b));
    }

    private static WriteBatch Put(byte[] key, string value)
    {
        var batch = new WriteBatch();
        batch.Put(KeySpace.Saga, key, Batches.Utf8(value));
        return batch;
    }

    public void Dispose()
    {
        _cts.Dispose();
        _dir.Dispose();
    }

}
