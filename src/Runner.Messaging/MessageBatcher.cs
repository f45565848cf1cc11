using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace Runner.Messaging;

/// <summary>
/// Pulls from one durable consumer into a bounded channel and hands out batches: all messages
/// already buffered, up to a maximum, after waiting for the first. Survives server restarts and
/// consumer errors by re-attaching with back-off.
/// </summary>
internal sealed class MessageBatcher : IAsyncDisposable
{
    private readonly INatsJSContext _js;
    private readonly string _stream;
    private readonly ConsumerConfig _config;
    private readonly int _batch;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Channel<INatsJSMsg<byte[]>> _buffer;
    private readonly CancellationTokenSource _stop;
    private readonly Task _pump;

    public MessageBatcher(INatsJSContext js, string stream, ConsumerConfig config, int batch, ILogger logger, TimeProvider time, CancellationToken cancellationToken)
    {
        _js = js;
        _stream = stream;
        _config = config;
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

    public string Consumer => _config.DurableName!;

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

    private async Task PumpAsync(CancellationToken cancellationToken)
    {
        var backoff = TimeSpan.FromMilliseconds(200);
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var consumer = await _js.CreateOrUpdateConsumerAsync(_stream, _config, cancellationToken);
                MessagingLog.ConsumerAttached(_logger, _stream, Consumer);
                backoff = TimeSpan.FromMilliseconds(200);
                var opts = new NatsJSConsumeOpts { MaxMsgs = _batch * 2, Expires = TimeSpan.FromSeconds(30), IdleHeartbeat = TimeSpan.FromSeconds(5) };
                await foreach (var msg in consumer.ConsumeAsync<byte[]>(opts: opts, cancellationToken: cancellationToken))
                {
                    await _buffer.Writer.WriteAsync(msg, cancellationToken);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex) when (ex is NatsException or TimeoutException or InvalidOperationException or OperationCanceledException)
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
