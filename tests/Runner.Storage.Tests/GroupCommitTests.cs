using Runner.Core.Keys;

namespace Runner.Storage.Tests;

/// <summary>Many batches share one durable commit, and a bad batch in the group fails alone.</summary>
public sealed class GroupCommitTests : IDisposable
{
    private const int BatchCount = 200;

    private readonly StoreDirectory _dir = new();
    private readonly LmdbStore _store;
    private readonly WriterGate _gate = new();
    private readonly CancellationTokenSource _cts = new(Batches.Timeout);

    public GroupCommitTests()
    {
        _store = _dir.Open();
    }

    [Fact]
    public async Task Concurrent_batches_are_grouped_and_a_faulted_one_fails_alone()
    {
        const int faultyIndex = 137;
        var batches = Enumerable.Range(0, BatchCount).Select(i => Batches.Transition(i, $"order-{i}", (ulong)(i + 1), $"b{i}")).ToArray();
        var faulty = batches[faultyIndex];
        _store.Writer.FaultInjector = (batch, op) =>
        {
            _gate.OnOp(batch);
            if (ReferenceEquals(batch, faulty) && op == 3)
            {
                throw new InvalidOperationException("injected");
            }
        };

        var blocker = _store.Writer.CommitAsync(_gate.Blocker, _cts.Token);
        await _gate.Entered.WaitAsync(_cts.Token);
        // All 200 are queued from many threads while the writer is busy with the blocker.
        // StartNew, not Run: we want each submitter's returned commit task, not to await it.
        var submitters = batches.Select(b => Task.Factory.StartNew(() => _store.Writer.CommitAsync(b, _cts.Token), _cts.Token, TaskCreationOptions.None, TaskScheduler.Default));
        var commits = await Task.WhenAll(submitters).WaitAsync(_cts.Token);
        _gate.Open();
        await blocker.WaitAsync(_cts.Token);
        var outcomes = await Task.WhenAll(commits.Select(Outcome)).WaitAsync(_cts.Token);

        var failed = Enumerable.Range(0, BatchCount).Where(i => outcomes[i] is not null).ToArray();
        Assert.Equal([faultyIndex], failed);
        Assert.Equal("invalid", outcomes[faultyIndex]!.Code);
        Batches.AssertAbsent(_store, faulty);
        foreach (var (batch, i) in batches.Select((b, i) => (b, i)).Where(x => x.i != faultyIndex))
        {
            Batches.AssertCommitted(_store, batch);
        }
        // One commit for the blocker, one for the whole queued group.
        Assert.True(_store.Writer.Commits == 2, $"expected 2 durable commits for {BatchCount + 1} batches, got {_store.Writer.Commits}");
        Assert.True(_store.Writer.Commits < BatchCount);
    }

    [Fact]
    public async Task Batch_rejected_by_lmdb_in_a_group_fails_alone()
    {
        var good = Enumerable.Range(0, 20).Select(i => Batches.Transition(i, $"order-{i}", 1, $"g{i}")).ToList();
        var bad = Batches.Transition(500, "order-bad", 1, "bad");
        bad.Put(KeySpace.Saga, new byte[_store.Environment.MaxKeySize + 1], Batches.Utf8("too-long-key"));
        _store.Writer.FaultInjector = (batch, _) => _gate.OnOp(batch);

        var blocker = _store.Writer.CommitAsync(_gate.Blocker, _cts.Token);
        await _gate.Entered.WaitAsync(_cts.Token);
        var goodTasks = good.Take(10).Select(b => _store.Writer.CommitAsync(b, _cts.Token)).ToList();
        var badTask = _store.Writer.CommitAsync(bad, _cts.Token);
        goodTasks.AddRange(good.Skip(10).Select(b => _store.Writer.CommitAsync(b, _cts.Token)));
        _gate.Open();

        await Task.WhenAll(goodTasks).WaitAsync(_cts.Token);
        await blocker.WaitAsync(_cts.Token);
        var error = await Assert.ThrowsAsync<StorageException>(() => badTask.WaitAsync(_cts.Token));
        Assert.Equal("invalid", error.Code);
        Batches.AssertAbsent(_store, bad);
        good.ForEach(b => Batches.AssertCommitted(_store, b));
        Assert.Equal(2, _store.Writer.Commits);
    }

    /// <summary>
    /// BUG (LmdbWriter.CommitGroup): <c>Batches</c> grows by every batch of a group, including
    /// batches that failed and were not written, and a group in which every batch failed (its
    /// transaction aborted, nothing written) still counts as a commit.
    /// </summary>
    [Fact]
    public async Task Commit_counters_count_only_what_was_committed()
    {
        using var secondGate = new WriterGate();
        var good = Enumerable.Range(0, 5).Select(i => Batches.Transition(i, $"order-{i}", 1, $"g{i}")).ToList();
        var bad = Enumerable.Range(100, 3).Select(i => Batches.Transition(i, $"order-{i}", 1, $"x{i}")).ToList();
        _store.Writer.FaultInjector = (batch, _) =>
        {
            _gate.OnOp(batch);
            secondGate.OnOp(batch);
            if (bad.Contains(batch))
            {
                throw new InvalidOperationException("injected");
            }
        };

        // Group 1: five good batches and three bad ones.
        var blocker = _store.Writer.CommitAsync(_gate.Blocker, _cts.Token);
        await _gate.Entered.WaitAsync(_cts.Token);
        var goodTasks = good.Select(b => _store.Writer.CommitAsync(b, _cts.Token)).ToList();
        var badTasks = bad.Select(b => _store.Writer.CommitAsync(b, _cts.Token)).ToList();
        _gate.Open();
        await Task.WhenAll(goodTasks.Append(blocker)).WaitAsync(_cts.Token);
        foreach (var task in badTasks)
        {
            await Assert.ThrowsAsync<StorageException>(() => task.WaitAsync(_cts.Token));
        }
        var batchesAfterMixedGroup = _store.Writer.Batches;

        // Group 2: only bad batches; nothing is written.
        var secondBlocker = _store.Writer.CommitAsync(secondGate.Blocker, _cts.Token);
        await secondGate.Entered.WaitAsync(_cts.Token);
        var allBad = bad.Select(b => _store.Writer.CommitAsync(b, _cts.Token)).ToList();
        secondGate.Open();
        await secondBlocker.WaitAsync(_cts.Token);
        foreach (var task in allBad)
        {
            await Assert.ThrowsAsync<StorageException>(() => task.WaitAsync(_cts.Token));
        }
        bad.ForEach(b => Batches.AssertAbsent(_store, b));

        // Committed: blocker + 5 good, then the second blocker; 3 durable commits.
        Assert.True(
            batchesAfterMixedGroup == 1 + good.Count && _store.Writer.Batches == 2 + good.Count && _store.Writer.Commits == 3,
            $"expected Batches {1 + good.Count} after the mixed group, then Batches {2 + good.Count} and Commits 3; " +
            $"got Batches {batchesAfterMixedGroup}, then Batches {_store.Writer.Batches} and Commits {_store.Writer.Commits}");
    }

    private static async Task<StorageException?> Outcome(Task commit)
    {
        try
        {
            await commit;
            return null;
        }
        catch (StorageException ex)
        {
            return ex;
        }
    }

    public void Dispose()
    {
        _gate.Dispose();
        _store.Dispose();
        _cts.Dispose();
        _dir.Dispose();
    }
}
