using System.Threading.Channels;
using Microsoft.Extensions.Logging;
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
    private readonly Channel<INatsJSMsg<byte[]>> _buffer;
    private readonly CancellationTokenSource _stop;
    private readonly Task _pump;
    private CancellationTokenSource? _attachment;

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
        Func<CancellationToken, ValueTask>? attached = null)
    {
        _attached = attached;
        _js = js;
        _stream = stream;
        _template = template;
        _startSequence = startSequence;
        _batch = batch;
        _logger = logger;
        _time = time;
        _buffer = Channel.CreateBounded<INatsJSMsg<byte[]>>(new BoundedChannelOptions(batch * 2)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
            SingleWriter = true,
        });
        _stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        _pump = Task.Run(() => PumpAsync(_stop.Token), CancellationToken.None);
    }

    public string Consumer => _template.DurableName!;

    public long Attaches { get; private set; }

    /// <summary>Waits for at least one message, then takes what is buffered, up to <paramref name="max"/>.</summary>
    public async ValueTask<List<INatsJSMsg<byte[]>>> ReadBatchAsync(int max, CancellationToken cancellationToken)
    {
        var first = await _buffer.Reader.ReadAsync(cancellationToken);
        var batch = new List<INatsJSMsg<byte[]>>(Math.Min(max, 64)) { first };
        while (batch.Count < max && _buffer.Reader.TryRead(out var next))
        {
            batch.Add(next);
        }
        return batch;
    }

    /// <summary>
    /// Drops what is buffered and re-attaches from the start sequence: the caller could not finish
    /// a message and must see it again before anything after it.
    /// </summary>
    public void Restart()
    {
        try
        {
            Volatile.Read(ref _attachment)?.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Between attachments (backing off after a failed attach): the next attach starts fresh anyway.
        }
        while (_buffer.Reader.TryRead(out _))
        {
        }
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

    private void DropBuffered()
    {
        while (_buffer.Reader.TryRead(out _))
        {
        }
    }

    private async Task<INatsJSConsumer> AttachAsync(CancellationToken cancellationToken)
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
        var consumer = await _js.CreateOrUpdateConsumerAsync(_stream, config, cancellationToken);
        Attaches++;
        MessagingLog.ConsumerAttached(_logger, _stream, Consumer, start);
        if (_attached is not null)
        {
            await _attached(cancellationToken);
        }
        return consumer;
    }

    private async Task PumpAsync(CancellationToken cancellationToken)
    {
        var backoff = TimeSpan.FromMilliseconds(200);
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                using var attachment = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                Volatile.Write(ref _attachment, attachment);
                var consumer = await AttachAsync(cancellationToken);
                backoff = TimeSpan.FromMilliseconds(200);
                var expected = 1UL;
                var opts = new NatsJSConsumeOpts { MaxMsgs = _batch * 2, Expires = TimeSpan.FromSeconds(30), IdleHeartbeat = TimeSpan.FromSeconds(5) };
                await foreach (var msg in consumer.ConsumeAsync<byte[]>(opts: opts, cancellationToken: attachment.Token))
                {
                    if (attachment.IsCancellationRequested)
                    {
                        break;
                    }
                    var delivered = msg.Metadata?.Sequence.Consumer ?? expected;
                    if (delivered != expected)
                    {
                        // Re-attach from the caller's start sequence, which delivers what was
                        // buffered again: drop it, or one batch could hold a message twice.
                        MessagingLog.DeliveryGap(_logger, _stream, Consumer, expected, delivered);
                        DropBuffered();
                        break;
                    }
                    expected++;
                    if (msg.Metadata?.NumDelivered > 1)
                    {
                        Tracing.Redeliveries.Add(1, new KeyValuePair<string, object?>("consumer", Consumer));
                    }
                    await _buffer.Writer.WriteAsync(msg, attachment.Token);
                }
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // Restart(): attach again from the caller's start sequence.
                DropBuffered();
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
#pragma warning disable CA1031 // The pump must survive any client or server error; it logs and re-attaches.
            catch (Exception ex)
#pragma warning restore CA1031
            {
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
