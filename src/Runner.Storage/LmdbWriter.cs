using System.Collections.Concurrent;
using System.Diagnostics;
using LightningDB;
using Microsoft.Extensions.Logging;

namespace Runner.Storage;

/// <summary>
/// The only writer of the store: one dedicated OS thread (LMDB write transactions belong to the
/// thread that began them) takes every queued batch it can, from every partition, and commits
/// them in one durable transaction — group commit, one fsync for many batches. Each batch is
/// applied in a nested transaction, so one bad batch fails alone and the others still commit.
/// A group of only batches that may wait (<see cref="WriteBatch.MayWait"/>) is held briefly for one
/// that may not, while such batches keep coming, so both share a sync.
/// </summary>
internal sealed class LmdbWriter : IDisposable
{
    private readonly LmdbStore _store;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly BlockingCollection<PendingWrite> _queue = new(new ConcurrentQueue<PendingWrite>());
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread _thread;
    private long _commits;
    private long _batches;

    // The writer thread's own: when the last commit holding a batch someone waited on ended (while such
    // batches keep coming, batches that may wait do).
    private long _lastUrgent = long.MinValue;

    public LmdbWriter(LmdbStore store, ILogger logger, TimeProvider time)
    {
        _store = store;
        _logger = logger;
        _time = time;
        _thread = new Thread(Run) { IsBackground = true, Name = "runner-lmdb-writer" };
        _thread.Start();
    }

    /// <summary>Test hook: called after each op is applied; throwing aborts that batch.</summary>
    internal Action<WriteBatch, int>? FaultInjector { get; set; }

    public long Commits => Interlocked.Read(ref _commits);

    public long Batches => Interlocked.Read(ref _batches);

    /// <summary>Completes when the batch is durably committed; faults with <see cref="StorageException"/> otherwise.</summary>
    public Task CommitAsync(WriteBatch batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var pending = new PendingWrite(batch);
        try
        {
            _queue.Add(pending, cancellationToken);
        }
        catch (InvalidOperationException)
        {
            return Task.FromException(new StorageException("the store is closed", "closed"));
        }
        return pending.Completion.Task;
    }

    private void Run()
    {
        var group = new List<PendingWrite>(_store.Options.MaxBatchesPerCommit);
        var window = _store.Options.Durable ? _store.Options.CompanyWindow : TimeSpan.Zero;
        try
        {
            while (_queue.TryTake(out var first, Timeout.Infinite, _stop.Token))
            {
                group.Clear();
                group.Add(first);
                if (!TakeQueued(group) && first.Batch.MayWait && UrgentCommittedWithin(window))
                {
                    WaitForCompany(group, window);
                }
                try
                {
                    CommitGroup(group);
                }
#pragma warning disable CA1031 // The writer thread must never die: fail the group's callers instead.
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    var error = new StorageException($"LMDB commit failed: {ex.Message}", "io", ex);
                    foreach (var pending in group)
                    {
                        pending.Completion.TrySetException(error);
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping: fail what is still queued so no caller waits forever.
        }
        catch (InvalidOperationException)
        {
            // The queue was completed.
        }
        while (_queue.TryTake(out var left))
        {
            left.Completion.TrySetException(new StorageException("the store is closed", "closed"));
        }
    }

    /// <summary>Adds what is queued to <paramref name="group"/>, up to a commit's worth; true when a batch it added may not wait.</summary>
    private bool TakeQueued(List<PendingWrite> group)
    {
        var urgent = false;
        while (group.Count < _store.Options.MaxBatchesPerCommit && _queue.TryTake(out var next))
        {
            group.Add(next);
            urgent |= !next.Batch.MayWait;
        }
        return urgent;
    }

    /// <summary>Whether a batch someone waited on committed within <paramref name="window"/>: such batches are still coming.</summary>
    private bool UrgentCommittedWithin(TimeSpan window) =>
        window > TimeSpan.Zero && _lastUrgent != long.MinValue && _time.GetElapsedTime(_lastUrgent) < window;

    /// <summary>
    /// Holds a group of batches that may wait until a batch someone waits on comes (then all commit with one
    /// fsync), the group is full, or <paramref name="window"/> has passed. Not cancelled: it is short, and a
    /// writer being stopped completes the queue, which ends the wait at once.
    /// </summary>
    private void WaitForCompany(List<PendingWrite> group, TimeSpan window)
    {
        var started = _time.GetTimestamp();
        while (group.Count < _store.Options.MaxBatchesPerCommit)
        {
            var left = window - _time.GetElapsedTime(started);
            if (left <= TimeSpan.Zero || !_queue.TryTake(out var next, left))
            {
                return;
            }
            group.Add(next);
            if (TakeQueued(group) || !next.Batch.MayWait)
            {
                return;
            }
        }
    }

    private void CommitGroup(List<PendingWrite> group)
    {
        var started = Stopwatch.GetTimestamp();
        while (true)
        {
            var live = group.Where(p => !p.Completion.Task.IsCompleted).ToList();
            if (live.Count == 0)
            {
                return;
            }
            var outcome = TryCommit(live);
            if (outcome == CommitOutcome.Committed)
            {
                // Batches that failed inside the group already carry their own exception.
                var committed = live.Where(p => !p.Completion.Task.IsCompleted).ToList();
                if (committed.Exists(p => !p.Batch.MayWait))
                {
                    // Someone waited on this commit. Noted before the callers hear of it: what they queue next sees it.
                    _lastUrgent = _time.GetTimestamp();
                }
                Interlocked.Increment(ref _commits);
                Interlocked.Add(ref _batches, committed.Count);
                foreach (var pending in committed)
                {
                    pending.Completion.TrySetResult();
                }
                var elapsedMs = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                if (_store.Options.Telemetry)
                {
                    StorageTelemetry.CommitDuration.Record(elapsedMs);
                    StorageTelemetry.CommitBatches.Record(committed.Count);
                }
                StorageLog.Committed(_logger, committed.Count, elapsedMs);
                return;
            }
            if (outcome == CommitOutcome.NothingLeft)
            {
                return;
            }
            if (outcome == CommitOutcome.MapFull && _store.TryGrowMap())
            {
                continue;
            }
            if (outcome == CommitOutcome.MapFull && live.Count > 1)
            {
                // The map cannot grow: commit one by one, so only the batches that do not fit fail.
                foreach (var pending in live)
                {
                    CommitGroup([pending]);
                }
                return;
            }
            var error = outcome == CommitOutcome.MapFull
                ? new StorageException($"LMDB map is full at its maximum size {_store.Options.MaxMapSize} bytes; nothing of this batch was written", "map_full")
                : _lastError ?? new StorageException("LMDB commit failed", "io");
            if (_store.Options.Telemetry)
            {
                StorageTelemetry.CommitFailures.Add(1);
            }
            StorageLog.CommitFailed(_logger, live.Count, error.Code, error.Message);
            foreach (var pending in live)
            {
                pending.Completion.TrySetException(error);
            }
            return;
        }
    }

    private StorageException? _lastError;

    private enum CommitOutcome
    {
        Committed,
        MapFull,
        Failed,
        NothingLeft,
    }

    private CommitOutcome TryCommit(List<PendingWrite> live)
    {
        _lastError = null;
        using var txn = _store.Environment.BeginTransaction();
        var nested = live.Count > 1;
        foreach (var pending in live)
        {
            var target = nested ? txn.BeginTransaction() : txn;
            try
            {
                var code = Apply(target, pending.Batch);
                if (code == MDBResultCode.MapFull)
                {
                    if (nested)
                    {
                        target.Abort();
                        target.Dispose();
                    }
                    txn.Abort();
                    return CommitOutcome.MapFull;
                }
                if (code != MDBResultCode.Success)
                {
                    throw new StorageException($"LMDB write failed: {code}", StorageErrors.CodeOf(code));
                }
                if (nested)
                {
                    LmdbStore.Check(target.Commit(), "nested commit");
                    target.Dispose();
                }
            }
#pragma warning disable CA1031 // Whatever one batch throws fails that batch alone.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                var error = ex as StorageException ?? new StorageException($"batch rejected: {ex.Message}", "invalid", ex);
                if (nested)
                {
                    AbortQuietly(target);
                    target.Dispose();
                    pending.Completion.TrySetException(error);
                    continue;
                }
                txn.Abort();
                pending.Completion.TrySetException(error);
                return CommitOutcome.Failed;
            }
        }
        if (live.All(p => p.Completion.Task.IsCompleted))
        {
            txn.Abort();
            return CommitOutcome.NothingLeft;
        }
        var result = txn.Commit();
        if (result == MDBResultCode.MapFull)
        {
            return CommitOutcome.MapFull;
        }
        if (result != MDBResultCode.Success)
        {
            _lastError = new StorageException($"LMDB commit failed: {result}", StorageErrors.CodeOf(result));
            return CommitOutcome.Failed;
        }
        return CommitOutcome.Committed;
    }

    private MDBResultCode Apply(LightningTransaction txn, WriteBatch batch)
    {
        var injector = FaultInjector;
        var ops = batch.Ops;
        var previousHeld = true;
        for (var i = 0; i < ops.Count; i++)
        {
            var op = ops[i];
            var db = _store.Database(op.Space);
            MDBResultCode code;
            if (op.IfPrevious && !previousHeld)
            {
                continue;
            }
            previousHeld = true;
            if (op.Expected is { } expected)
            {
                var (found, _, current) = txn.Get(db, op.Key);
                previousHeld = found == MDBResultCode.Success && current.AsSpan().SequenceEqual(expected);
                code = previousHeld ? txn.Delete(db, op.Key) : MDBResultCode.Success;
            }
            else if (op.Prefix)
            {
                code = DeletePrefix(txn, db, op.Key);
            }
            else if (op.Value is null)
            {
                code = txn.Delete(db, op.Key);
                if (code == MDBResultCode.NotFound)
                {
                    code = MDBResultCode.Success;
                }
            }
            else
            {
                code = txn.Put(db, op.Key, op.Value.Value.Span, PutOptions.None);
            }
            if (code != MDBResultCode.Success)
            {
                return code;
            }
            injector?.Invoke(batch, i);
        }
        return MDBResultCode.Success;
    }

    private static MDBResultCode DeletePrefix(LightningTransaction txn, LightningDatabase db, byte[] prefix)
    {
        using var cursor = txn.CreateCursor(db);
        while (true)
        {
            var code = cursor.SetRange(prefix);
            if (code == MDBResultCode.NotFound)
            {
                return MDBResultCode.Success;
            }
            if (code != MDBResultCode.Success)
            {
                return code;
            }
            var (current, key, _) = cursor.GetCurrent();
            if (current != MDBResultCode.Success || !key.AsSpan().StartsWith(prefix))
            {
                return MDBResultCode.Success;
            }
            code = cursor.Delete();
            if (code != MDBResultCode.Success)
            {
                return code;
            }
        }
    }

    private static void AbortQuietly(LightningTransaction txn)
    {
        try
        {
            txn.Abort();
        }
        catch (InvalidOperationException)
        {
            // A nested commit that failed has already released the transaction.
        }
    }

    public void Dispose()
    {
        _queue.CompleteAdding();
        _stop.Cancel();
        _thread.Join();
        _stop.Dispose();
        _queue.Dispose();
    }

    private sealed class PendingWrite(WriteBatch batch)
    {
        public WriteBatch Batch { get; } = batch;

        public TaskCompletionSource Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
