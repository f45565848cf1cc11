using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using Runner.Core.Ids;
using Runner.Core.Keys;
using Runner.Messaging;
using Runner.Sagas.Manifests;
using Runner.Sagas.Outbox;
using Runner.Sagas.Scheduling;
using Runner.Storage;

namespace Runner.Sagas.Partitions;

/// <summary>
/// Runs one inbox partition: reads its durable consumer in order, runs each event through its
/// saga's script, commits the whole batch — states, outbox items, schedules, dedupe markers,
/// quarantine records and the partition checkpoint — in one LMDB transaction, and only then acks
/// (AckAll on the last message). A redelivered message at or below the checkpoint is acked
/// without running again.
/// </summary>
internal sealed partial class PartitionWorker
{
    private readonly INatsJSContext _js;
    private readonly LmdbStore _store;
    private readonly Func<ManifestSet> _manifests;
    private readonly SagaRuntimeOptions _options;
    private readonly PartitionId _partition;
    private readonly OutboxRelay? _relay;
    private readonly ITransitionListener? _listener;
    private readonly ScheduleSignal? _scheduled;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly byte[] _checkpointKey;

    /// <summary>The batch tables, emptied after each batch: the worker runs one batch at a time.</summary>
    private readonly BatchWork.Tables _tables = new();
    private readonly string _consumer;
    private readonly CancellationToken _intake;
    private readonly Ownership.OwnedLease? _lease;
    private readonly PartitionVersions? _versions;
    private long _checkpoint;
    private readonly TaskCompletionSource _caughtUp = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _replayed;
    private long _lastInboxMs;
    private bool _replayDone;

    /// <summary>False: a worker whose transitions are not the replica's (the warm-up's) records no spans and no metrics.</summary>
    private readonly bool _telemetry;

    public PartitionWorker(
        INatsJSContext js,
        LmdbStore store,
        Func<ManifestSet> manifests,
        SagaRuntimeOptions options,
        PartitionId partition,
        OutboxRelay? relay,
        ITransitionListener? listener,
        ILogger logger,
        TimeProvider time,
        ScheduleSignal? scheduled = null,
        CancellationToken intake = default,
        Ownership.OwnedLease? lease = null,
        PartitionVersions? versions = null,
        bool telemetry = true)
    {
        _telemetry = telemetry;
        _intake = intake;
        _lease = lease;
        _versions = versions;
        _js = js;
        _store = store;
        _manifests = manifests;
        _options = options;
        _partition = partition;
        _relay = relay;
        _listener = listener;
        _scheduled = scheduled;
        _logger = logger;
        _time = time;
        _checkpointKey = CheckpointKeyOf(options, partition);
        _consumer = lease is null ? options.PartitionConsumer(partition.Value) : options.PartitionConsumer(partition.Value, lease.Epoch);
        _checkpoint = (long)ReadCheckpoint();
        if (versions is null || (ulong)_checkpoint >= versions.Horizon)
        {
            _replayDone = true;
            _caughtUp.TrySetResult();
        }
    }

    /// <summary>
    /// Completes once the partition has applied everything up to the horizon its lease was taken
    /// at: its timers are fired only then, so a timer a former owner fired (and whose event is in
    /// the replayed inbox) is not fired again from a restored schedule.
    /// </summary>
    public Task CaughtUp => _caughtUp.Task;

    /// <summary>The inbox time (stream timestamp, Unix ms) of the last message committed; 0 before the first batch.</summary>
    public long LastInboxMs => Interlocked.Read(ref _lastInboxMs);

    /// <summary>The highest inbox sequence committed.</summary>
    public ulong Checkpoint => (ulong)Interlocked.Read(ref _checkpoint);

    public byte[] CheckpointKey => _checkpointKey;

    /// <summary>The consumer this worker reads through.</summary>
    public string Consumer => _consumer;

    /// <summary>
    /// Runs until <paramref name="cancellationToken"/>, or until the intake token passed at
    /// construction is cancelled (drain): then it stops reading and returns once the batch in hand
    /// is committed and acked.
    /// </summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        if (_intake.IsCancellationRequested)
        {
            return;
        }
        using var reading = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _intake);
        var settings = _options.JetStream;
        Interlocked.Exchange(ref _checkpoint, (long)ReadCheckpoint());
        var config = new ConsumerConfig(_consumer)
        {
            FilterSubject = Core.Subjects.Subjects.Inbox(_partition),
            AckPolicy = ConsumerConfigAckPolicy.All,
            AckWait = settings.AckWait,
            MaxDeliver = -1,
            MaxAckPending = settings.StageAckPending,
        };
        SagasLog.PartitionStarted(_logger, _partition.Value, _consumer, (ulong)Interlocked.Read(ref _checkpoint));
        // The LMDB checkpoint, not the server's ack floor, says where this partition resumes.
        await using var batcher = new MessageBatcher(_js, settings.Streams.Inbox, config,
            _ => ValueTask.FromResult((ulong)Interlocked.Read(ref _checkpoint) + 1), settings.Batch, _logger, _time, cancellationToken,
            _lease is null ? null : VerifyOwnerAsync);
        while (!reading.IsCancellationRequested)
        {
            List<JetStreamMessage> batch;
            try
            {
                batch = await batcher.ReadBatchAsync(settings.Batch, reading.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            // Nothing of a failed batch was committed or acked. The messages are still in hand, so
            // retry the same batch (same order) until it commits; "in progress" acks keep the server
            // from redelivering it meanwhile, and anything it redelivers anyway is below the checkpoint.
            var backoff = TimeSpan.FromMilliseconds(100);
            while (!await ProcessBatchAsync(batch, cancellationToken))
            {
                if (_intake.IsCancellationRequested)
                {
                    // Handing over (or draining): a batch that cannot commit is left unacked for
                    // whoever reads the partition next, rather than hold the hand-over forever.
                    return;
                }
                foreach (var msg in batch)
                {
                    await msg.AckProgressAsync(cancellationToken: cancellationToken).QuietlyAsync();
                }
                try
                {
                    await Task.Delay(backoff, _time, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                backoff = TimeSpan.FromMilliseconds(Math.Min(backoff.TotalMilliseconds * 2, 5_000));
            }
        }
    }

    /// <summary>
    /// Runs after each attach of the consumer: a former owner that re-created its consumer after
    /// another took the partition finds out here, removes it and stops before pulling anything.
    /// </summary>
    private async ValueTask VerifyOwnerAsync(CancellationToken cancellationToken)
    {
        if (await _lease!.VerifyAsync(cancellationToken))
        {
            return;
        }
        try
        {
            await _js.DeleteConsumerAsync(_options.JetStream.Streams.Inbox, _consumer, CancellationToken.None);
        }
        catch (Exception ex) when (ex is NatsException or TimeoutException)
        {
            // the new owner deletes it
        }
        throw new OperationCanceledException(_lease.Lost);
    }

    /// <summary>Returns false when the batch could not be committed (nothing was acked).</summary>
    internal async Task<bool> ProcessBatchAsync(List<JetStreamMessage> batch, CancellationToken cancellationToken)
    {
        // Its values' pooled room goes back when this returns: after the commit's task has completed, never while the writer may read it.
        using var work = new BatchWork(_partition, batch.Count, _tables);
        var last = batch[^1];
        var checkpoint = (ulong)Interlocked.Read(ref _checkpoint);
        var lastDelivery = Delivery.Required(last);
        var lastInBatch = lastDelivery.StreamSequence;
        Func<ulong, ManifestSet> manifests;
        if (_versions is null || lastInBatch <= checkpoint)
        {
            var current = _manifests();
            manifests = _ => current;
        }
        else
        {
            var first = batch.Select(m => Delivery.Required(m).StreamSequence).First(s => s > checkpoint);
            try
            {
                manifests = await _versions.PrepareAsync(first, lastInBatch, cancellationToken);
            }
            catch (ManifestVersionUnavailableException ex)
            {
                Ownership.OwnershipLog.VersionMissing(_logger, _partition.Value, _lease!.Record.Versions.LastOrDefault(v => v.From <= first)?.Manifest ?? "?", first, ex.Message);
                return false;
            }
            catch (InvalidOperationException ex)
            {
                SagasLog.PartitionCommitFailed(_logger, _partition.Value, batch.Count, "version", ex.Message);
                return false;
            }
        }
        var lastSequence = await Scripting.ScriptThreads.RunAsync(() => ProcessAll(batch, checkpoint, manifests, work));
        if (lastSequence > checkpoint)
        {
            work.Batch.Put(Core.Keys.KeySpace.Checkpoint, _checkpointKey, Encoding.ASCII.GetBytes(lastSequence.ToString(CultureInfo.InvariantCulture)));
            try
            {
                await _store.Writer.CommitAsync(work.Batch, cancellationToken);
            }
            catch (StorageException ex)
            {
                SagasLog.PartitionCommitFailed(_logger, _partition.Value, batch.Count, ex.Code, ex.Message);
                return false;
            }
            Interlocked.Exchange(ref _checkpoint, (long)lastSequence);
            Interlocked.Exchange(ref _lastInboxMs, Math.Max(Interlocked.Read(ref _lastInboxMs), lastDelivery.Timestamp.ToUnixTimeMilliseconds()));
        }

        // Committed: the relay and the scheduler may start at once; the purge (a server round
        // trip that can stall while NATS is in trouble) goes last.
        if (work.Outbox.Count > 0)
        {
            _relay?.Enqueue(work.Outbox);
        }
        if (work.Scheduled)
        {
            _scheduled?.Pulse();
        }
        foreach (var msg in work.Terminated)
        {
            await msg.AckTerminateAsync(cancellationToken: cancellationToken).QuietlyAsync();
        }
        await last.AckAsync(cancellationToken: cancellationToken).QuietlyAsync();
        if (work.Notices.Count > 0)
        {
            if (_telemetry)
            {
                foreach (var notice in work.Notices)
                {
                    SagasTelemetry.Transitions.Add(1, new KeyValuePair<string, object?>(SagasTelemetry.SagaTag, notice.Instance.Saga.Value));
                }
            }
            _listener?.OnCommitted(work.Notices);
        }
        CountReplay(checkpoint, lastSequence, batch.Count);
        return true;
    }

    /// <summary>Counts what a new owner replays, up to the horizon its lease was taken at.</summary>
    private void CountReplay(ulong before, ulong after, int messages)
    {
        if (_versions is null || _replayDone || after <= before)
        {
            return;
        }
        _replayed += messages;
        if (after >= _versions.Horizon)
        {
            _replayDone = true;
            Ownership.OwnershipTelemetry.ReplayLength.Record(_replayed);
            _caughtUp.TrySetResult();
        }
    }

    /// <summary>Runs every new message of the batch through its script, on a script thread.</summary>
    private ulong ProcessAll(List<JetStreamMessage> batch, ulong checkpoint, Func<ulong, ManifestSet> manifests, BatchWork work)
    {
        var lastSequence = checkpoint;
        foreach (var msg in batch)
        {
            var delivery = Delivery.Required(msg);
            var sequence = delivery.StreamSequence;
            if (sequence <= checkpoint)
            {
                continue;
            }
            var mark = work.Save();
            try
            {
                Process(msg, delivery, manifests(sequence), work);
            }
#pragma warning disable CA1031 // An unforeseen failure on one message quarantines it; it must not stall the partition.
            catch (Exception ex) when (ex is not OperationCanceledException)
#pragma warning restore CA1031
            {
                work.Restore(mark);
                Quarantine(work, msg, Runner.Sagas.Quarantine.QuarantineRecords.ProcessingError, $"{ex.GetType().Name}: {ex.Message}", null, null, null);
            }
            lastSequence = Math.Max(lastSequence, sequence);
        }

        return lastSequence;
    }

    internal ulong ReadCheckpoint() => ReadCheckpoint(_store, _checkpointKey);

    /// <summary>The partition's checkpoint key: the consumer's name without epoch, as it belongs to the partition, not to one owner.</summary>
    internal static byte[] CheckpointKeyOf(SagaRuntimeOptions options, PartitionId partition) =>
        StoreKeys.Checkpoint(options.PartitionConsumer(partition.Value), partition);

    /// <summary>The highest inbox sequence committed for the partition whose checkpoint key is <paramref name="key"/> (0: none).</summary>
    internal static ulong ReadCheckpoint(LmdbStore store, byte[] key)
    {
        var raw = store.Read(reader => reader.Get(Core.Keys.KeySpace.Checkpoint, key));
        return raw is null ? 0 : ulong.Parse(Encoding.ASCII.GetString(raw), CultureInfo.InvariantCulture);
    }
}
