using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace Runner.Messaging;

/// <summary>
/// JetStream publishes with many PubAcks outstanding, in order, over one reply subscription per
/// connection: each message goes out with the reply subject <c>{inbox}.{n}</c> and its PubAck is
/// matched by <c>n</c>. The client's <c>PublishConcurrentAsync</c> does the same but subscribes
/// (and unsubscribes) a reply subject per message, which cost the router and the relay more CPU
/// than the rest of the hop. Sending is awaited before the next message is sent, so messages reach
/// the server in the order they were published, as before. A PubAck that does not come within the
/// connection's request timeout fails its publish with a <see cref="TimeoutException"/>: one timer per
/// pipeline looks for them a few times per timeout, so no publish needs a timer of its own.
/// </summary>
internal sealed class PubAckPipeline
{
    private static readonly ConditionalWeakTable<INatsConnection, PubAckPipeline> s_pipelines = [];

    private readonly INatsConnection _connection;
    private readonly string _prefix;
    private readonly WaitingTable _waiting = new();
    private readonly ConcurrentQueue<PubAckWait> _pool = new();
    private readonly PubAckReader _reader = new();
    private int _pooled;
    private readonly SemaphoreSlim _starting = new(1, 1);
    // The reply subscription, set once it is written to the server. The client holds subscriptions weakly (one
    // nobody references is unsubscribed when collected): this one is referenced here, by the pipeline that lives
    // as long as its connection.
    private Replies? _replies;

    /// <summary>Publishes may go out: the reply subscription is written and has not ended (derived, so an end can never be overwritten).</summary>
    private bool Started => Volatile.Read(ref _replies) is { Over: false };
    private long _next;

    private PubAckPipeline(INatsConnection connection)
    {
        _connection = connection;
        // Under the configured inbox prefix (what permissions allow replies to), but not under the connection's own
        // muxed inbox (NewInbox), whose messages the client routes to its request-reply handler alone.
        _prefix = connection.Opts.InboxPrefix + ".pub" + Guid.NewGuid().ToString("N");
        Sweeper.Start(this);
    }

    /// <summary>The pipeline of <paramref name="connection"/> (one per connection, shared by every publisher on it).</summary>
    public static PubAckPipeline For(INatsConnection connection) => s_pipelines.GetValue(connection, c => new PubAckPipeline(c));

    /// <summary>How long a PubAck is waited for: the connection's request timeout.</summary>
    public TimeSpan Timeout => _connection.Opts.RequestTimeout;

    /// <summary>PubAcks still outstanding (for tests: none is left behind once every publish is settled).</summary>
    internal int Outstanding => _waiting.Count;

    /// <summary>
    /// Sends one message (returns once it is written to the connection, so <paramref name="body"/> may be
    /// reused then) and returns its PubAck to come. <paramref name="msgId"/> becomes <c>Nats-Msg-Id</c>.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<PendingPubAck> PublishAsync(string subject, ReadOnlyMemory<byte> body, string? msgId, NatsHeaders? headers, CancellationToken cancellationToken)
    {
        if (!Started)
        {
            await StartAsync(cancellationToken);
        }
        if (msgId is not null)
        {
            headers ??= [];
            headers["Nats-Msg-Id"] = msgId;
        }
        var id = Interlocked.Increment(ref _next);
        var reply = Rent(id);
        var version = reply.Version;
        _waiting.Add(id, new Waiting(reply, NotSent));
        try
        {
            await _connection.PublishAsync(subject, body, headers, string.Create(CultureInfo.InvariantCulture, $"{_prefix}.{id}"), cancellationToken: cancellationToken);
        }
        catch
        {
            _waiting.TryRemove(id, out _);
            throw;
        }
        // The timeout counts from here, as a request's does: a send held up (a reconnect, a full buffer)
        // is the sender's wait, not the PubAck's. Unless the PubAck is already in.
        _waiting.MarkSent(id, Stopwatch.GetTimestamp());
        return new PendingPubAck(reply, version);
    }

    /// <summary>The waiter gave up (its token): the wait ends with that cancellation, unless its PubAck (or a timeout) got there first.</summary>
    internal void Cancel(PubAckWait wait, CancellationToken token)
    {
        if (_waiting.TryRemove(wait.Id, out var waiting))
        {
            waiting.Reply.SetException(new OperationCanceledException(token));
        }
    }

    private PubAckWait Rent(long id)
    {
        if (!_pool.TryDequeue(out var wait))
        {
            wait = new PubAckWait(this);
        }
        else
        {
            Interlocked.Decrement(ref _pooled);
        }
        wait.Id = id;
        return wait;
    }

    /// <summary>
    /// Takes back a wait whose result its one reader has read (after which nothing else can reach it:
    /// whoever completes a wait first removes it from the table, and the reader's cancellation is unregistered).
    /// </summary>
    internal void Return(PubAckWait wait)
    {
        if (Interlocked.Increment(ref _pooled) > MaxPooled)
        {
            Interlocked.Decrement(ref _pooled);
            return;
        }
        wait.Reset();
        _pool.Enqueue(wait);
    }

    /// <summary>Waits kept for reuse at most: more than are ever outstanding at once in a busy process.</summary>
    private const int MaxPooled = 4096;

    /// <summary>Starts something without the caller's execution context (its span and other async locals).</summary>
    private static T Unflowed<T>(Func<T> start)
    {
        if (ExecutionContext.IsFlowSuppressed())
        {
            return start();
        }
        using (ExecutionContext.SuppressFlow())
        {
            return start();
        }
    }

    /// <summary><see cref="Waiting.SentAt"/> of a message still being sent: not timed yet.</summary>
    private const long NotSent = long.MinValue;

    private readonly record struct Waiting(PubAckWait Reply, long SentAt);

    /// <summary>
    /// The publishes waiting for their PubAck, by id: a table under a lock, whose entries are reused
    /// (a concurrent dictionary allocates a node for each add and for each changed value). Whoever
    /// removes an entry settles it, outside the lock.
    /// </summary>
    private sealed class WaitingTable
    {
        private readonly Dictionary<long, Waiting> _items = [];

        public int Count
        {
            get
            {
                lock (_items)
                {
                    return _items.Count;
                }
            }
        }

        public void Add(long id, Waiting waiting)
        {
            lock (_items)
            {
                _items.Add(id, waiting);
            }
        }

        public bool TryRemove(long id, out Waiting waiting)
        {
            lock (_items)
            {
                return _items.Remove(id, out waiting);
            }
        }

        /// <summary>Starts the timeout of a publish now written, unless it is settled already.</summary>
        public void MarkSent(long id, long sentAt)
        {
            lock (_items)
            {
                ref var waiting = ref CollectionsMarshal.GetValueRefOrNullRef(_items, id);
                if (!Unsafe.IsNullRef(ref waiting))
                {
                    waiting = waiting with { SentAt = sentAt };
                }
            }
        }

        /// <summary>Removes and returns the publishes sent before <paramref name="bound"/>; null when there is none.</summary>
        public List<Waiting>? TakeSentBefore(long bound)
        {
            List<Waiting>? taken = null;
            lock (_items)
            {
                foreach (var (id, waiting) in _items)
                {
                    if (waiting.SentAt != NotSent && waiting.SentAt < bound)
                    {
                        (taken ??= []).Add(waiting);
                        _items.Remove(id);
                    }
                }
            }
            return taken;
        }

        /// <summary>Removes and returns every publish still waiting; null when there is none.</summary>
        public List<Waiting>? TakeAll()
        {
            lock (_items)
            {
                if (_items.Count == 0)
                {
                    return null;
                }
                var taken = new List<Waiting>(_items.Values);
                _items.Clear();
                return taken;
            }
        }
    }

    /// <summary>
    /// Fails every publish whose PubAck is overdue (one lost in a reconnect never comes), and drops it:
    /// nobody is left waiting past the timeout, and a publisher that stopped leaves nothing behind.
    /// </summary>
    private void Sweep()
    {
        var limit = (long)(Timeout.TotalSeconds * Stopwatch.Frequency);
        if (_waiting.TakeSentBefore(Stopwatch.GetTimestamp() - limit) is { } overdue)
        {
            foreach (var waiting in overdue)
            {
                waiting.Reply.SetException(new TimeoutException($"no PubAck within the request timeout ({Timeout.TotalSeconds:F0} s)"));
            }
        }
    }

    /// <summary>
    /// The pipeline's timer: every quarter of the timeout (so a PubAck fails between one and one and a
    /// quarter timeouts after its publish), for as long as the pipeline lives. It holds the pipeline
    /// weakly, so a connection that is gone takes its pipeline and this timer with it.
    /// </summary>
    private sealed class Sweeper
    {
        private readonly WeakReference<PubAckPipeline> _pipeline;
        private readonly Timer _timer;

        private Sweeper(PubAckPipeline pipeline)
        {
            _pipeline = new WeakReference<PubAckPipeline>(pipeline);
            var period = TimeSpan.FromTicks(Math.Max(TimeSpan.FromMilliseconds(50).Ticks, pipeline.Timeout.Ticks / 4));
            // Not under the execution context of whichever publish made the pipeline (its span and
            // other async locals would live as long as the connection).
            _timer = Unflowed(() => new Timer(static state => ((Sweeper)state!).Tick(), this, period, period));
        }

        public static void Start(PubAckPipeline pipeline) => _ = new Sweeper(pipeline);

        private void Tick()
        {
            if (_pipeline.TryGetTarget(out var pipeline))
            {
                pipeline.Sweep();
            }
            else
            {
                _timer.Dispose();
            }
        }
    }

    private async ValueTask StartAsync(CancellationToken cancellationToken)
    {
        await _starting.WaitAsync(cancellationToken);
        try
        {
            if (Started)
            {
                return;
            }
            // Not the caller's token: the client ends a subscription when the token it was made with is
            // cancelled, and this one serves every publisher on the connection, however long each runs.
            // Nor is the wait for it cancelled: a subscription made after its caller gave up would be left unread.
            var replies = new Replies(this, _connection, _prefix + ".*");
            await _connection.AddSubAsync(replies, CancellationToken.None);
            // Only now: the subscription is written to the server before any publish that skips this start.
            Volatile.Write(ref _replies, replies);
        }
        finally
        {
            _starting.Release();
        }
    }

    /// <summary>
    /// Ended (the connection is going away, or the subscription failed): the next publish subscribes
    /// again, and whoever still waits is told now rather than at its timeout.
    /// </summary>
    private void Ended()
    {
        if (_waiting.TakeAll() is { } ended)
        {
            foreach (var waiting in ended)
            {
                waiting.Reply.SetException(new NatsNoReplyException());
            }
        }
    }

    /// <summary>
    /// Settles the publish a PubAck answers, on the connection's read loop: no message object, no
    /// channel and no reader task between the socket and the publisher (its continuation runs on the
    /// thread pool: a <see cref="PubAckWait"/> runs continuations asynchronously).
    /// </summary>
    private void Settle(string subject, ReadOnlySequence<byte>? headers, in ReadOnlySequence<byte> payload)
    {
        var dot = subject.LastIndexOf('.');
        if (dot < 0 || !long.TryParse(subject.AsSpan(dot + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var id)
            || !_waiting.TryRemove(id, out var waiting))
        {
            return; // a PubAck that came after its publisher gave up on it
        }
        var reply = waiting.Reply;
        if (payload.IsEmpty)
        {
            // A status without a body: 503 when the subject has no stream, anything else is no PubAck.
            reply.SetException(IsNoResponders(headers) ? new NatsNoRespondersException() : new NatsJSPublishNoResponseException());
            return;
        }
        PubAckResponse? ack;
        try
        {
            ack = _reader.Read(payload);
        }
#pragma warning disable CA1031 // Removed from the table above: whatever the bytes did to the reader, its publisher is told.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            reply.SetException(ex);
            return;
        }
        if (ack is null)
        {
            reply.SetException(new NatsJSPublishNoResponseException());
        }
        else
        {
            reply.SetResult(ack);
        }
    }

    /// <summary>The status line of a header block is <c>NATS/1.0 503</c>.</summary>
    private static bool IsNoResponders(ReadOnlySequence<byte>? headers)
    {
        if (headers is not { Length: >= 12 } block)
        {
            return false;
        }
        Span<byte> status = stackalloc byte[4];
        block.Slice(8, 4).CopyTo(status);
        return status.SequenceEqual(" 503"u8);
    }

    /// <summary>
    /// The reply subscription: hands each PubAck's bytes to <see cref="Settle"/> as the client reads
    /// them, and tells the pipeline when it ends.
    /// </summary>
    private sealed class Replies(PubAckPipeline pipeline, INatsConnection connection, string subject)
        : NatsSubBase(connection, connection.SubscriptionManager, subject, queueGroup: null, opts: null)
    {
        protected override ValueTask ReceiveInternalAsync(string subject, string? replyTo, ReadOnlySequence<byte>? headersBuffer, ReadOnlySequence<byte> payloadBuffer)
        {
            pipeline.Settle(subject, headersBuffer, payloadBuffer);
            return ValueTask.CompletedTask;
        }

        /// <summary>Ended (the connection is going away, or the subscription failed): the next publish subscribes again.</summary>
        public bool Over => _over;

        private volatile bool _over;

        // The captured parameter is assigned before the base constructor runs, so this may run from it.
        protected override void TryComplete()
        {
            _over = true;
            pipeline.Ended();
        }
    }
}

/// <summary>A message sent whose PubAck has not been read yet. Read it once.</summary>
internal readonly struct PendingPubAck
{
    private readonly PubAckWait _wait;
    private readonly short _version;

    internal PendingPubAck(PubAckWait wait, short version)
    {
        _wait = wait;
        _version = version;
    }

    /// <summary>Whether its PubAck (or what ended the wait: the timeout, the connection) is in, so reading it does not wait. Before it is read.</summary>
    public bool IsCompleted => _wait.Version != _version || _wait.GetStatus(_version) != System.Threading.Tasks.Sources.ValueTaskSourceStatus.Pending;

    /// <summary>
    /// The PubAck; a <see cref="TimeoutException"/> once the connection's request timeout has passed
    /// since the publish (the server may still have stored the message: publish it again with the same
    /// <c>Nats-Msg-Id</c>).
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<PubAckResponse> GetResponseAsync(CancellationToken cancellationToken)
    {
        var wait = _wait;
        if (wait.Version != _version)
        {
            // Read before (and the wait reused since): touching it would reach another publish's PubAck.
            throw new InvalidOperationException("a PubAck is read once");
        }
        var registration = cancellationToken.CanBeCanceled
            ? cancellationToken.UnsafeRegister(static (state, token) => ((PubAckWait)state!).Pipeline.Cancel((PubAckWait)state!, token), wait)
            : default;
        try
        {
            return await new ValueTask<PubAckResponse>(wait, _version);
        }
        finally
        {
            // Unregistering waits for a cancellation callback already running: after it, nothing touches the wait.
            registration.Dispose();
            wait.Pipeline.Return(wait);
        }
    }
}

/// <summary>
/// One awaited PubAck, reused: completed once (by its PubAck, the timeout sweep, the end of the reply
/// subscription or its reader's cancellation, whichever removes it from the pipeline's table first),
/// read once, then given back to the pipeline.
/// </summary>
internal sealed class PubAckWait(PubAckPipeline pipeline) : IValueTaskSource<PubAckResponse>
{
    private ManualResetValueTaskSourceCore<PubAckResponse> _core = new() { RunContinuationsAsynchronously = true };

    /// <summary>The pipeline whose table and pool it belongs to.</summary>
    public PubAckPipeline Pipeline { get; } = pipeline;

    /// <summary>The publish it waits for now.</summary>
    public long Id { get; set; }

    public short Version => _core.Version;

    /// <summary>Only by whoever removed it from the pipeline's table: so exactly once per use.</summary>
    public void SetResult(PubAckResponse ack) => _core.SetResult(ack);

    /// <inheritdoc cref="SetResult"/>
    public void SetException(Exception exception) => _core.SetException(exception);

    public PubAckResponse GetResult(short token) => _core.GetResult(token);

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    public void Reset() => _core.Reset();
}
