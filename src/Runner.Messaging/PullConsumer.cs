using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using System.Text;
using System.Threading.Channels;
using NATS.Client.Core;

namespace Runner.Messaging;

/// <summary>
/// Pulls from one durable JetStream consumer through a subscription of its own, in place of the
/// client's <c>ConsumeAsync</c> and <c>FetchAsync</c>: each delivery is copied off the connection's
/// read loop as its subject, reply subject, header bytes and body (<see cref="JetStreamMessage"/>),
/// where the client parsed every header into a table of strings, and wrapped each message in three
/// more objects, for every message of every consumer.
/// <para>
/// It asks for at most <c>max</c> messages beyond those given back (taken by the reader, or released
/// by it), with one pull out at a time: the server hands a client's waiting pulls their messages in
/// turn, not oldest first, so with several out no delivery could be counted against the right one.
/// A pull ends when it has delivered all it asked for, or when the server says so on the pull's own
/// reply subject (expired, a new leader, limits); the next goes out once enough room is free (half of
/// <c>max</c>, or one message for a reader that releases its own). While a pull waits the server
/// sends a heartbeat every <c>heartbeat</c>; when nothing has come for two of them the pull is taken
/// as lost and asked again, as it is when the connection opens again. A pull refused for want of a
/// responder (a consumer without a leader for a moment) is asked again after a pause, up to
/// <see cref="MaxNoResponders"/> times in a row; that, a deleted consumer or a refused request end
/// the messages with the server's reason, and the reader attaches again.
/// </para>
/// </summary>
internal sealed class PullConsumer : NatsSubBase, IAckSender
{
    /// <summary>How long a pull waits at the server, unless the reader says otherwise.</summary>
    public static readonly TimeSpan DefaultExpires = TimeSpan.FromSeconds(30);

    /// <summary>How often the server says a pull still waits, unless the reader says otherwise (under half of the expiry).</summary>
    public static readonly TimeSpan DefaultHeartbeat = TimeSpan.FromSeconds(5);

    /// <summary>Pulls answered "no responders" in a row before the consumer is taken as gone.</summary>
    public const int MaxNoResponders = 10;

    private readonly INatsConnection _connection;
    private readonly string _next;
    private readonly string _replyBase;
    private int _max;
    private readonly int _threshold;
    private readonly TimeSpan _expires;
    private readonly TimeSpan _heartbeat;
    private readonly TimeProvider _time;
    private readonly Encoding _headerEncoding;
    private readonly bool _releaseOnRead;
    private readonly Channel<JetStreamMessage> _messages = Channel.CreateUnbounded<JetStreamMessage>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _gate = new();
    private Task _pulling = Task.CompletedTask;
    private ITimer? _timer;
    private int _disposed;

    /// <summary>The pull out (0: none), what it may still deliver, and the connection it went out on.</summary>
    private long _pullId;

    private int _pullLeft;
    private long _pullEpoch;
    private long _nextPullId;

    /// <summary>Counts disconnections: a pull sent before the last one went with it.</summary>
    private long _epoch;

    /// <summary>
    /// Messages delivered and not given back: until the reader takes them, or, for a reader that gives them back
    /// itself (<see cref="Release"/>), until it does.
    /// </summary>
    private int _held;

    private int _noResponders;
    private long _lastHeard;
    private long _pulls;

    /// <summary>Whether acks are dropped once this subscription is disposed (see <see cref="StartAsync"/>).</summary>
    private readonly bool _acksEndWithIt;

    /// <summary>Acks being written now; a disposal waits for them, so none is written after it.</summary>
    private int _acking;

    private PullConsumer(INatsConnection connection, string subject, string next, int max, TimeSpan expires, TimeSpan heartbeat, TimeProvider time, bool releaseOnRead, bool acksEndWithIt)
        : base(connection, connection.SubscriptionManager, subject + ".*", queueGroup: null, opts: null)
    {
        _acksEndWithIt = acksEndWithIt;
        _connection = connection;
        _replyBase = subject + ".";
        _next = next;
        _max = max;
        _threshold = releaseOnRead ? (max + 1) / 2 : 1;
        _expires = expires;
        _heartbeat = heartbeat;
        _time = time;
        _releaseOnRead = releaseOnRead;
        _headerEncoding = connection.Opts.HeaderEncoding;
    }

    /// <summary>How many pulls were sent (for tests and diagnostics).</summary>
    public long Pulls => Interlocked.Read(ref _pulls);

    /// <summary>Subscribes, and sends the first pull.</summary>
    /// <param name="max">Messages asked for at most beyond those given back.</param>
    /// <param name="releaseOnRead">
    /// True: a message is given back when the reader takes it (room for what is buffered; a pull once half the room
    /// is free). False: when the reader calls <see cref="Release"/>, once per message (room for what is running, a
    /// worker's free slots; a pull as soon as one is free).
    /// </param>
    /// <param name="acksEndWithIt">
    /// True for a consumer that is deleted and created again under the same name on the next attach, as
    /// <see cref="MessageBatcher"/> does: once this subscription is disposed, acks of the messages it delivered are
    /// dropped, not sent. The new consumer delivers those messages again; an ack of the old delivery would reach it
    /// instead, and where it acks all (AckAll) it would acknowledge messages it has not even delivered yet and raise the
    /// floor of delivery sequences it takes acks above, so that its own acks of them were ignored (redelivered after the
    /// ack wait, or the consumer stalled at its limit of pending acks).
    /// </param>
    public static async Task<PullConsumer> StartAsync(
        INatsConnection connection, string apiPrefix, string stream, string consumer, int max, TimeSpan expires, TimeSpan heartbeat, TimeProvider time,
        CancellationToken cancellationToken, bool releaseOnRead = true, bool acksEndWithIt = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        // Not NewInbox(): the client routes what comes to its own inbox prefix to its request-reply handler alone.
        var subject = connection.Opts.InboxPrefix + ".pull" + Guid.NewGuid().ToString("N");
        var pull = new PullConsumer(connection, subject, $"{apiPrefix}.CONSUMER.MSG.NEXT.{stream}.{consumer}", max, expires, heartbeat, time, releaseOnRead, acksEndWithIt);
        try
        {
            await connection.AddSubAsync(pull, cancellationToken);
        }
        catch
        {
            await pull.DisposeAsync();
            throw;
        }
        pull._lastHeard = time.GetTimestamp();
        connection.ConnectionDisconnected += pull.OnConnectionDisconnected;
        connection.ConnectionOpened += pull.OnConnectionOpened;
        pull._pulling = Task.Run(() => pull.PullAsync(pull._stop.Token), CancellationToken.None);
        pull._timer = time.CreateTimer(static state => ((PullConsumer)state!).CheckHeard(), pull, heartbeat, heartbeat);
        pull.Wake();
        return pull;
    }

    /// <summary>The delivered messages, in order, until the subscription ends (with its error, if it ended on one).</summary>
    public async IAsyncEnumerable<JetStreamMessage> ReadAllAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var reader = _messages.Reader;
        while (await reader.WaitToReadAsync(cancellationToken))
        {
            while (reader.TryRead(out var message))
            {
                if (_releaseOnRead)
                {
                    Release();
                }
                yield return message;
            }
        }
    }

    ValueTask IAckSender.SendAsync(string replyTo, byte[] payload, CancellationToken cancellationToken) =>
        _acksEndWithIt ? SendWhileSubscribedAsync(replyTo, payload, cancellationToken) : _connection.PublishAsync(replyTo, payload, cancellationToken: cancellationToken);

    /// <summary>
    /// Sends an ack unless this subscription is disposed. The count of acks in progress is raised before the check and
    /// the disposal sets its flag before it waits for the count to fall to nought (both through full fences): an ack
    /// is either written to the connection before the disposal returns, and so before the next attach's delete of the
    /// consumer on the same connection, or dropped.
    /// </summary>
    private async ValueTask SendWhileSubscribedAsync(string replyTo, byte[] payload, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _acking);
        try
        {
            if (Volatile.Read(ref _disposed) == 0)
            {
                await _connection.PublishAsync(replyTo, payload, cancellationToken: cancellationToken);
            }
        }
        finally
        {
            Interlocked.Decrement(ref _acking);
        }
    }

    async ValueTask IAckSender.ConfirmAsync(string replyTo, byte[] payload, CancellationToken cancellationToken) =>
        await _connection.RequestAsync<byte[], byte[]>(replyTo, payload, cancellationToken: cancellationToken);

    protected override ValueTask ReceiveInternalAsync(string subject, string? replyTo, ReadOnlySequence<byte>? headersBuffer, ReadOnlySequence<byte> payloadBuffer)
    {
        Interlocked.Exchange(ref _lastHeard, _time.GetTimestamp());
        if (string.IsNullOrEmpty(replyTo) && subject.StartsWith(_replyBase, StringComparison.Ordinal))
        {
            try
            {
                Status(subject, headersBuffer);
            }
#pragma warning disable CA1031 // A status it cannot read ends this consumer's messages, not the connection's read loop.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                End(new NatsException($"JetStream sent a status the pull consumer cannot read: {ex.Message}"));
            }
            return ValueTask.CompletedTask;
        }
        var message = new JetStreamMessage(this, subject, replyTo ?? string.Empty, headersBuffer is { Length: > 0 } headers ? headers.ToArray() : null,
            payloadBuffer.IsEmpty ? [] : payloadBuffer.ToArray(), _headerEncoding);
        bool ended;
        lock (_gate)
        {
            _held++;
            _noResponders = 0;
            // Counted against the pull out; one delivered for a pull given up on (lost, then found) counts the same,
            // which can only end the current pull early, never keep it open.
            ended = _pullId != 0 && --_pullLeft <= 0;
            if (ended)
            {
                _pullId = 0;
            }
        }
        _messages.Writer.TryWrite(message);
        if (ended)
        {
            Wake();
        }
        return ValueTask.CompletedTask;
    }

    /// <summary>A status from the server on one pull's reply subject: a heartbeat, the end of the pull, or an error.</summary>
    private void Status(string subject, ReadOnlySequence<byte>? headersBuffer)
    {
        if (headersBuffer is not { Length: > 0 } buffer)
        {
            End(new NatsException("JetStream sent the pull subscription a message that is neither a delivery nor a status"));
            return;
        }
        var block = buffer.IsSingleSegment ? buffer.FirstSpan : buffer.ToArray();
        var (code, description) = StatusLine(block);
        _ = long.TryParse(subject.AsSpan(_replyBase.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var id);
        switch (code)
        {
            case 100:
                return; // idle heartbeat
            case 404 or 408:
                // No messages (a pull that could not wait), or a pull that expired: ask again.
                Ended(id);
                return;
            case 409 when description.Equals("Consumer Deleted", StringComparison.OrdinalIgnoreCase)
                || description.StartsWith("Consumer is push based", StringComparison.OrdinalIgnoreCase):
                End(new NatsException($"JetStream ended the pull consumer: {code} {description}"));
                return;
            case 409:
                // A new leader without the pull, or a pull the server's limits ended or refused: ask again.
                Ended(id);
                return;
            case 503:
                // No responder for the pull: the consumer has no leader for a moment, or is gone.
                if (Interlocked.Increment(ref _noResponders) >= MaxNoResponders)
                {
                    End(new NatsException($"JetStream answered {MaxNoResponders} pulls in a row with no responders: the consumer is gone"));
                    return;
                }
                Ended(id);
                return;
            default:
                End(new NatsException($"JetStream ended the pull consumer: {code} {description}"));
                return;
        }
    }

    private static (int Code, string Description) StatusLine(ReadOnlySpan<byte> block)
    {
        var end = block.IndexOf("\r\n"u8);
        var line = end < 0 ? block : block[..end];
        // NATS/1.0 409 Consumer Deleted
        var space = line.IndexOf((byte)' ');
        if (space < 0 || !Utf8Parser.TryParse(line[(space + 1)..], out int code, out var consumed))
        {
            return (0, Encoding.ASCII.GetString(line));
        }
        var description = line[(space + 1 + consumed)..].Trim((byte)' ');
        return (code, Encoding.ASCII.GetString(description));
    }

    /// <summary>The server ended pull <paramref name="id"/>: when it is the one out, the next may go. (One given up on ends nothing.)</summary>
    private void Ended(long id)
    {
        lock (_gate)
        {
            if (id == 0 || id != _pullId)
            {
                return;
            }
            _pullId = 0;
        }
        Wake();
    }

    /// <summary>
    /// Changes how many messages may be out at most beyond those given back, for a reader that gives
    /// them back itself (<see cref="Release"/>). A larger room is asked for as soon as no pull is out;
    /// a smaller one takes effect as messages are given back (nothing delivered is recalled).
    /// </summary>
    public void Resize(int max)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        if (_releaseOnRead)
        {
            throw new InvalidOperationException("only a pull whose reader gives messages back itself can be resized");
        }
        Change(max, 0);
    }

    /// <summary>Gives back one message's room (the reader took it, or, without release on read, is done with it).</summary>
    public void Release() => Change(null, 1);

    /// <summary>Sets the room's size and gives messages back under the lock, then wakes the puller if there is room to ask for.</summary>
    private void Change(int? max, int givenBack)
    {
        bool pull;
        lock (_gate)
        {
            _max = max ?? _max;
            _held = Math.Max(_held - givenBack, 0);
            pull = Room() > 0;
        }
        if (pull)
        {
            Wake();
        }
    }

    /// <summary>How much the next pull asks for: nothing while one is out, else all the free room once it reaches the threshold.</summary>
    private int Room()
    {
        if (_pullId != 0)
        {
            return 0;
        }
        var free = _max - _held;
        return free >= _threshold ? free : 0;
    }

    private void Wake() => _wake.Writer.TryWrite(true);

    private async Task PullAsync(CancellationToken cancellationToken)
    {
        var pause = TimeSpan.Zero;
        try
        {
            while (await _wake.Reader.WaitToReadAsync(cancellationToken))
            {
                _wake.Reader.TryRead(out _);
                if (_connection.ConnectionState != NatsConnectionState.Open)
                {
                    continue; // the connection opening again wakes this
                }
                if (Volatile.Read(ref _noResponders) > 0)
                {
                    // Answered "no responders" just now: give the consumer's leader a moment.
                    await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(250 * Volatile.Read(ref _noResponders), 2_000)), _time, cancellationToken);
                }
                long id;
                int batch;
                lock (_gate)
                {
                    batch = Room();
                    if (batch == 0)
                    {
                        continue;
                    }
                    id = ++_nextPullId;
                    _pullId = id;
                    _pullLeft = batch;
                    _pullEpoch = Interlocked.Read(ref _epoch);
                }
                // Counted before it goes, so that a pull the server has is always counted.
                Interlocked.Increment(ref _pulls);
                try
                {
                    await _connection.PublishAsync(_next, Request(batch), replyTo: _replyBase + id.ToString(CultureInfo.InvariantCulture), cancellationToken: cancellationToken);
                    pause = TimeSpan.Zero;
                }
                catch (Exception ex) when (ex is NatsException or TimeoutException)
                {
                    // Not sent: free again, and asked again after a pause (nothing else would ask while nothing is out).
                    Interlocked.Decrement(ref _pulls);
                    lock (_gate)
                    {
                        if (_pullId == id)
                        {
                            _pullId = 0;
                        }
                    }
                    pause = TimeSpan.FromMilliseconds(Math.Clamp(pause.TotalMilliseconds * 2, 100, 2_000));
                    await Task.Delay(pause, _time, cancellationToken);
                    Wake();
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
#pragma warning disable CA1031 // Pulling cannot go on: the reader is told, rather than left waiting on a subscription that looks alive.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            End(ex);
        }
    }

    private byte[] Request(int batch) => Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture,
        $"{{\"batch\":{batch},\"expires\":{(long)_expires.TotalMilliseconds * 1_000_000},\"idle_heartbeat\":{(long)_heartbeat.TotalMilliseconds * 1_000_000}}}"));

    /// <summary>
    /// Every heartbeat: a pull out from which nothing, not even a heartbeat, came for two is taken as lost and asked
    /// again; with none out, one is asked for if there is room (in case a wake was missed).
    /// </summary>
    private void CheckHeard()
    {
        if (_connection.ConnectionState != NatsConnectionState.Open)
        {
            return;
        }
        lock (_gate)
        {
            if (_pullId != 0)
            {
                if (_time.GetElapsedTime(Interlocked.Read(ref _lastHeard)) < _heartbeat * 2)
                {
                    return;
                }
                _pullId = 0;
                Interlocked.Exchange(ref _lastHeard, _time.GetTimestamp());
            }
            else if (Room() == 0)
            {
                return;
            }
        }
        Wake();
    }

    private ValueTask OnConnectionDisconnected(object? sender, NatsEventArgs args)
    {
        Interlocked.Increment(ref _epoch);
        return ValueTask.CompletedTask;
    }

    /// <summary>A pull sent before the connection closed went with it; one sent since stands.</summary>
    private ValueTask OnConnectionOpened(object? sender, NatsEventArgs args)
    {
        lock (_gate)
        {
            if (_pullId != 0 && _pullEpoch < Interlocked.Read(ref _epoch))
            {
                _pullId = 0;
            }
        }
        Interlocked.Exchange(ref _lastHeard, _time.GetTimestamp());
        Wake();
        return ValueTask.CompletedTask;
    }

    /// <summary>Messages delivered that the reader did not take, once the subscription has ended (to hand them back).</summary>
    public List<JetStreamMessage> Unread()
    {
        var left = new List<JetStreamMessage>();
        while (_messages.Reader.TryRead(out var message))
        {
            left.Add(message);
        }
        return left;
    }

    private void End(Exception error)
    {
        _messages.Writer.TryComplete(error);
        EndSubscription(NatsSubEndReason.JetStreamError);
    }

    protected override void TryComplete()
    {
        _messages.Writer.TryComplete();
        _wake.Writer.TryComplete();
    }

    /// <summary>Stops pulling and unsubscribes; a second call does nothing.</summary>
    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        // Acks already past their check are written before this returns (an ack waits only for room in the
        // connection's buffer: real time, not the clock this subscription is given); later ones are dropped.
        while (_acksEndWithIt && Volatile.Read(ref _acking) != 0)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(1), CancellationToken.None);
        }
        _connection.ConnectionOpened -= OnConnectionOpened;
        _connection.ConnectionDisconnected -= OnConnectionDisconnected;
        if (_timer is not null)
        {
            await _timer.DisposeAsync();
        }
        await _stop.CancelAsync();
        await _pulling;
        _stop.Dispose();
        await base.DisposeAsync();
        _messages.Writer.TryComplete();
    }
}
