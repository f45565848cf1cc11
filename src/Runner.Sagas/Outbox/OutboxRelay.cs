using System.Text.Json;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Core;
using Runner.Core.Events;
using Runner.Core.Keys;
using Runner.Messaging;
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
    private const int ScanPage = 4096;

    private readonly INatsJSContext _js;
    private readonly LmdbStore _store;
    private readonly SagaRuntimeOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Channel<OutboxEntry> _queue;
    private readonly HashSet<string> _inFlight = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private readonly SemaphoreSlim _wake = new(0);
    private volatile bool _rescan = true;
    private Task? _wakeTask;
    private long _published;

    public OutboxRelay(INatsJSContext js, LmdbStore store, SagaRuntimeOptions options, ILogger logger, TimeProvider time)
    {
        _js = js;
        _store = store;
        _options = options;
        _logger = logger;
        _time = time;
        _queue = Channel.CreateBounded<OutboxEntry>(new BoundedChannelOptions(65_536) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });
    }

    public long Published => Interlocked.Read(ref _published);

    /// <summary>Hands freshly committed items to the relay. Never blocks: on overflow it rescans instead.</summary>
    public void Enqueue(IReadOnlyList<OutboxEntry> entries)
    {
        foreach (var entry in entries)
        {
            if (!_queue.Writer.TryWrite(entry))
            {
                _rescan = true;
                _wake.Release();
                return;
            }
        }
    }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var pending = _store.Read(r => r.Count(KeySpace.Outbox));
        SagasLog.RelayStarted(_logger, (int)pending);
        var backoff = TimeSpan.FromMilliseconds(100);
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
            var failed = await PublishAsync(batch, cancellationToken);
            if (failed > 0)
            {
                _rescan = true;
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

    private async Task<List<OutboxEntry>> NextBatchAsync(CancellationToken cancellationToken)
    {
        var max = _options.RelayConcurrency;
        if (_rescan)
        {
            _rescan = false;
            // Drop the fast-path queue: the scan sees everything it holds, in commit order.
            while (_queue.Reader.TryRead(out _))
            {
            }
            var scanned = Scan(max);
            if (scanned.Count == max)
            {
                _rescan = true;
            }
            return Claim(scanned);
        }

        var readTask = _queue.Reader.WaitToReadAsync(cancellationToken).AsTask();
        if (_wakeTask is null || _wakeTask.IsCompleted)
        {
            _wakeTask = _wake.WaitAsync(cancellationToken);
        }
        await Task.WhenAny(readTask, _wakeTask);
        cancellationToken.ThrowIfCancellationRequested();
        if (_rescan)
        {
            return [];
        }
        var batch = new List<OutboxEntry>();
        while (batch.Count < max && _queue.Reader.TryRead(out var entry))
        {
            batch.Add(entry);
        }
        return Claim(batch);
    }

    private List<OutboxEntry> Scan(int max) => _store.Read(reader => reader.Scan(KeySpace.Outbox, [], max)
        .Select(kv => new OutboxEntry(kv.Key, JsonSerializer.Deserialize(kv.Value, CoreJsonContext.Default.CommandMessage)!))
        .ToList());

    private List<OutboxEntry> Claim(List<OutboxEntry> entries)
    {
        lock (_gate)
        {
            return entries.Where(e => _inFlight.Add(Convert.ToBase64String(e.Key))).ToList();
        }
    }

    private void Release(IEnumerable<OutboxEntry> entries)
    {
        lock (_gate)
        {
            foreach (var entry in entries)
            {
                _inFlight.Remove(Convert.ToBase64String(entry.Key));
            }
        }
    }

    /// <summary>Publishes a batch; returns how many did not get a PubAck.</summary>
    private async Task<int> PublishAsync(List<OutboxEntry> batch, CancellationToken cancellationToken)
    {
        var futures = new List<(OutboxEntry Entry, NatsJSPublishConcurrentFuture? Future)>(batch.Count);
        foreach (var entry in batch)
        {
            try
            {
                var future = await _js.PublishConcurrentAsync(
                    Core.Subjects.Subjects.Command(entry.Command.Tenant, entry.Command.Effect, entry.Command.Pool),
                    CommandBody(entry.Command),
                    opts: new NatsJSPubOpts { MsgId = entry.Command.CommandId },
                    headers: Headers(entry.Command),
                    cancellationToken: cancellationToken);
                futures.Add((entry, future));
            }
            catch (Exception ex) when (ex is NatsException or TimeoutException)
            {
                futures.Add((entry, null));
            }
        }

        var done = new WriteBatch();
        var acked = new List<OutboxEntry>();
        var failed = 0;
        foreach (var (entry, future) in futures)
        {
            if (future is null)
            {
                failed++;
                continue;
            }
            try
            {
                var ack = await future.Value.GetResponseAsync(cancellationToken);
                ack.EnsureStored();
                done.Delete(KeySpace.Outbox, entry.Key);
                acked.Add(entry);
            }
            catch (Exception ex) when (ex is NatsException or TimeoutException)
            {
                failed++;
            }
            finally
            {
                await future.Value.DisposeAsync();
            }
        }

        if (done.Count > 0)
        {
            try
            {
                await _store.Writer.CommitAsync(done, cancellationToken);
                Interlocked.Add(ref _published, acked.Count);
            }
            catch (StorageException ex)
            {
                // Published but not deleted: they go out again later with the same Nats-Msg-Id.
                SagasLog.RelayDeleteFailed(_logger, acked.Count, ex.Message);
                _rescan = true;
            }
        }
        Release(batch);
        return failed;
    }

    /// <summary>The command body: the record without the relay's own fields (pool is in the subject, traceparent in a header).</summary>
    internal static byte[] CommandBody(Core.Transitions.CommandMessage command) =>
        JsonSerializer.SerializeToUtf8Bytes(command with { TraceParent = null, Pool = null }, CoreJsonContext.Default.CommandMessage);

    private static NatsHeaders Headers(Core.Transitions.CommandMessage command)
    {
        var headers = new NatsHeaders
        {
            [EventHeaders.TenantId] = command.Tenant,
            [EventHeaders.CorrelationId] = command.CorrelationId,
            [EventHeaders.CausationId] = command.CausationId,
        };
        if (command.TraceParent is not null)
        {
            headers[EventHeaders.TraceParent] = command.TraceParent;
        }
        return headers;
    }
}
