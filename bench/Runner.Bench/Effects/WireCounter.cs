using NATS.Client.Core;

namespace Runner.Bench.Effects;

/// <summary>
/// Counts, with one core subscription each, the protocol traffic a consumer causes: pull requests
/// (<c>$JS.API.CONSUMER.MSG.NEXT</c>), other JetStream API requests, acks by kind
/// (<c>$JS.ACK</c>) and KV writes (<c>$KV</c>). Its own copies cost the server a little, so the bench
/// counts only during warm-up runs.
/// </summary>
internal sealed class WireCounter : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _readers = [];
    private long _pulls;
    private long _pulledMax;
    private long _api;
    private long _acks;
    private long _progress;
    private long _naks;
    private long _kvWrites;

    public long Pulls => Interlocked.Read(ref _pulls);

    /// <summary>Messages asked for by all pull requests together (their <c>batch</c>).</summary>
    public long PulledMax => Interlocked.Read(ref _pulledMax);

    public long Api => Interlocked.Read(ref _api);
    public long Acks => Interlocked.Read(ref _acks);
    public long Progress => Interlocked.Read(ref _progress);
    public long Naks => Interlocked.Read(ref _naks);
    public long KvWrites => Interlocked.Read(ref _kvWrites);

    public static async Task<WireCounter> StartAsync(NatsConnection connection, CancellationToken cancellationToken)
    {
        var counter = new WireCounter();
        counter._readers.Add(counter.ReadAsync(await connection.SubscribeCoreAsync<byte[]>("$JS.API.>", cancellationToken: cancellationToken), counter.OnApi));
        counter._readers.Add(counter.ReadAsync(await connection.SubscribeCoreAsync<byte[]>("$JS.ACK.>", cancellationToken: cancellationToken), counter.OnAck));
        counter._readers.Add(counter.ReadAsync(await connection.SubscribeCoreAsync<byte[]>("$KV.>", cancellationToken: cancellationToken), _ => Interlocked.Increment(ref counter._kvWrites)));
        await connection.PingAsync(cancellationToken);
        return counter;
    }

    private void OnApi(NatsMsg<byte[]> msg)
    {
        if (!msg.Subject.StartsWith("$JS.API.CONSUMER.MSG.NEXT.", StringComparison.Ordinal))
        {
            Interlocked.Increment(ref _api);
            return;
        }
        Interlocked.Increment(ref _pulls);
        // {"batch":N,...}
        if (msg.Data is { } data)
        {
            var reader = new System.Text.Json.Utf8JsonReader(data);
            while (reader.Read())
            {
                if (reader.TokenType == System.Text.Json.JsonTokenType.PropertyName && reader.ValueTextEquals("batch") && reader.Read())
                {
                    Interlocked.Add(ref _pulledMax, reader.GetInt64());
                    return;
                }
            }
        }
    }

    private void OnAck(NatsMsg<byte[]> msg)
    {
        var data = msg.Data ?? [];
        if (data.AsSpan().StartsWith("+WPI"u8))
        {
            Interlocked.Increment(ref _progress);
        }
        else if (data.AsSpan().StartsWith("-NAK"u8))
        {
            Interlocked.Increment(ref _naks);
        }
        else
        {
            Interlocked.Increment(ref _acks);
        }
    }

    private async Task ReadAsync(INatsSub<byte[]> subscription, Action<NatsMsg<byte[]>> count)
    {
        await using (subscription)
        {
            try
            {
                await foreach (var msg in subscription.Msgs.ReadAllAsync(_stop.Token))
                {
                    count(msg);
                }
            }
            catch (OperationCanceledException)
            {
                // stopping
            }
        }
    }

    /// <summary>One line: each count divided by <paramref name="commands"/>.</summary>
    public string PerCommand(int commands)
    {
        double Per(long v) => v / (double)Math.Max(1, commands);
        return Text.Inv($"{Per(Pulls):F2} pull requests (asking {(Pulls == 0 ? 0 : PulledMax / (double)Pulls):F1} messages each), {Per(Api):F2} other JetStream API requests, {Per(KvWrites):F2} KV writes, {Per(Acks):F2} acks, {Per(Progress):F2} in-progress acks, {Per(Naks):F2} NAKs");
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_readers);
        _stop.Dispose();
    }
}
