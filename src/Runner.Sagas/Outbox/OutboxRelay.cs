using System.Text.Json;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Core;
using Runner.Core.Events;
using Runner.Core.Ids;
using Runner.Core.Keys;
using Runner.Messaging;
using Runner.Sagas.Quarantine;
using Runner.Storage;

namespace Runner.Sagas.Outbox;

/// <summary>
/// Publishes committed commands to <c>WORKFLOW_COMMANDS</c> with <c>Nats-Msg-Id = command_id</c>,
/// many in flight, and deletes each outbox item only after its PubAck. Partition workers hand it
/// new items right after their commit (fast path); at start, and whenever the fast path overflows
/// or a publish fails, it rescans the outbox in LMDB, so nothing committed is ever left behind.
/// </summary>
internal sealed class OutboxRelay
{
    private static readonly SpanNames s_relaySpans = new("relay");

    private const int ScanPage = 4096;

    private readonly INatsJSContext _js;
    private readonly PubAckPipeline _publisher;
    private readonly LmdbStore _store;
    private readonly SagaRuntimeOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Channel<OutboxEntry> _queue;
    private readonly HashSet<byte[]> _inFlight = new(KeyBytesComparer.Instance);
    private readonly Lock _gate = new();
    private readonly SemaphoreSlim _wake = new(0);
    // Rescans asked for (at start: one) and the request count when the pass under way began: a
    // request that comes in during a pass gets a whole pass of its own once this one ends, since
    // the items it is about (a partition just taken) may sit before the cursor.
    private long _rescansRequested = 1;
    private long _rescansStarted;
    private bool _scanning;
    private byte[]? _scanCursor;
    // When the last pass read its last page (a timestamp): an item handed over on the fast path before then may have
    // been published and deleted by that pass, so it goes out only if the store still holds it.
    private long _passEnded = long.MinValue;

    // Server rejections (not timeouts) per outbox key; at the limit the command is quarantined.
    private readonly Dictionary<byte[], int> _rejections = new(KeyBytesComparer.Instance);
    private Task? _wakeTask;
    private long _published;

    private readonly Func<PartitionId, bool> _owns;

    /// <param name="owns">
    /// Whether this replica owns a partition now: only its outbox items are published. Items of a
    /// partition owned elsewhere stay in this store untouched until it comes back (or is replaced
    /// by a restore); the owner publishes the same commands, under the same ids.
    /// </param>
    /// <param name="queueCapacity">Items the fast path holds before it falls back to a rescan.</param>
    public OutboxRelay(INatsJSContext js, LmdbStore store, SagaRuntimeOptions options, ILogger logger, TimeProvider time, Func<PartitionId, bool>? owns = null, int queueCapacity = 65_536)
    {
        _owns = owns ?? (_ => true);
        _js = js;
        _publisher = PubAckPipeline.For(js.Connection);
        _store = store;
        _options = options;
        _logger = logger;
        _time = time;
        // Wait, not DropWrite: with DropWrite a full channel's TryWrite drops the item and still returns true, so
        // Enqueue would never learn of the overflow and the dropped items would sit in the store until a restart.
        // Nothing waits on it: Enqueue only tries, and rescans when the try fails.
        _queue = Channel.CreateBounded<OutboxEntry>(new BoundedChannelOptions(queueCapacity) { FullMode = BoundedChannelFullMode.Wait, SingleReader = true });
    }

    public long Published => Interlocked.Read(ref _published);

    /// <summary>Items handed over on the fast path and not yet taken (for tests).</summary>
    internal int Queued => _queue.Reader.Count;

    /// <summary>Hands freshly committed items to the relay. Never blocks: on overflow it rescans instead.</summary>
    public void Enqueue(IReadOnlyList<OutboxEntry> entries)
    {
        var now = _time.GetTimestamp();
        foreach (var entry in entries)
        {
            if (!_queue.Writer.TryWrite(entry with { Since = now }))
            {
                Rescan();
                return;
            }
        }
    }

    /// <summary>Scans the outbox again (a partition was just taken: what its store holds goes out).</summary>
    public void Rescan()
    {
        RequestRescan();
        _wake.Release();
    }

    private void RequestRescan() => Interlocked.Increment(ref _rescansRequested);

    private bool RescanDue => _scanning || Interlocked.Read(ref _rescansRequested) != _rescansStarted;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        SagasLog.RelayStarted(_logger, (int)Depth());
        var backoff = TimeSpan.FromMilliseconds(100);
        // The previous batch's deletes, committing while the next batch is published: a durable commit waits its
        // turn behind the partition workers' batches, and a relay that waited for it idled that long per batch.
        var deleting = Task.CompletedTask;
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                List<OutboxEntry> batch;
                try
                {
                    batch = await NextBatchAsync(cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                if (batch.Count == 0)
                {
                    continue;
                }
                var (failed, deletes) = await PublishAsync(batch, cancellationToken);
                // One delete commit outstanding at most: the one before ends before this one takes its place.
                await deleting;
                deleting = deletes;
                if (failed > 0)
                {
                    RequestRescan();
                    SagasLog.RelayPublishFailed(_logger, failed, backoff.TotalMilliseconds, "no PubAck");
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
                else
                {
                    backoff = TimeSpan.FromMilliseconds(100);
                }
            }
        }
        finally
        {
            // Its items stay claimed until it ends, so the relay stops with nothing of its own in flight.
            await deleting;
        }
    }

    internal async Task<List<OutboxEntry>> NextBatchAsync(CancellationToken cancellationToken)
    {
        var max = _options.RelayConcurrency;
        if (RescanDue)
        {
            // One pass over the outbox in key order, a page at a time, continuing after the last
            // key seen: an item that keeps failing at the head cannot hide the ones behind it.
            if (!_scanning)
            {
                _rescansStarted = Interlocked.Read(ref _rescansRequested);
                _scanning = true;
                _scanCursor = null;
                // What the fast path holds was committed before it was handed over, so this pass finds it in the
                // store. Left queued, each would be published a second time once the pass had published and
                // deleted it: a relay that overflows under load would repeat up to a whole queue per pass. (An
                // item handed over during the pass may be found by it too, if it sits ahead of the cursor: the
                // fast path checks those against the store once the pass has ended.)
                while (_queue.Reader.TryRead(out _))
                {
                }
            }
            // Read and claimed under the gate that releases items: an item whose delete commits while the page is
            // read is either gone from the page or still claimed, never read and then released and claimed again.
            lock (_gate)
            {
                var (scanned, next) = Scan(max, _scanCursor);
                _scanCursor = next;
                _scanning = next is not null;
                if (!_scanning)
                {
                    _passEnded = _time.GetTimestamp();
                }
                return ClaimHeld(scanned);
            }
        }

        var readTask = _queue.Reader.WaitToReadAsync(cancellationToken).AsTask();
        if (_wakeTask is null || _wakeTask.IsCompleted)
        {
            _wakeTask = _wake.WaitAsync(cancellationToken);
        }
        await Task.WhenAny(readTask, _wakeTask);
        cancellationToken.ThrowIfCancellationRequested();
        if (RescanDue)
        {
            return [];
        }
        var batch = new List<OutboxEntry>();
        var handedDuringPass = false;
        while (batch.Count < max && _queue.Reader.TryRead(out var entry))
        {
            // A partition lost since its commit: its new owner publishes the same command.
            if (PartitionOf(entry.Key) is { } p && _owns(p))
            {
                batch.Add(entry);
                handedDuringPass |= entry.Since <= _passEnded;
            }
        }
        return handedDuringPass ? ClaimStored(batch) : Claim(batch);
    }

    /// <summary>
    /// As <see cref="Claim"/>, for a batch with items handed over before the last pass ended: those the store no longer
    /// holds were published and deleted by the pass, and are dropped rather than published again. Read under the gate that
    /// releases items, so an item is either still claimed by the pass's batch or, its delete committed, gone from the store.
    /// </summary>
    private List<OutboxEntry> ClaimStored(List<OutboxEntry> entries)
    {
        lock (_gate)
        {
            var stored = _store.Read((Entries: entries, PassEnded: _passEnded), static (reader, s) =>
            {
                var held = new List<OutboxEntry>(s.Entries.Count);
                foreach (var entry in s.Entries)
                {
                    if (entry.Since > s.PassEnded || reader.Contains(KeySpace.Outbox, entry.Key))
                    {
                        held.Add(entry);
                    }
                }
                return held;
            });
            return ClaimHeld(stored);
        }
    }

    /// <summary>One page of the outbox in key order, only the owned partitions' items; and where the next page starts (null: the end).</summary>
    private (List<OutboxEntry> Entries, byte[]? Next) Scan(int max, byte[]? after)
    {
        var now = _time.GetTimestamp();
        var page = _store.Read(reader => reader.Scan(KeySpace.Outbox, [], max, after));
        var entries = page.Where(kv => PartitionOf(kv.Key) is { } p && _owns(p))
            .Select(kv => new OutboxEntry(kv.Key, JsonSerializer.Deserialize(kv.Value, CoreJsonContext.Default.CommandMessage)!) { Since = now })
            .ToList();
        return (entries, page.Count == max ? page[^1].Key : null);
    }

    /// <summary>The partition an outbox key belongs to (its first component), or null when it does not parse.</summary>
    private static PartitionId? PartitionOf(ReadOnlySpan<byte> key) =>
        key.Length > 5 && System.Buffers.Text.Utf8Parser.TryParse(key[..5], out int p, out var consumed) && consumed == 5 ? new PartitionId(p) : null;

    /// <summary>Commands committed and not yet published, in the partitions this replica owns.</summary>
    public long Depth() => _store.Read(r =>
    {
        var total = 0L;
        r.Visit(KeySpace.Outbox, [], (key, _) =>
        {
            if (PartitionOf(key) is { } p && _owns(p))
            {
                total++;
            }
        });
        return total;
    });

    /// <summary>Commands of <paramref name="partition"/> committed and not yet published.</summary>
    public long Depth(PartitionId partition) => _store.Read(r => r.Visit(KeySpace.Outbox, StoreKeys.OutboxPrefix(partition), (_, _) => { }));

    private List<OutboxEntry> Claim(List<OutboxEntry> entries)
    {
        lock (_gate)
        {
            return ClaimHeld(entries);
        }
    }

    /// <summary>The entries not claimed yet, claimed now; the caller holds the gate.</summary>
    private List<OutboxEntry> ClaimHeld(List<OutboxEntry> entries)
    {
        var claimed = new List<OutboxEntry>(entries.Count);
        foreach (var entry in entries)
        {
            if (_inFlight.Add(entry.Key))
            {
                claimed.Add(entry);
            }
        }
        return claimed;
    }

    private void Release(IEnumerable<OutboxEntry> entries)
    {
        lock (_gate)
        {
            foreach (var entry in entries)
            {
                _inFlight.Remove(entry.Key);
            }
        }
    }

    /// <summary>
    /// Publishes a batch and waits for its PubAcks; returns how many did not get one, and the commit of the
    /// deletes of those that did. The batch's items stay claimed until that commit ends, so neither a rescan
    /// nor the fast path hands out an item whose delete is still on its way.
    /// </summary>
    internal async Task<(int Failed, Task Deletes)> PublishAsync(List<OutboxEntry> batch, CancellationToken cancellationToken)
    {
        BatchSent published;
        try
        {
            published = await PublishClaimedAsync(batch, cancellationToken);
        }
        catch
        {
            Release(batch);
            throw;
        }
        // What did not go out is let go at once, for the rescan that its failure asks for to find.
        Release(published.Kept);
        return (published.Kept.Count, DeleteAsync(published.Deleting, published.Done, published.Acked));
    }

    /// <summary>What publishing a batch left: the deletes to commit and their items, and the items kept in the outbox (those that did not go out).</summary>
    private readonly record struct BatchSent(WriteBatch Done, int Acked, List<OutboxEntry> Deleting, List<OutboxEntry> Kept);

    /// <summary>
    /// Commits the deletes of a batch's published items, then lets those items go. Not cancelled: the items are
    /// published, and deleting them now spares publishing them again after a restart.
    /// </summary>
    private async Task DeleteAsync(List<OutboxEntry> deleting, WriteBatch done, int acked)
    {
        var failed = false;
        try
        {
            if (done.Count == 0)
            {
                return;
            }
            await _store.Writer.CommitAsync(done, CancellationToken.None);
            Interlocked.Add(ref _published, acked);
            SagasTelemetry.Dispatched.Add(acked);
        }
        catch (StorageException ex)
        {
            // Published but not deleted: they go out again with the same Nats-Msg-Id, after the rescan below.
            SagasLog.RelayDeleteFailed(_logger, acked, ex.Message);
            failed = true;
        }
        finally
        {
            Release(deleting);
        }
        if (failed)
        {
            // After the release, so that the pass finds them; and a wake, for a relay idle on its queue.
            Rescan();
        }
    }

    private async Task<BatchSent> PublishClaimedAsync(List<OutboxEntry> batch, CancellationToken cancellationToken)
    {
        var futures = new List<(OutboxEntry Entry, string Subject, byte[] Body, PendingPubAck? Future)>(batch.Count);
        foreach (var entry in batch)
        {
            var subject = Core.Subjects.Subjects.Command(entry.Command.Tenant, entry.Command.Effect, entry.Command.Pool);
            var body = CommandBody(entry.Command);
            using var span = Tracing.Start(SagasTelemetry.Source, s_relaySpans, entry.Command.Effect, System.Diagnostics.ActivityKind.Producer, entry.Command.TraceParent);
            span?.SetTag("runner.command_id", entry.Command.CommandId);
            span?.SetTag("runner.tenant", entry.Command.Tenant);
            try
            {
                var future = await _publisher.PublishAsync(
                    subject,
                    body,
                    EventHeaders.Encode(entry.Command.CommandId),
                    NatsMessages.EndToEnd(entry.Command.Tenant, entry.Command.CorrelationId, entry.Command.CausationId, Tracing.TraceParent(span, entry.Command.TraceParent)),
                    cancellationToken);
                futures.Add((entry, subject, body, future));
            }
            catch (Exception ex) when (ex is NatsException or TimeoutException)
            {
                futures.Add((entry, subject, body, null));
            }
        }

        // Its commit answers no one (the commands are out): it may wait to share the next transition's fsync.
        var done = new WriteBatch { MayWait = true };
        var acked = 0;
        var deleting = new List<OutboxEntry>(batch.Count);
        var kept = new List<OutboxEntry>();
        foreach (var (entry, subject, body, future) in futures)
        {
            if (future is null)
            {
                kept.Add(entry);
                continue;
            }
            try
            {
                var ack = await future.Value.GetResponseAsync(cancellationToken);
                ack.EnsureStored();
                done.Delete(KeySpace.Outbox, entry.Key);
                deleting.Add(entry);
                if (_rejections.Count > 0)
                {
                    _rejections.Remove(entry.Key);
                }
                acked++;
                SagasTelemetry.DispatchLatency.Record(_time.GetElapsedTime(entry.Since).TotalMilliseconds);
            }
            catch (NatsJSApiException ex) when (PubAcks.IsPermanent(ex))
            {
                // The server answered and refused (message too large for the stream): retrying the
                // same bytes will not help for ever. After the limit, keep it in quarantine.
                var id = entry.Key;
                var attempts = _rejections.GetValueOrDefault(id) + 1;
                _rejections[id] = attempts;
                if (attempts >= _options.JetStream.MaxDeliver)
                {
                    _rejections.Remove(id);
                    QuarantineRecords.AddCommand(done, _options.JetStream.Streams.WorkflowCommands, subject, entry.Command, body, ex.Message, attempts, _options.QuarantinePayloadBytes, _time);
                    done.Delete(KeySpace.Outbox, entry.Key);
                    deleting.Add(entry);
                    SagasLog.CommandQuarantined(_logger, entry.Command.CommandId, attempts, ex.Message);
                }
                else
                {
                    kept.Add(entry);
                }
            }
            catch (Exception ex) when (ex is NatsException or TimeoutException)
            {
                kept.Add(entry);
            }
        }

        return new BatchSent(done, acked, deleting, kept);
    }

    /// <summary>The command body: the record without the relay's own fields (pool is in the subject, traceparent in a header).</summary>
    internal static byte[] CommandBody(Core.Transitions.CommandMessage command) =>
        JsonSerializer.SerializeToUtf8Bytes(command with { TraceParent = null, Pool = null }, CoreJsonContext.Default.CommandMessage);
}
