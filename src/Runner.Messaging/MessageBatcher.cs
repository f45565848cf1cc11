using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace Runner.Messaging;

/// <summary>
/// Pulls from one durable consumer into a bounded channel and hands out batches: all messages
/// already buffered, up to a maximum, after waiting for the first.
/// <para>
/// In-order delivery is what the stages above rely on, and a pull consumer breaks it in one case:
/// messages delivered to a subscription that died (process killed, connection lost mid-flight)
/// come back only after the ack wait, behind newer ones. So each attach re-creates the durable at
/// a start sequence the caller chooses (its committed checkpoint), and every delivery's consumer
/// sequence is checked to be the next one: a gap means a delivery was lost in transit, and the
/// batcher re-attaches from the checkpoint instead of letting a later message overtake it.
/// </para>
/// <para>
/// A consumer can also go quiet without an error: a pull request lost in a server's leader change
/// is not always answered, and the client's own heartbeat-timeout pulls can land on a consumer
/// that no longer delivers. So while the reader waits on an empty buffer and nothing has arrived
/// for <c>stallAfter</c>, the batcher asks the stream itself whether it holds anything past the
/// last delivery; when it does, the consumer is stalled, and the batcher logs the consumer's view
/// and re-attaches.
/// </para>
/// </summary>
internal sealed class MessageBatcher : IAsyncDisposable
{
    private readonly INatsJSContext _js;
    private readonly string _stream;
    private readonly ConsumerConfig _template;
    private readonly Func<CancellationToken, ValueTask<ulong>> _startSequence;
    private readonly Func<CancellationToken, ValueTask>? _attached;
    private readonly int _batch;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly DeliveryBuffer<JetStreamMessage> _buffer;
    private readonly CancellationTokenSource _stop;
    private readonly Task _pump;
    private readonly TimeSpan _stallAfter;
    private CancellationTokenSource? _attachment;
    private INatsJSStream? _streamHandle;
    private long _lastDelivered;
    private long _lastArrivalTicks;
    private long _waitingSinceTicks;

    /// <summary>How long a consumer may deliver nothing, while the stream holds more for it and the reader waits, before it is re-attached.</summary>
    public static readonly TimeSpan DefaultStallAfter = TimeSpan.FromSeconds(15);

    /// <param name="startSequence">Returns the first stream sequence to deliver on each attach (0 = from the start).</param>
    /// <param name="attached">
    /// Runs after each attach, before anything is pulled: a lease holder checks there that it still
    /// holds the lease (and cancels <paramref name="cancellationToken"/> when it does not).
    /// </param>
    public MessageBatcher(
        INatsJSContext js,
        string stream,
        ConsumerConfig template,
        Func<CancellationToken, ValueTask<ulong>> startSequence,
        int batch,
        ILogger logger,
        TimeProvider time,
        CancellationToken cancellationToken,
        Func<CancellationToken, ValueTask>? attached = null,
        TimeSpan? stallAfter = null)
    {
        _attached = attached;
        _stallAfter = stallAfter ?? DefaultStallAfter;
        _js = js;
        _stream = stream;
        _template = template;
        _startSequence = startSequence;
        _batch = batch;
        _logger = logger;
        _time = time;
        _buffer = new DeliveryBuffer<JetStreamMessage>(batch * 2);
        _stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        _pump = Task.Run(() => PumpAsync(_stop.Token), CancellationToken.None);
    }

    public string Consumer => _template.DurableName!;

    public long Attaches { get; private set; }

    /// <summary>How many times the consumer was found stalled and re-attached.</summary>
    public long Stalls => Interlocked.Read(ref _stalls);

    private long _stalls;

    /// <summary>
    /// Waits for at least one message, then takes what is buffered, up to <paramref name="max"/>:
    /// consecutive deliveries of one attachment (the reader only).
    /// </summary>
    public async ValueTask<List<JetStreamMessage>> ReadBatchAsync(int max, CancellationToken cancellationToken)
    {
        if (_buffer.TryReadBatch(max) is { } batch)
        {
            return batch;
        }
        Interlocked.Exchange(ref _waitingSinceTicks, _time.GetTimestamp());
        try
        {
            return await _buffer.ReadBatchAsync(max, cancellationToken);
        }
        finally
        {
            Interlocked.Exchange(ref _waitingSinceTicks, 0);
        }
    }

    /// <summary>What is buffered now, up to <paramref name="max"/>, without waiting; null when nothing is (the reader only).</summary>
    public List<JetStreamMessage>? TryReadBatch(int max) => _buffer.TryReadBatch(max);

    /// <summary>
    /// Drops what is buffered and re-attaches from the start sequence: the caller (the reader) could
    /// not finish a message and must see it again before anything after it.
    /// </summary>
    public void Restart()
    {
        _buffer.Next();
        try
        {
            Volatile.Read(ref _attachment)?.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Between attachments (backing off after a failed attach): the next attach starts fresh anyway.
        }
        _buffer.Clear();
    }

    /// <summary>The stream sequence below which the consumer has acknowledged everything (0 when it does not exist).</summary>
    public static async ValueTask<ulong> AckFloorAsync(INatsJSContext js, string stream, string consumer, CancellationToken cancellationToken)
    {
        try
        {
            var existing = await js.GetConsumerAsync(stream, consumer, cancellationToken);
            return existing.Info.AckFloor.StreamSeq;
        }
        catch (NatsJSApiException ex) when (ex.Error.Code == 404)
        {
            return 0;
        }
    }

    private async Task AttachAsync(CancellationToken cancellationToken)
    {
        var start = await _startSequence(cancellationToken);
        try
        {
            await _js.DeleteConsumerAsync(_stream, Consumer, cancellationToken);
        }
        catch (NatsJSApiException ex) when (ex.Error.Code == 404)
        {
            // first attach
        }
        var config = _template with
        {
            DeliverPolicy = start <= 1 ? ConsumerConfigDeliverPolicy.All : ConsumerConfigDeliverPolicy.ByStartSequence,
            OptStartSeq = start <= 1 ? 0 : start,
        };
        await _js.CreateOrUpdateConsumerAsync(_stream, config, cancellationToken);
        Attaches++;
        Interlocked.Exchange(ref _lastDelivered, (long)(start <= 1 ? 0 : start - 1));
        Interlocked.Exchange(ref _lastArrivalTicks, _time.GetTimestamp());
        MessagingLog.ConsumerAttached(_logger, _stream, Consumer, start);
        if (_attached is not null)
        {
            await _attached(cancellationToken);
        }
    }

    private async Task PumpAsync(CancellationToken cancellationToken)
    {
        var backoff = TimeSpan.FromMilliseconds(200);
        while (!cancellationToken.IsCancellationRequested)
        {
            var attachment = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var watch = Task.CompletedTask;
            try
            {
                Volatile.Write(ref _attachment, attachment);
                // Each attach delivers again from the caller's start sequence. Nothing of the attachment before may
                // be read ahead of that (a message the pump was writing as Restart() emptied the buffer would come
                // before the message the caller must see again first): the reader skips it from now on.
                var number = _buffer.Next();
                await AttachAsync(cancellationToken);
                backoff = TimeSpan.FromMilliseconds(200);
                watch = WatchAsync(attachment, attachment.Token);
                var expected = 1UL;
                // Each attach deletes the consumer and makes it again under the same name: acks of an attachment that
                // ended must not reach the next one (PullConsumer, acksEndWithIt).
                await using var pull = await PullConsumer.StartAsync(_js.Connection, _js.Opts.Prefix, _stream, Consumer,
                    _batch * 2, PullConsumer.DefaultExpires, PullConsumer.DefaultHeartbeat, _time, attachment.Token, acksEndWithIt: true);
                await foreach (var msg in pull.ReadAllAsync(attachment.Token))
                {
                    if (attachment.IsCancellationRequested)
                    {
                        break;
                    }
                    var delivery = Delivery.Of(msg);
                    var delivered = delivery?.ConsumerSequence ?? expected;
                    if (delivered != expected)
                    {
                        // Re-attach from the caller's start sequence, which delivers again what is
                        // buffered: the next attachment makes the reader skip it.
                        MessagingLog.DeliveryGap(_logger, _stream, Consumer, expected, delivered);
                        break;
                    }
                    expected++;
                    Interlocked.Exchange(ref _lastArrivalTicks, _time.GetTimestamp());
                    Interlocked.Exchange(ref _lastDelivered, (long)(delivery?.StreamSequence ?? 0));
                    if (delivery?.NumDelivered > 1)
                    {
                        Tracing.Redeliveries.Add(1, new KeyValuePair<string, object?>("consumer", Consumer));
                    }
                    await _buffer.WriteAsync(number, msg, attachment.Token);
                }
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // Restart(), or a stall: attach again from the caller's start sequence.
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
#pragma warning disable CA1031 // The pump must survive any client or server error; it logs and re-attaches.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                // The next attach delivers from the caller's start sequence again, what is buffered too.
                MessagingLog.ConsumerFailed(_logger, _stream, Consumer, backoff.TotalMilliseconds, ex.Message);
                try
                {
                    await Task.Delay(backoff, _time, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                backoff = TimeSpan.FromMilliseconds(Math.Min(backoff.TotalMilliseconds * 2, 5_000));
            }
            finally
            {
                // The watch ends with its attachment: cancel before disposing, or it would wait on a dead token.
                await attachment.CancelAsync();
                await watch;
                attachment.Dispose();
            }
        }
    }

    /// <summary>
    /// Watches one attachment until it ends: re-attaches when the reader has waited, and nothing
    /// has arrived, for the stall time while the stream holds messages past the last delivery.
    /// </summary>
    private async Task WatchAsync(CancellationTokenSource attachment, CancellationToken token)
    {
        // An idle consumer passes every check: each one that finds the stream holding nothing more
        // doubles the wait for the next (up to four stall times), so idle partitions do not ask the
        // stream's leader every few seconds; anything arriving starts over at the short period.
        var shortest = _stallAfter / 3;
        var period = shortest;
        while (!token.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(period, _time, token);
                var waiting = Interlocked.Read(ref _waitingSinceTicks);
                if (waiting == 0
                    || _time.GetElapsedTime(waiting) < _stallAfter
                    || _time.GetElapsedTime(Interlocked.Read(ref _lastArrivalTicks)) < _stallAfter)
                {
                    period = shortest;
                    continue;
                }
                var delivered = (ulong)Interlocked.Read(ref _lastDelivered);
                var stored = await LastStoredAsync(token);
                if (stored <= delivered || Interlocked.Read(ref _waitingSinceTicks) == 0)
                {
                    period = TimeSpan.FromTicks(Math.Min(period.Ticks * 2, _stallAfter.Ticks * 4));
                    continue;
                }
                await LogStallAsync(delivered, stored, token);
                Interlocked.Increment(ref _stalls);
                Tracing.Stalls.Add(1, new KeyValuePair<string, object?>("consumer", Consumer));
                await attachment.CancelAsync();
                return;
            }
            catch (OperationCanceledException)
            {
                return;
            }
#pragma warning disable CA1031 // The watch must outlive any client or server error; it looks again next period.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                // The stream cannot answer either (no leader yet): a re-attach would fail the same
                // way, so look again next period.
                MessagingLog.StallCheckFailed(_logger, _stream, Consumer, ex.Message);
            }
        }
    }

    /// <summary>The last stream sequence the consumer's filter matches (0 when none is stored).</summary>
    private async ValueTask<ulong> LastStoredAsync(CancellationToken cancellationToken)
    {
        _streamHandle ??= await _js.GetStreamAsync(_stream, cancellationToken: cancellationToken);
        if (_template.FilterSubject is { Length: > 0 } filter)
        {
            return await StreamSequences.LastOnSubjectAsync(_streamHandle, filter, cancellationToken);
        }
        await _streamHandle.RefreshAsync(cancellationToken);
        var state = _streamHandle.Info.State;
        return state.Messages == 0 ? 0 : state.LastSeq;
    }

    private async ValueTask LogStallAsync(ulong delivered, ulong stored, CancellationToken cancellationToken)
    {
        try
        {
            var info = (await _js.GetConsumerAsync(_stream, Consumer, cancellationToken)).Info;
            MessagingLog.ConsumerStalled(_logger, _stream, Consumer, _stallAfter.TotalSeconds, delivered, stored,
                $"delivered {info.Delivered.StreamSeq}, ack floor {info.AckFloor.StreamSeq}, pending {info.NumPending}, ack pending {info.NumAckPending}, waiting pulls {info.NumWaiting}, leader {info.Cluster?.Leader ?? "-"}");
        }
        catch (Exception ex) when (ex is NatsException or TimeoutException)
        {
            MessagingLog.ConsumerStalled(_logger, _stream, Consumer, _stallAfter.TotalSeconds, delivered, stored, $"consumer info unavailable: {ex.Message}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _pump;
        }
        catch (OperationCanceledException)
        {
            // expected on shutdown
        }
        _stop.Dispose();
    }
}
