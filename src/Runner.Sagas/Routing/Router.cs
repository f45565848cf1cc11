using System.Buffers;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using Runner.Core.Events;
using Runner.Core.Ids;
using Runner.Core.Keys;
using Runner.Messaging;
using Runner.Sagas.Manifests;
using Runner.Sagas.Quarantine;
using Runner.Storage;

namespace Runner.Sagas.Routing;

/// <summary>
/// The stateless router stage for one trigger stream: one durable consumer, read by the replica
/// that holds the stream's router lease. For each event and each saga whose trigger matches — or, on
/// WORKFLOW_EVENTS, the saga a timer or effect result belongs to (<see cref="ImplicitRoutes"/>) —
/// it computes the correlation key and partition and republishes the normalized event to
/// <c>runner.inbox.{partition}</c> with <c>Nats-Msg-Id = {stream}:{seq}:{saga}</c>, then acks.
/// </summary>
internal sealed class Router
{
    private static readonly SpanNames s_routeSpans = new("route");

    private const string Stage = "router";

    private readonly INatsJSContext _js;
    private readonly PubAckPipeline _publisher;
    private readonly LmdbStore _store;
    private readonly Func<ManifestSet> _manifests;
    private readonly SagaRuntimeOptions _options;
    private readonly string _stream;
    /// <summary>Each partition's inbox subject, made once.</summary>
    private readonly string[] _inboxes;

    /// <summary>Each partition's number as its header value, made once.</summary>
    private readonly string[] _partitionNames;

    /// <summary>
    /// The headers of the router's inbox publishes, cleared and filled again for each: the client writes a
    /// publish's headers out before its publish returns, and the router publishes one message at a time.
    /// </summary>
    private readonly NatsHeaders _outHeaders = new(16);

    /// <summary>The sagas one message matches, and its routes: kept, as the router routes one message at a time.</summary>
    private List<(LoadedSaga Saga, Core.Manifests.SagaTrigger Trigger)>? _matches;
    private readonly List<(LoadedSaga Saga, string? Key, string Correlation)> _routes = new(2);

    /// <summary>The body of the router's inbox publishes, written again for each event (as the headers; one larger than <see cref="BodyRoom"/> is let go).</summary>
    private ArrayBufferWriter<byte> _body = new(BodyRoom);

    private const int BodyRoom = 4096;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly CancellationToken _intake;

    // Refused inbox publishes by stream sequence. Re-attaching re-creates the consumer, which
    // resets the server's delivery count (and that counts unanswered publishes too), so the count
    // that decides quarantine lives here.
    private readonly Dictionary<ulong, ulong> _attempts = [];

    private readonly Ownership.OwnedLease? _lease;

    /// <summary>The consumer this router reads through: its lease epoch's own, which no other router reads (see <see cref="RetireFormerConsumersAsync"/>).</summary>
    private readonly string _consumer;

    /// <summary>
    /// How far the consumers of the lease's former holders had acked in the trigger stream created at <c>Created</c>
    /// (0: none found): routed, so not routed again.
    /// </summary>
    private (ulong Sequence, DateTimeOffset Created) _formerFloor;

    /// <summary>
    /// Set when a batch could not be routed whole, and at start: the next inbox publish goes out alone, and the rest only
    /// once it is stored, so an inbox that is still not answering (no leader, NATS restarting) is sent one message per
    /// attempt rather than the whole batch.
    /// </summary>
    private bool _probing = true;

    /// <summary>
    /// The last message of each instance in the batches in flight, published or waiting for a second pass: a later
    /// event of that instance is published only once that one's PubAcks say it is stored. Instances are told apart by
    /// a hash of tenant, saga and key; two that share one only make an event wait for another instance's, never
    /// overtake its own. A batch's entries are dropped once it has settled (unless a later batch has replaced them), and
    /// all of them when a batch fails.
    /// </summary>
    private readonly Dictionary<int, Routed> _lastOf = [];

    // Where the next attach starts: past everything routed (in the inbox or quarantined). Reported
    // to the lease too, so a router that takes the stream over resumes there even when the
    // consumer is gone; valid only for the trigger stream created at _streamCreated. The pump's
    // attach and the routing loop both move them: always together, under the lock.
    private readonly Lock _progress = new();
    private long _resumeAt;
    private DateTimeOffset _streamCreated;

    /// <param name="intake">Cancelled to drain: the router stops reading, finishes the batch in hand and returns.</param>
    /// <param name="lease">The stream's router lease: checked after each attach, so a former holder never reads beside the new one.</param>
    public Router(INatsJSContext js, LmdbStore store, Func<ManifestSet> manifests, SagaRuntimeOptions options, string stream, ILogger logger, TimeProvider time,
        CancellationToken intake = default, Ownership.OwnedLease? lease = null)
    {
        _intake = intake;
        _lease = lease;
        _consumer = lease is null ? options.RouterConsumer(stream) : options.RouterConsumer(stream, lease.Epoch);
        _js = js;
        _publisher = PubAckPipeline.For(js.Connection);
        _store = store;
        _manifests = manifests;
        _options = options;
        _inboxes = new string[options.Partitions];
        _partitionNames = new string[options.Partitions];
        for (var p = 0; p < _inboxes.Length; p++)
        {
            _partitionNames[p] = p.ToString(System.Globalization.CultureInfo.InvariantCulture);
            _inboxes[p] = Core.Subjects.Subjects.Inbox(new PartitionId(p));
        }
        _stream = stream;
        _logger = logger;
        _time = time;
    }

    public string Stream => _stream;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        if (_intake.IsCancellationRequested)
        {
            return;
        }
        using var reading = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _intake);
        var settings = _options.JetStream;
        // One reader per consumer (the lease's holder, at its epoch), which settles its batches in order: an ack of a
        // batch's last message acknowledges every earlier one (docs/architecture.md, "AckAll in routers and partition workers").
        var config = new ConsumerConfig(_consumer)
        {
            AckPolicy = ConsumerConfigAckPolicy.All,
            AckWait = settings.AckWait,
            MaxDeliver = -1,
            MaxAckPending = settings.StageAckPending,
        };

        // Resume in order from the ack floor: what was acked beyond it is routed again, and the
        // inbox Nats-Msg-Id plus the partition's dedupe markers drop those copies. Each attach
        // deletes and re-creates the consumer, so an attach whose create failed leaves none behind,
        // and its ack floor reads as 0: never go back below what this router, or the lease's
        // former holder, has already routed, or a server error mid-attach would route the whole
        // trigger stream again (and events older than the dedupe retention would apply twice).
        await RetireFormerConsumersAsync(cancellationToken);
        await using var batcher = new MessageBatcher(_js, _stream, config, ResumeAtAsync,
            settings.Batch, _logger, _time, cancellationToken,
            _lease is null ? null : VerifyHolderAsync);
        SagasLog.RouterStarted(_logger, _stream, config.DurableName!);
        var backoff = MinBackoff;
        // One batch may be in flight while the next one's first pass goes out: the last PubAcks of a batch, and the
        // second pass of what waited for an earlier event of its instance, come in meanwhile rather than hold the router.
        // What a former run of this router left in flight (it ended by an error) was never acked: it comes again.
        _lastOf.Clear();
        _probing = true;
        Flight? inFlight = null;
        while (true)
        {
            if (inFlight is null)
            {
                if (reading.IsCancellationRequested)
                {
                    break;
                }
                List<JetStreamMessage> waited;
                try
                {
                    waited = await batcher.ReadBatchAsync(settings.Batch, reading.Token);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                inFlight = await PublishAsync(waited, cancellationToken);
            }
            // The next batch only if it is at hand (with nothing more, or draining, the one in flight is settled at
            // once), and the one in flight is not failing already.
            var batch = !inFlight.Holding && !reading.IsCancellationRequested ? batcher.TryReadBatch(settings.Batch) : null;
            var next = batch is null ? null : await PublishAsync(batch, cancellationToken);
            if (await FinishAsync(inFlight, cancellationToken))
            {
                backoff = MinBackoff;
                inFlight = next;
                continue;
            }
            inFlight = null;
            if (next is not null)
            {
                // Published after the failed message, so routed again after it (what of it the inbox stored carries
                // the same Nats-Msg-Id when it is published again).
                await GiveBackAsync(next, cancellationToken);
            }
            // Route the failed message again, and what came after it, once the inbox had time to come back (a leader
            // election, a restart): retrying at once would only fail again.
            batcher.Restart();
            try
            {
                await Task.Delay(backoff, _time, reading.Token);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            backoff = TimeSpan.FromMilliseconds(Math.Min(backoff.TotalMilliseconds * 2, MaxBackoff.TotalMilliseconds));
        }
    }

    /// <summary>Settles a batch in flight; when it was routed whole, moves the resume point past it.</summary>
    internal async Task<bool> FinishAsync(Flight flight, CancellationToken cancellationToken)
    {
        if (!await SettleAsync(flight, cancellationToken))
        {
            return false;
        }
        // Everything up to here is in the inbox (or quarantined), whatever became of the acks.
        Advance(flight.Items[^1].Msg);
        SagasTelemetry.Routed.Add(flight.Items.Count, new KeyValuePair<string, object?>(SagasTelemetry.StreamTag, _stream));
        return true;
    }

    /// <summary>
    /// The first trigger sequence of an attach: past what was routed and past the consumer's ack
    /// floor. The stream's creation time says whether what was routed is of this stream: one
    /// deleted and created again starts over, and is routed from its start.
    /// </summary>
    private async ValueTask<ulong> ResumeAtAsync(CancellationToken cancellationToken)
    {
        var created = (await _js.GetStreamAsync(_stream, cancellationToken: cancellationToken)).Info.Created;
        var floor = await MessageBatcher.AckFloorAsync(_js, _stream, _consumer, cancellationToken) + 1;
        lock (_progress)
        {
            if (_formerFloor.Created == created)
            {
                floor = Math.Max(floor, _formerFloor.Sequence + 1);
            }
            if (_streamCreated == default)
            {
                if (_lease?.Record is { Checkpoint: > 0 } record)
                {
                    if (record.StreamCreatedMs == created.ToUnixTimeMilliseconds())
                    {
                        _resumeAt = Math.Max(_resumeAt, (long)record.Checkpoint + 1);
                    }
                    else
                    {
                        SagasLog.RouterCheckpointIgnored(_logger, _stream, record.Checkpoint);
                    }
                }
            }
            else if (_streamCreated != created)
            {
                SagasLog.RouterCheckpointIgnored(_logger, _stream, (ulong)Math.Max(_resumeAt - 1, 0));
                _resumeAt = 0;
            }
            _streamCreated = created;
            _resumeAt = Math.Max(_resumeAt, (long)floor);
            Report();
            return (ulong)_resumeAt;
        }
    }

    /// <summary>
    /// Runs after each attach of the consumer: a former holder that re-created its consumer after another took the
    /// stream finds out here, removes it and stops before pulling anything.
    /// </summary>
    private async ValueTask VerifyHolderAsync(CancellationToken cancellationToken)
    {
        if (await _lease!.VerifyAsync(cancellationToken))
        {
            return;
        }
        try
        {
            await _js.DeleteConsumerAsync(_stream, _consumer, CancellationToken.None);
        }
        catch (Exception ex) when (ex is NatsException or TimeoutException)
        {
            // the new holder deletes it
        }
        throw new OperationCanceledException(_lease.Lost);
    }

    /// <summary>
    /// Deletes the consumers of the lease's former holders (and the one name every router shared before consumers
    /// had epochs), remembering how far each had acked. From here on no former holder can pull from this stream's
    /// router consumers or ack in them; an ack of this holder's, which acknowledges everything before it, can only
    /// cover messages delivered to this holder. Without a lease there is one router, reading the name without epoch.
    /// </summary>
    private async Task RetireFormerConsumersAsync(CancellationToken cancellationToken)
    {
        if (_lease is null)
        {
            return;
        }
        // Only while the lease is this router's: one taken over meanwhile must not delete its new holder's consumer.
        if (!await _lease.VerifyAsync(cancellationToken))
        {
            throw new OperationCanceledException(_lease.Lost);
        }
        // Consumers go with their stream: these belong to the stream created at this time.
        var created = (await _js.GetStreamAsync(_stream, cancellationToken: cancellationToken)).Info.Created;
        foreach (var name in await Ownership.EpochConsumers.FormerAsync(_js, _stream, _options.RouterConsumer(_stream), _lease.Epoch, cancellationToken))
        {
            try
            {
                // Read before the delete, and kept even if the delete's reply is lost: a holder still acking may go a
                // little further, which is routed again and dropped as a duplicate (inbox Nats-Msg-Id, dedupe
                // markers), never skipped.
                var floor = (await _js.GetConsumerAsync(_stream, name, cancellationToken)).Info.AckFloor.StreamSeq;
                lock (_progress)
                {
                    _formerFloor = (_formerFloor.Created == created ? Math.Max(_formerFloor.Sequence, floor) : floor, created);
                }
                await _js.DeleteConsumerAsync(_stream, name, cancellationToken);
                SagasLog.RouterConsumerRetired(_logger, _stream, name, floor);
            }
            catch (NatsJSApiException ex) when (ex.Error.Code == 404)
            {
                // gone already
            }
        }
    }

    /// <summary>
    /// Moves the resume point past a routed batch's last message, unless that message is of a
    /// stream since deleted and created again (stored before it was created): its sequence says
    /// nothing of the new stream's.
    /// </summary>
    private void Advance(JetStreamMessage last)
    {
        if (Delivery.Of(last) is not { } delivery)
        {
            return;
        }
        lock (_progress)
        {
            if (delivery.Timestamp >= _streamCreated)
            {
                _resumeAt = Math.Max(_resumeAt, (long)delivery.StreamSequence + 1);
                Report();
            }
        }
    }

    /// <summary>Tells the lease how far this stream is routed (under the lock, so reports keep their order).</summary>
    private void Report() =>
        _lease?.ReportRouted(new Ownership.RouterProgress((ulong)Math.Max(_resumeAt - 1, 0), _streamCreated.ToUnixTimeMilliseconds()));

    private static readonly TimeSpan MinBackoff = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(5);

    /// <summary>A batch on its way: published in its first pass; its second pass, PubAcks and acks to come.</summary>
    internal sealed class Flight(int count, ManifestSet manifests)
    {
        internal List<Routed> Items { get; } = new(count);

        /// <summary>The manifests the batch is routed by, from its first pass to its second.</summary>
        internal ManifestSet Manifests { get; } = manifests;

        /// <summary>Its messages left for the second pass, in order.</summary>
        internal List<Routed> Waiting { get; } = [];

        /// <summary>
        /// Set once a message is held back (an earlier publish of one of its instances was not stored, or the probe was
        /// not): it and every later one are NAKed, not routed.
        /// </summary>
        public bool Holding { get; set; }
    }

    internal sealed class Routed
    {
        private readonly Delivery? _delivery;
        private readonly string? _stream;

        /// <summary>A message of the batch, its delivery read once for all that follows.</summary>
        public Routed(JetStreamMessage msg, Flight flight)
        {
            Msg = msg;
            Flight = flight;
            _delivery = Delivery.Of(msg, out _stream);
        }

        public JetStreamMessage Msg { get; }

        /// <summary>The batch it came in.</summary>
        public Flight Flight { get; }

        /// <summary>Its sequence in the routed stream, which counts its failed attempts.</summary>
        public ulong Sequence => _delivery?.StreamSequence ?? 0;

        /// <summary>Where it was read from; throws for a message without a readable JetStream delivery.</summary>
        public MessageOrigin Origin => NatsMessages.Origin(Msg, _delivery, _stream);
        /// <summary>Its inbox publishes: usually one (one saga takes it).</summary>
        public List<PendingPubAck> Futures { get; } = new(1);
        public int Quarantines { get; set; }

        /// <summary>Its quarantine records; written only if the message is settled in this batch, not NAKed. Made by the first.</summary>
        public WriteBatch Records => _records ??= new();

        public ArraySegment<WriteOp> RecordOps => _records?.Ops ?? ArraySegment<WriteOp>.Empty;

        private WriteBatch? _records;

        /// <summary>Nobody could take it: terminate. (Routed to some sagas and quarantined for others: ack.)</summary>
        public bool Terminate => Quarantines > 0 && Futures.Count == 0;

        /// <summary>Its PubAcks were read already (by a later event of one of its instances, or the probe): not read again.</summary>
        public bool Read { get; set; }

        /// <summary>Held back behind a publish that was not stored: never published, it goes back (NAK).</summary>
        public bool Held { get; set; }

        /// <summary>
        /// Set when it is left for after the batch's other messages: the earlier events of its instances that had no
        /// PubAck yet, or were left themselves.
        /// </summary>
        public List<Routed>? After { get; set; }

        /// <summary>Whether all its PubAcks are in (or read): reading them does not wait.</summary>
        public bool PubAcksIn
        {
            get
            {
                if (Read)
                {
                    return true;
                }
                foreach (var future in Futures)
                {
                    if (!future.IsCompleted)
                    {
                        return false;
                    }
                }
                return true;
            }
        }
        public string? PublishError { get; private set; }

        /// <summary>
        /// Some publish failed for a reason that is not the message's (no answer, no stream leader,
        /// the connection lost: <see cref="PubAcks.IsTransient"/>): it is retried for as long as that
        /// lasts, never counted toward quarantine. Anything else (a refusal, what the client would
        /// not send) is counted.
        /// </summary>
        public bool Transient { get; private set; }

        public void Failed(Exception ex)
        {
            PublishError ??= ex.Message;
            Transient |= PubAcks.IsTransient(ex);
        }

        public void Settled() => PublishError = null;
    }

    /// <summary>Routes a whole batch. Returns false when a message could not be routed: it and everything after it were NAKed.</summary>
    internal async Task<bool> RouteBatchAsync(List<JetStreamMessage> batch, CancellationToken cancellationToken) =>
        await SettleAsync(await PublishAsync(batch, cancellationToken), cancellationToken);

    /// <summary>
    /// A batch's first pass: each message is published, or left for the second pass when an earlier event of one of
    /// its instances (in this batch or the one still in flight) has no PubAck yet, or held back.
    /// </summary>
    internal async Task<Flight> PublishAsync(List<JetStreamMessage> batch, CancellationToken cancellationToken)
    {
        var flight = new Flight(batch.Count, _manifests());
        foreach (var msg in batch)
        {
            var item = new Routed(msg, flight);
            flight.Items.Add(item);
            await TakeTurnAsync(flight, item, cancellationToken);
        }
        return flight;
    }

    /// <summary>
    /// A batch's second pass, then its PubAcks, quarantine records and acks. Returns false when a message could not be
    /// routed: it and everything after it were NAKed.
    /// </summary>
    private async Task<bool> SettleAsync(Flight flight, CancellationToken cancellationToken)
    {
        // In order, what waited for an earlier event of its instance: now it waits for that one's PubAcks.
        foreach (var item in flight.Waiting)
        {
            await TakeTurnAsync(flight, item, cancellationToken);
        }
        var routed = flight.Items;
        foreach (var item in routed)
        {
            await ReadPubAcksAsync(item, cancellationToken);
        }
        var settled = await AckAsync(routed, cancellationToken);
        if (!settled)
        {
            _lastOf.Clear();
            return false;
        }
        // Stored: a later event of these instances need not wait for them. (A batch published meanwhile has replaced
        // the entries of its own instances. Removing while enumerating is allowed for a Dictionary.)
        foreach (var (instance, last) in _lastOf)
        {
            if (last.Flight == flight)
            {
                _lastOf.Remove(instance);
            }
        }
        return true;
    }

    /// <summary>
    /// Sends back (NAK) a batch published after one that failed: its own publishes are let finish, and what of it
    /// the inbox stored is dropped as a duplicate when the batch is routed again.
    /// </summary>
    internal async Task GiveBackAsync(Flight flight, CancellationToken cancellationToken)
    {
        foreach (var item in flight.Items)
        {
            await item.Msg.NakAsync(cancellationToken: cancellationToken).QuietlyAsync();
        }
        // Nothing waits on these PubAcks: read, they give their waits back to the pipeline.
        foreach (var item in flight.Items)
        {
            await ReadPubAcksAsync(item, cancellationToken);
        }
        _lastOf.Clear();
    }

    /// <summary>Quarantines, acks and NAKs a batch whose PubAcks are all read; false when it was not routed whole.</summary>
    private async Task<bool> AckAsync(List<Routed> routed, CancellationToken cancellationToken)
    {
        // Only failures that are the message's count: one the inbox will never take is quarantined
        // after RUNNER_MAX_DELIVER of them. An inbox that does not answer (no leader, NATS
        // restarting) is waited out, however long: its messages are not at fault, and must not
        // leave the flow.
        var maxDeliver = (ulong)_options.JetStream.MaxDeliver;
        foreach (var item in routed.Where(r => r.PublishError is not null && !r.Transient))
        {
            var attempts = _attempts.GetValueOrDefault(item.Sequence) + 1;
            _attempts[item.Sequence] = attempts;
            if (attempts < maxDeliver)
            {
                continue;
            }
            _attempts.Remove(item.Sequence);
            Quarantine(item, QuarantineRecords.MaxDeliverExceeded, $"the inbox refused the publish {attempts} times: {item.PublishError}");
            item.Futures.Clear();
            item.Settled();
        }

        // Keep order: once one message fails, it and every later one go back (NAK) and the
        // consumer restarts from the ack floor, so nothing overtakes the failed message. Their
        // quarantine records wait for that retry: writing them now would write them again then.
        // A message held back goes back too, even when the failure it was held behind was quarantined.
        var failedAt = routed.FindIndex(r => r.PublishError is not null || r.Held);
        var quarantine = new WriteBatch();
        foreach (var item in failedAt < 0 ? routed : routed.Take(failedAt))
        {
            foreach (var op in item.RecordOps)
            {
                quarantine.Put(op.Space, op.Key, op.Value!.Value);
            }
        }
        if (quarantine.Count > 0)
        {
            try
            {
                await _store.Writer.CommitAsync(quarantine, cancellationToken);
            }
            catch (StorageException ex)
            {
                // Could not record why: leave every message of the batch unacknowledged.
                foreach (var item in routed)
                {
                    await item.Msg.NakAsync(cancellationToken: cancellationToken).QuietlyAsync();
                }
                SagasLog.RoutePublishFailed(_logger, _stream, routed[0].Sequence, routed.Count - 1, $"quarantine write failed: {ex.Message}");
                return false;
            }
        }

        // The consumer acks all: a TERM or an ack of a message also acknowledges every message before it, so the
        // quarantined ones are terminated (for their advisory) and of the rest only the last settled one is acked.
        var settledCount = failedAt < 0 ? routed.Count : failedAt;
        for (var index = 0; index < routed.Count; index++)
        {
            var item = routed[index];
            if (index >= settledCount)
            {
                if (index == failedAt)
                {
                    SagasLog.RoutePublishFailed(_logger, _stream, item.Sequence, routed.Count - failedAt - 1, item.PublishError ?? "held back behind a publish the inbox did not store");
                }
                await item.Msg.NakAsync(cancellationToken: cancellationToken).QuietlyAsync();
            }
            else if (item.Terminate)
            {
                await item.Msg.AckTerminateAsync(cancellationToken: cancellationToken).QuietlyAsync();
            }
            else if (index == settledCount - 1)
            {
                await item.Msg.AckAsync(cancellationToken: cancellationToken).QuietlyAsync();
            }
            if (failedAt < 0 || index < failedAt)
            {
                _attempts.Remove(item.Sequence);
            }
        }
        _probing |= failedAt >= 0;
        return failedAt < 0;
    }

    /// <summary>
    /// Routes one message (in the batch's first pass, or in the second when it waited), or holds it back, or leaves it
    /// for the second pass. Once one is held back, so is every later one of the batch.
    /// </summary>
    private async ValueTask TakeTurnAsync(Flight flight, Routed item, CancellationToken cancellationToken)
    {
        if (flight.Holding)
        {
            item.Held = true;
            return;
        }
        switch (await TryRouteAsync(item, flight.Manifests, cancellationToken))
        {
            case Turn.Held:
                item.Held = flight.Holding = true;
                return;
            case Turn.Wait:
                flight.Waiting.Add(item);
                return;
        }
        if (_probing && (item.Futures.Count > 0 || item.PublishError is not null))
        {
            // The first publish since a failed batch, or at start: nothing else goes out until the inbox has stored
            // it, so an inbox that is still not answering is sent one message per attempt, not the whole batch.
            await ReadPubAcksAsync(item, cancellationToken);
            _probing = item.PublishError is not null;
            flight.Holding = _probing;
        }
    }

    /// <summary>What becomes of a message whose instances may have earlier events in flight.</summary>
    private enum Turn
    {
        /// <summary>Routed (or quarantined, or nothing to route).</summary>
        Done,

        /// <summary>Left for the batch's second pass: nothing done yet.</summary>
        Wait,

        /// <summary>An earlier event of one of its instances was not stored: nothing done, held back.</summary>
        Held,
    }

    /// <summary>
    /// Routes one message, once every earlier publish in flight to one of its instances is stored; or, when one was
    /// not, or in the first pass is not known to be yet, does nothing (no publish, no quarantine record).
    /// </summary>
    private async ValueTask<Turn> TryRouteAsync(Routed item, ManifestSet manifests, CancellationToken cancellationToken)
    {
        try
        {
            return await RouteOneAsync(item, manifests, cancellationToken);
        }
        catch (Exception ex) when (ex is NatsException or TimeoutException)
        {
            item.Failed(ex);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
#pragma warning disable CA1031 // A message that breaks the router in an unforeseen way is quarantined, not allowed to stop the stream.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            // Publishes already started for other sagas still settle (awaited, disposed).
            Quarantine(item, QuarantineRecords.RouterError, $"{ex.GetType().Name}: {ex.Message}");
        }
        return Turn.Done;
    }

    /// <summary>Waits for a message's inbox PubAcks (once); a publish that was not stored marks it failed.</summary>
    private static async ValueTask ReadPubAcksAsync(Routed item, CancellationToken cancellationToken)
    {
        if (item.Read)
        {
            return;
        }
        item.Read = true;
        foreach (var future in item.Futures)
        {
            try
            {
                var ack = await future.GetResponseAsync(cancellationToken);
                ack.EnsureStored();
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
#pragma warning disable CA1031 // Whatever reading a PubAck throws marks this message failed: it must not land on a later message that reads it.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                // Read on behalf of a later event of its instance too: a PubAck that could not be read says the
                // publish is not known to be stored, and the message it belongs to is the one that goes back.
                item.Failed(ex);
            }
        }
    }

    private async ValueTask<Turn> RouteOneAsync(Routed item, ManifestSet manifests, CancellationToken cancellationToken)
    {
        var msg = item.Msg;
        var origin = item.Origin;
        var headers = msg.Headers;
        manifests.Match(_stream, msg.Subject, ref _matches);
        var matches = _matches is { Count: > 0 } ? _matches : null;
        var mayRouteImplicitly = ImplicitRoutes.MayApply(manifests, _stream, msg.Subject);
        if (matches is null && !mayRouteImplicitly)
        {
            return Turn.Done;
        }
        if (!CloudEventDecoder.TryDecode(msg.Data, headers, origin, _options.MaxEventBytes, out var evt, out var error))
        {
            Quarantine(item, error!.Code, error.Message);
            return Turn.Done;
        }

        // Once per saga. A saga's own reply (its timer, or the result of a command it sent) goes by
        // the correlation it carries even when a declared trigger also matches: a broad trigger
        // such as workflow.evt.*.> with another key expression would send it to the wrong instance.
        var routes = _routes;
        routes.Clear();
        var reply = mayRouteImplicitly ? ImplicitRoutes.Find(manifests, msg.Subject, evt!) : null;
        if (matches is not null)
        {
            foreach (var (saga, trigger) in matches)
            {
                if (reply is null || !string.Equals(saga.Name, reply.Value.Saga.Name, StringComparison.Ordinal))
                {
                    routes.Add((saga, trigger.Correlation.Evaluate(evt!), trigger.Correlation.Text));
                }
            }
        }
        if (reply is { } implicitRoute)
        {
            routes.Add(implicitRoute);
        }
        var turn = await TurnOfAsync(item, evt!.Tenant, routes, cancellationToken);
        if (turn != Turn.Done)
        {
            return turn;
        }

        var bodyWriter = _body;
        bodyWriter.ResetWrittenCount();
        CloudEventEncoder.WriteStructuredJson(bodyWriter, evt!);
        var body = bodyWriter.WrittenMemory;
        headers.TryGetValue(EventHeaders.TraceParent, out var inboundTrace);
        using var span = Tracing.Start(SagasTelemetry.Source, s_routeSpans, _stream, System.Diagnostics.ActivityKind.Consumer, inboundTrace);
        span?.SetTag("runner.tenant", evt!.Tenant);
        span?.SetTag("messaging.destination.name", msg.Subject);
        // An event that comes without a trace starts one here, whether or not spans are recorded.
        var traceParent = Tracing.StartingTraceParent(span, inboundTrace, out var newTrace);
        using var scope = LogScope.For(_logger, evt!.Tenant, null, null, traceParent: traceParent);
        foreach (var (saga, key, correlation) in routes)
        {
            if (key is null || !StoreKeys.IsValidComponent(key))
            {
                Quarantine(item, QuarantineRecords.NoCorrelationKey,
                    key is null ? $"correlation '{correlation}' found no value" : $"correlation value from '{correlation}' is not a valid key",
                    saga.Name, evt!.Tenant);
                continue;
            }
            var instance = new InstanceId(new TenantId(evt!.Tenant), new SagaName(saga.Name), new CorrelationKey(key));
            var partition = Partitioner.PartitionOf(instance, _options.Partitions);
            var outHeaders = _outHeaders;
            outHeaders.Clear();
            for (var h = 0; h < headers.Length; h++)
            {
                var name = headers.NameAt(h);
                if (PassesOn(name, newTrace))
                {
                    outHeaders[name] = headers.ValueAt(h);
                }
            }
            SetInboxHeaders(outHeaders, traceParent, evt.Tenant, saga.Name, key, _partitionNames[partition.Value], origin);
            var msgId = $"{origin.Stream}:{origin.Sequence}:{saga.Name}";
            var future = await _publisher.PublishAsync(_inboxes[partition.Value], body, msgId, outHeaders, cancellationToken);
            item.Futures.Add(future);
        }
        if (bodyWriter.Capacity > BodyRoom * 16)
        {
            _body = new ArrayBufferWriter<byte>(BodyRoom);
        }
        return Turn.Done;
    }

    /// <summary>
    /// Runner's own headers on an event's inbox copy, beside the event's own: its trace, tenant, saga, key and
    /// partition, and where it was read. NATS header values are ASCII on the wire: Runner's own carry
    /// percent-encoded UTF-8. The warm-up's events get theirs here too (<see cref="Partitions.HotPathWarmUp"/>).
    /// </summary>
    internal static void SetInboxHeaders(NatsHeaders headers, string traceParent, string tenant, string saga, string key, string partition, MessageOrigin origin)
    {
        headers[EventHeaders.TraceParent] = traceParent;
        headers[EventHeaders.TenantId] = tenant;
        headers[EventHeaders.Saga] = EventHeaders.Encode(saga);
        headers[EventHeaders.Key] = EventHeaders.Encode(key);
        headers[EventHeaders.Partition] = partition;
        headers[EventHeaders.OriginStream] = EventHeaders.Encode(origin.Stream);
        headers[EventHeaders.OriginSequence] = origin.Sequence.ToString(System.Globalization.CultureInfo.InvariantCulture);
        headers[EventHeaders.OriginSubject] = EventHeaders.Encode(origin.Subject);
        headers[EventHeaders.OriginTime] = origin.Timestamp.ToUnixTimeMilliseconds().ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Whether the message's publishes may go out: only once the inbox has stored the earlier events of its instances
    /// in this batch and in the one still in flight. Without that an event could be stored while an earlier one of its instance is not (an inbox whose
    /// leader changes between the two publishes, a connection lost after the earlier one was written while the later
    /// one goes out on the next), and the earlier one, routed again, would land behind it: one key's events out of
    /// order. In the first pass an earlier event whose PubAcks are not in yet, or that waits itself, makes the message
    /// wait for the second pass, so events of other instances are not held up behind it; in the second pass it waits
    /// for those PubAcks. An earlier event that was not stored holds the message back.
    /// </summary>
    private async ValueTask<Turn> TurnOfAsync(Routed item, string tenant, List<(LoadedSaga Saga, string? Key, string Correlation)> routes,
        CancellationToken cancellationToken)
    {
        if (item.After is { } after)
        {
            // The second pass (only a message left comes again): its earlier events have had their turns.
            foreach (var earlier in after)
            {
                if (!await StoredAsync(earlier, cancellationToken))
                {
                    return Turn.Held;
                }
            }
            return Turn.Done;
        }
        List<Routed>? waitFor = null;
        foreach (var (saga, key, _) in routes)
        {
            if (key is null)
            {
                continue;
            }
            var instance = HashCode.Combine(tenant, saga.Name, key);
            if (_lastOf.TryGetValue(instance, out var earlier) && earlier != item)
            {
                if (earlier.After is not null || !earlier.PubAcksIn)
                {
                    (waitFor ??= new(1)).Add(earlier);
                }
                else if (!await StoredAsync(earlier, cancellationToken))
                {
                    return Turn.Held;
                }
            }
            _lastOf[instance] = item;
        }
        item.After = waitFor;
        return waitFor is null ? Turn.Done : Turn.Wait;
    }

    /// <summary>Whether an earlier message is stored, reading its PubAcks if it has to: one held back never was.</summary>
    private static async ValueTask<bool> StoredAsync(Routed earlier, CancellationToken cancellationToken)
    {
        if (earlier.Held)
        {
            return false;
        }
        await ReadPubAcksAsync(earlier, cancellationToken);
        return earlier.PublishError is null;
    }

    /// <summary>
    /// Whether a trigger's header goes on to the inbox: not Runner's own, not a CloudEvents attribute, a
    /// name NATS can carry; and not its tracestate when the trace was started here (it belongs to no trace sent on).
    /// </summary>
    private static bool PassesOn(string name, bool newTrace) =>
        !EventHeaders.IsInternal(name) && !name.StartsWith(EventHeaders.CloudEventPrefix, StringComparison.OrdinalIgnoreCase)
        && EventHeaders.IsWritableName(name) && !(newTrace && string.Equals(name, EventHeaders.TraceState, StringComparison.OrdinalIgnoreCase));

    private void Quarantine(Routed item, string reason, string detail, string? saga = null, string? tenant = null)
    {
        var origin = QuarantineRecords.Add(item.Records, item.Msg, Stage, reason, detail, _options.QuarantinePayloadBytes, _time, saga, tenant);
        SagasLog.Quarantined(_logger, origin.Stream, origin.Sequence, origin.Subject, Stage, reason, detail, tenant, saga, null);
        item.Quarantines++;
    }
}
