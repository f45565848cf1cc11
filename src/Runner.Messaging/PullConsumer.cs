using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using System.Text;
using System.Threading.Channels;
using NATS.Client.Core;

namespace Runner.Messaging;

/// <summary>
/// Pulls from one durable JetStream consumer through a subscription of its own, in place of the
/// client's <c>ConsumeAsync</c>: each delivery is copied off the connection's read loop as its
/// subject, reply subject, header bytes and body (<see cref="JetStreamMessage"/>), where the client
/// parsed every header into a table of strings, and wrapped each message in three more objects, for
/// every message of every consumer.
/// <para>
/// It asks for at most <c>max</c> messages beyond what its reader has taken: pulls go out as the
/// reader takes messages and at least half of that room is free, each asking for all of it. A pull
/// lasts <c>expires</c>; the server serves and expires pulls oldest first, and says when one ended
/// (a status on the subscription), so what a pull did not deliver is known and asked for again. It
/// also sends a heartbeat every <c>heartbeat</c> while a pull waits; when nothing at all has come
/// for two of them while pulls are out, they are taken as lost (a server restart, a leader change)
/// and asked again, as they are when the connection opens again. A status the consumer cannot go on
/// after (deleted, no responders, a refused request) ends the messages with an error: its reader
/// attaches again.
/// </para>
/// </summary>
internal sealed class PullConsumer : NatsSubBase, IAckSender
{
    private readonly INatsConnection _connection;
    private readonly string _next;
    private readonly int _max;
    private readonly TimeSpan _expires;
    private readonly TimeSpan _heartbeat;
    private readonly TimeProvider _time;
    private readonly Encoding _headerEncoding;
    private readonly Channel<JetStreamMessage> _messages = Channel.CreateUnbounded<JetStreamMessage>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });
    private readonly CancellationTokenSource _stop = new();
#if NET9_0_OR_GREATER
    private readonly Lock _gate = new();
#else
    private readonly object _gate = new();
#endif
    private Task _pulling = Task.CompletedTask;
    private ITimer? _timer;

    /// <summary>Messages asked of the server that it has neither delivered nor said it will not.</summary>
    private int _requested;

    /// <summary>
    /// What each pull still waits for, oldest first: the server serves, and expires, pulls in the order they came
    /// (they all wait as long), so a delivery counts against the oldest, and the end of a pull ends the oldest.
    /// </summary>
    private readonly List<int> _pullsOut = new(4);

    /// <summary>
    /// Messages delivered and not given back: until the reader takes them, or, for a reader that gives them back
    /// itself (<see cref="Release"/>), until it does.
    /// </summary>
    private int _held;

    private readonly bool _releaseOnRead;

    private long _lastHeard;

    private PullConsumer(INatsConnection connection, string subject, string next, int max, TimeSpan expires, TimeSpan heartbeat, TimeProvider time, bool releaseOnRead)
        : base(connection, connection.SubscriptionManager, subject, queueGroup: null, opts: null)
    {
        _releaseOnRead = releaseOnRead;
        _connection = connection;
        _next = next;
        _max = max;
        _expires = expires;
        _heartbeat = heartbeat;
        _time = time;
        _headerEncoding = connection.Opts.HeaderEncoding;
    }

    /// <summary>How many pulls were sent (for tests and diagnostics).</summary>
    public long Pulls => Interlocked.Read(ref _pulls);

    private long _pulls;

    /// <summary>Subscribes, and sends the first pull.</summary>
    /// <param name="max">Messages asked for at most beyond those given back.</param>
    /// <param name="releaseOnRead">
    /// True: a message is given back when the reader takes it (room for what is buffered). False: when the reader
    /// calls <see cref="Release"/>, once per message (room for what is running: a worker's free slots).
    /// </param>
    public static async Task<PullConsumer> StartAsync(
        INatsConnection connection, string apiPrefix, string stream, string consumer, int max, TimeSpan expires, TimeSpan heartbeat, TimeProvider time,
        CancellationToken cancellationToken, bool releaseOnRead = true)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        // Not NewInbox(): the client routes what comes to its own inbox prefix to its request-reply handler alone.
        var subject = connection.Opts.InboxPrefix + ".pull" + Guid.NewGuid().ToString("N");
        var pull = new PullConsumer(connection, subject, $"{apiPrefix}.CONSUMER.MSG.NEXT.{stream}.{consumer}", max, expires, heartbeat, time, releaseOnRead);
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
        _connection.PublishAsync(replyTo, payload, cancellationToken: cancellationToken);

    async ValueTask IAckSender.ConfirmAsync(string replyTo, byte[] payload, CancellationToken cancellationToken) =>
        await _connection.RequestAsync<byte[], byte[]>(replyTo, payload, cancellationToken: cancellationToken);

    protected override ValueTask ReceiveInternalAsync(string subject, string? replyTo, ReadOnlySequence<byte>? headersBuffer, ReadOnlySequence<byte> payloadBuffer)
    {
        Interlocked.Exchange(ref _lastHeard, _time.GetTimestamp());
        if (string.IsNullOrEmpty(replyTo) && string.Equals(subject, Subject, StringComparison.Ordinal))
        {
            Status(headersBuffer);
            return ValueTask.CompletedTask;
        }
        var message = new JetStreamMessage(this, subject, replyTo ?? string.Empty, headersBuffer is { Length: > 0 } headers ? headers.ToArray() : null,
            payloadBuffer.IsEmpty ? [] : payloadBuffer.ToArray(), _headerEncoding);
        lock (_gate)
        {
            _requested = Math.Max(_requested - 1, 0);
            if (_pullsOut.Count > 0 && --_pullsOut[0] == 0)
            {
                _pullsOut.RemoveAt(0);
            }
            _held++;
        }
        _messages.Writer.TryWrite(message);
        return ValueTask.CompletedTask;
    }

    /// <summary>A status from the server on the pull subscription itself (no reply subject): a heartbeat, the end of a pull, or an error.</summary>
    private void Status(ReadOnlySequence<byte>? headersBuffer)
    {
        if (headersBuffer is not { Length: > 0 } buffer)
        {
            End(new NatsException("JetStream sent the pull subscription a message that is neither a delivery nor a status"));
            return;
        }
        var block = buffer.IsSingleSegment ? buffer.FirstSpan : buffer.ToArray();
        var (code, description) = StatusLine(block);
        switch (code)
        {
            case 100:
                return; // idle heartbeat
            case 404 or 408:
                // No messages (a pull that could not wait), or a pull that expired: what it did not deliver is free
                // again. (Servers before 2.10 do not say how much that was: it is what the oldest pull still waited for.)
                PullEnded();
                return;
            case 409 when description.Equals("Leadership Change", StringComparison.OrdinalIgnoreCase):
                // The new leader does not have the pulls the old one held.
                ForgetPulls();
                return;
            case 409 when !description.Equals("Consumer Deleted", StringComparison.OrdinalIgnoreCase)
                && !description.StartsWith("Consumer is push based", StringComparison.OrdinalIgnoreCase)
                && PendingMessages(block) > 0:
                // A pull ended early by the server's limits (batch completed, max bytes...): ask again.
                PullEnded();
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

    private static int PendingMessages(ReadOnlySpan<byte> block)
    {
        var headers = MessageHeaderList.Parse(block, Encoding.ASCII);
        return headers.TryGetValue("Nats-Pending-Messages", out var text) && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var pending) ? pending : 0;
    }

    /// <summary>The oldest pull is over: what it still waited for will not come.</summary>
    private void PullEnded()
    {
        lock (_gate)
        {
            if (_pullsOut.Count > 0)
            {
                _requested = Math.Max(_requested - _pullsOut[0], 0);
                _pullsOut.RemoveAt(0);
            }
        }
        Wake();
    }

    /// <summary>The server no longer holds the pulls sent (restarted, reconnected, a new leader): ask again for all the room.</summary>
    private void ForgetPulls()
    {
        lock (_gate)
        {
            _requested = 0;
            _pullsOut.Clear();
        }
        Interlocked.Exchange(ref _lastHeard, _time.GetTimestamp());
        Wake();
    }

    /// <summary>Gives back one message's room (the reader took it, or, without release on read, is done with it).</summary>
    public void Release()
    {
        bool pull;
        lock (_gate)
        {
            _held = Math.Max(_held - 1, 0);
            pull = Room() > 0;
        }
        if (pull)
        {
            Wake();
        }
    }

    /// <summary>
    /// How much a pull should ask for now: all the free room once at least half of it is free, else 0 (a reader
    /// taking one message at a time from a full buffer would otherwise send a pull for each).
    /// </summary>
    private int Room()
    {
        var free = _max - _requested - _held;
        return free >= (_max + 1) / 2 ? free : 0;
    }

    private void Wake() => _wake.Writer.TryWrite(true);

    private async Task PullAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (await _wake.Reader.WaitToReadAsync(cancellationToken))
            {
                _wake.Reader.TryRead(out _);
                int batch;
                lock (_gate)
                {
                    batch = Room();
                    if (batch > 0)
                    {
                        _requested += batch;
                        _pullsOut.Add(batch);
                    }
                }
                if (batch == 0)
                {
                    continue;
                }
                // Counted before it goes, so that a pull the server has is always counted.
                Interlocked.Increment(ref _pulls);
                try
                {
                    await _connection.PublishAsync(_next, Request(batch), replyTo: Subject, cancellationToken: cancellationToken);
                }
                catch (Exception ex) when (ex is NatsException or TimeoutException)
                {
                    // Not sent: the room is free again; the heartbeat check or the next reconnect asks again.
                    Interlocked.Decrement(ref _pulls);
                    lock (_gate)
                    {
                        var at = _pullsOut.LastIndexOf(batch);
                        if (at >= 0)
                        {
                            _requested = Math.Max(_requested - _pullsOut[at], 0);
                            _pullsOut.RemoveAt(at);
                        }
                    }
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private byte[] Request(int batch) => Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture,
        $"{{\"batch\":{batch},\"expires\":{(long)_expires.TotalMilliseconds * 1_000_000},\"idle_heartbeat\":{(long)_heartbeat.TotalMilliseconds * 1_000_000}}}"));

    /// <summary>Pulls are out and nothing, not even a heartbeat, came for two heartbeats: take them as lost, and ask again.</summary>
    private void CheckHeard()
    {
        if (_time.GetElapsedTime(Interlocked.Read(ref _lastHeard)) < _heartbeat * 2)
        {
            return;
        }
        lock (_gate)
        {
            if (_requested == 0)
            {
                return;
            }
        }
        ForgetPulls();
    }

    /// <summary>Pulls sent on the connection that closed went with it.</summary>
    private ValueTask OnConnectionOpened(object? sender, NatsEventArgs args)
    {
        ForgetPulls();
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

    public override async ValueTask DisposeAsync()
    {
        _connection.ConnectionOpened -= OnConnectionOpened;
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
