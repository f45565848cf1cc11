using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Client.ObjectStore;
using Runner.Core.Ids;
using Runner.Core.Keys;
using Runner.Sagas.Ownership;
using Runner.Sagas.Partitions;
using Runner.Sagas.Routing;
using Runner.Sagas.Scheduling;
using Runner.Sagas.Snapshots;

namespace Runner.Sagas;

internal sealed partial class SagaRuntime
{
    /// <summary>One held partition: its lease, the intake token a hand-over cancels, and its loops.</summary>
    private sealed class PartitionRun(OwnedLease lease)
    {
        public OwnedLease Lease { get; } = lease;
        public CancellationTokenSource Intake { get; } = new();
        public TaskCompletionSource Prepared { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Set once its first preparation ended, prepared or not (a restore that fails is retried, and said in the log).</summary>
        public TaskCompletionSource FirstAttempt { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public Task Task { get; set; } = Task.CompletedTask;

        /// <summary>The worker and the scheduler: what must have stopped before a hand-over flushes and snapshots.</summary>
        public Task Intaking { get; set; } = Task.CompletedTask;
        public PartitionWorker? Worker { get; set; }
        public PartitionSnapshots? Snapshots { get; set; }
    }

    private sealed class RouterRun(OwnedLease lease)
    {
        public OwnedLease Lease { get; } = lease;
        public CancellationTokenSource Intake { get; } = new();
        public Task Task { get; set; } = Task.CompletedTask;

        /// <summary>The router loop itself: done once a hand-over's intake cancel let it finish its batch.</summary>
        public TaskCompletionSource Routing { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>Waits until the lease is gone (released after a hand-over, lost, or the runtime stopping).</summary>
    private async Task HoldUntilGoneAsync(CancellationToken gone)
    {
        try
        {
            await Task.Delay(Timeout.InfiniteTimeSpan, _time, gone);
        }
        catch (OperationCanceledException)
        {
            // the lease is gone
        }
    }

    ulong IOwnershipHost.Checkpoint(PartitionId partition) =>
        _runs.TryGetValue(partition.Value, out var run) && run.Worker is { } worker ? worker.Checkpoint : 0;

    void IOwnershipHost.PartitionAcquired(OwnedLease lease)
    {
        var run = new PartitionRun(lease);
        var previous = _runs.TryGetValue(lease.Partition!.Value.Value, out var old) ? old.Task : Task.CompletedTask;
        _runs[lease.Partition!.Value.Value] = run;
        // Taken back after this replica fenced it: the fenced run's loops finish first.
        run.Task = Task.Run(async () =>
        {
            await previous;
            await RunPartitionAsync(run);
        }, CancellationToken.None);
    }

    private async Task RunPartitionAsync(PartitionRun run)
    {
        var lease = run.Lease;
        var partition = lease.Partition!.Value;
        using var owned = CancellationTokenSource.CreateLinkedTokenSource(lease.Lost, _stop!.Token);
        var token = owned.Token;
        try
        {
            Taken? taken;
            using (var preparing = CancellationTokenSource.CreateLinkedTokenSource(token, run.Intake.Token))
            {
                // A hand-over during a restore (or one that keeps failing) ends it: the next owner restores.
                taken = await PrepareWithRetriesAsync(run, preparing.Token);
            }
            if (taken is not { Horizon: var horizon, InboxCreated: var inboxCreated })
            {
                if (run.Intake.IsCancellationRequested && !token.IsCancellationRequested)
                {
                    // A hand-over cut the preparation short (a drain's first step can come before the run got this
                    // far): stay, as a run whose intake stopped does, until the hand-over has released the lease.
                    // Ending here would leave the lease held with no run, which a resume could not see to hand over.
                    run.Prepared.TrySetResult();
                    await HoldUntilGoneAsync(token);
                }
                return;
            }
            using var intake = CancellationTokenSource.CreateLinkedTokenSource(run.Intake.Token, token);
            var scheduled = new Scheduling.ScheduleSignal();
            var versions = new PartitionVersions(lease, Versions, () => _manifests, horizon, _logger);
            try
            {
                await versions.RecordAtTakeAsync(token);
            }
            catch (Exception ex) when (ex is NatsException or TimeoutException or InvalidOperationException)
            {
                // The worker records it before the first message past the horizon runs anyway.
                OwnershipLog.VersionMissing(_logger, partition.Value, _manifests.Hash[..12], horizon + 1, $"not recorded at take: {ex.Message}");
            }
            var worker = new PartitionWorker(_js, _store, () => _manifests, _options, partition, Relay, _listener,
                _loggers.CreateLogger<PartitionWorker>(), _time, scheduled, intake.Token, lease, versions);
            var scheduler = new TimerScheduler(_js, _store, _options, partition, scheduled, _loggers.CreateLogger<TimerScheduler>(), _time, intake.Token);
            var snapshots = new PartitionSnapshots(_js, _store, _snapshots!, _options, lease, () => worker.Checkpoint, worker.CheckpointKey,
                inboxCreated, _purgeInbox, _captures, _loggers.CreateLogger<PartitionSnapshots>(), _time);
            run.Worker = worker;
            run.Snapshots = snapshots;
            Relay.Rescan();
            if (worker.Checkpoint < horizon)
            {
                OwnershipLog.Replaying(_logger, partition.Value, lease.Epoch, worker.Checkpoint, horizon);
            }
            var workerTask = Supervise($"partition {partition}", worker.RunAsync, token);
            var schedulerTask = Task.Run(async () =>
            {
                try
                {
                    await worker.CaughtUp.WaitAsync(intake.Token);
                }
                catch (OperationCanceledException)
                {
                    return; // handed over or lost before the replay ended: the next owner fires them
                }
                await Supervise($"scheduler {partition}", scheduler.RunAsync, token);
            }, CancellationToken.None);
            run.Intaking = Task.WhenAll(workerTask, schedulerTask);
            run.Prepared.TrySetResult();
            var snapshotTask = Supervise($"snapshots {partition}", snapshots.RunAsync, intake.Token);
            await Task.WhenAll(run.Intaking, snapshotTask);
            // A hand-over cancelled the intake: stay until it has released the lease (or the runtime stops).
            await HoldUntilGoneAsync(token);
        }
        finally
        {
            // Ended while still held (not handed over, not lost, not stopping): fence it, so the
            // coordinator takes it back with the next epoch instead of renewing a lease nobody serves.
            if (!lease.IsLost && !_stop!.IsCancellationRequested && !run.Intake.IsCancellationRequested)
            {
                lease.Fence("its partition run ended unexpectedly");
            }
            run.Prepared.TrySetResult();
            _runs.TryRemove(new KeyValuePair<int, PartitionRun>(partition.Value, run));
            run.Intake.Dispose();
            _coordinator?.Wake();
        }
    }

    /// <summary>Deletes former owners' consumers, finds the replay horizon and restores; retried until it works or the lease is gone.</summary>
    private async Task<Taken?> PrepareWithRetriesAsync(PartitionRun run, CancellationToken cancellationToken)
    {
        var backoff = TimeSpan.FromMilliseconds(200);
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                return await PrepareAsync(run.Lease, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return null;
            }
#pragma warning disable CA1031 // Whatever fails while preparing (a NATS request timing out, a restore cut short) is retried while the lease is held.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                run.FirstAttempt.TrySetResult();
                OwnershipLog.SnapshotFailed(_logger, run.Lease.Partition!.Value.Value, $"preparing the partition failed, retrying in {backoff.TotalMilliseconds} ms: {ex.Message}");
                try
                {
                    await Task.Delay(backoff, _time, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return null;
                }
                backoff = TimeSpan.FromMilliseconds(Math.Min(backoff.TotalMilliseconds * 2, 10_000));
            }
        }
        return null;
    }

    private async Task<Taken> PrepareAsync(OwnedLease lease, CancellationToken cancellationToken)
    {
        var partition = lease.Partition!.Value;
        var inbox = _options.JetStream.Streams.Inbox;
        // Former owners' consumers go first: from here on no other replica can pull or ack this
        // partition's inbox, so the last sequence read next bounds what any of them can have run.
        foreach (var name in await EpochConsumers.FormerAsync(_js, inbox, _options.PartitionConsumer(partition.Value), lease.Epoch, cancellationToken))
        {
            try
            {
                await _js.DeleteConsumerAsync(inbox, name, cancellationToken);
            }
            catch (NatsJSApiException ex) when (ex.Error.Code == 404)
            {
                // gone already
            }
        }
        var stream = await _js.GetStreamAsync(inbox, cancellationToken: cancellationToken);
        var horizon = await Messaging.StreamSequences.LastOnSubjectAsync(stream, Core.Subjects.Subjects.Inbox(partition), cancellationToken);
        var checkpointKey = PartitionWorker.CheckpointKeyOf(_options, partition);
        var restoreLogger = _loggers.CreateLogger(typeof(PartitionRestore));
        await LostRecord.RecoverAsync(_snapshots!, lease, stream.Info.Created, horizon, _purgeInbox, restoreLogger, _time, cancellationToken);
        await PartitionRestore.PrepareAsync(_store, _snapshots!, lease, () => PartitionWorker.ReadCheckpoint(_store, checkpointKey), restoreLogger, _time, cancellationToken);
        return new Taken(horizon, stream.Info.Created);
    }

    /// <summary>A prepared partition: the last inbox sequence when it was taken (what a replay runs up to), and the inbox stream its snapshots cover.</summary>
    private sealed record Taken(ulong Horizon, DateTimeOffset InboxCreated);

    async Task<ulong> IOwnershipHost.HandOverPartitionAsync(OwnedLease lease, CancellationToken cancellationToken)
    {
        var partition = lease.Partition!.Value;
        if (!_runs.TryGetValue(partition.Value, out var run) || run.Lease != lease)
        {
            return lease.Record.Checkpoint;
        }
        try
        {
            await run.Intake.CancelAsync();
        }
        catch (ObjectDisposedException)
        {
            // the run ended meanwhile (lost or fenced): nothing left to stop
        }
        await run.Prepared.Task.WaitAsync(cancellationToken);
        await run.Intaking.WaitAsync(cancellationToken);
        // The outbox goes out first, so the next owner has nothing to publish again; what cannot be
        // published in time stays in the snapshot, and the next owner publishes it.
        using (var flush = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            flush.CancelAfter(_options.HandOverFlushTimeout);
            try
            {
                while (Relay.Depth(partition) > 0)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(10), _time, flush.Token);
                }
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // flush timed out
            }
        }
        if (run.Snapshots is { } snapshots)
        {
            await snapshots.TakeForHandOverAsync(cancellationToken);
        }
        return run.Worker?.Checkpoint ?? lease.Record.Checkpoint;
    }

    void IOwnershipHost.RouterAcquired(OwnedLease lease, string stream)
    {
        var run = new RouterRun(lease);
        var previous = _routers.TryGetValue(stream, out var old) ? old.Task : Task.CompletedTask;
        _routers[stream] = run;
        run.Task = Task.Run(async () =>
        {
            await previous; // one reader per router consumer, in this process too
            using var owned = CancellationTokenSource.CreateLinkedTokenSource(lease.Lost, _stop!.Token);
            try
            {
                var router = new Router(_js, _store, () => _manifests, _options, stream, _loggers.CreateLogger<Router>(), _time, run.Intake.Token, lease);
                await Supervise($"router {stream}", router.RunAsync, owned.Token);
                run.Routing.TrySetResult();
                await HoldUntilGoneAsync(owned.Token);
            }
            finally
            {
                run.Routing.TrySetResult();
                _routers.TryRemove(new KeyValuePair<string, RouterRun>(stream, run));
                run.Intake.Dispose();
                _coordinator?.Wake();
            }
        }, CancellationToken.None);
    }

    async Task IOwnershipHost.HandOverRouterAsync(OwnedLease lease, CancellationToken cancellationToken)
    {
        var run = _routers.Values.FirstOrDefault(r => r.Lease == lease);
        if (run is null)
        {
            return;
        }
        try
        {
            await run.Intake.CancelAsync();
        }
        catch (ObjectDisposedException)
        {
            return; // the router ended meanwhile
        }
        // The router returns once the batch in hand is routed and acked.
        await run.Routing.Task.WaitAsync(cancellationToken);
    }
}
