using Microsoft.Extensions.Logging;
using NATS.Client.JetStream;
using Runner.Core.Ids;
using Runner.Core.Keys;
using Runner.Messaging;
using Runner.Storage;

namespace Runner.Sagas.Scheduling;

/// <summary>
/// Fires one partition's timers. Schedule keys sort by due time within a partition, so a range
/// scan from the partition's first key yields the due items first; each is published to
/// WORKFLOW_EVENTS as a <c>timer.fired</c> event (many in flight, bounded) and deleted only after
/// its PubAck. Between rounds it sleeps until the next due time, at most
/// <see cref="SagaRuntimeOptions.SchedulerMaxSleep"/>, or until its partition worker commits a new
/// schedule. Runs with the partition's owned token, next to its worker.
/// </summary>
internal sealed partial class TimerScheduler
{
    private readonly INatsJSContext _js;
    private readonly PubAckPipeline _publisher;
    private readonly LmdbStore _store;
    private readonly SagaRuntimeOptions _options;
    private readonly PartitionId _partition;
    private readonly ScheduleSignal _signal;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly byte[] _prefix;
    private readonly KeyValuePair<string, object?> _partitionTag;
    private readonly CancellationToken _intake;

    // Server rejections (not timeouts) per schedule key; at the limit the timer is quarantined.
    private readonly Dictionary<byte[], int> _rejections = new(KeyBytesComparer.Instance);
    private long _fired;

    public TimerScheduler(
        INatsJSContext js,
        LmdbStore store,
        SagaRuntimeOptions options,
        PartitionId partition,
        ScheduleSignal signal,
        ILogger logger,
        TimeProvider time,
        CancellationToken intake = default)
    {
        _intake = intake;
        _js = js;
        _publisher = PubAckPipeline.For(js.Connection);
        _store = store;
        _options = options;
        _partition = partition;
        _signal = signal;
        _logger = logger;
        _time = time;
        _prefix = StoreKeys.SchedulePrefix(partition);
        _partitionTag = new(SagasTelemetry.PartitionTag, partition.Value);
    }

    /// <summary>Timer events this scheduler has published with a PubAck.</summary>
    public long Fired => Interlocked.Read(ref _fired);

    /// <summary>
    /// Fires timers as they come due until <paramref name="cancellationToken"/>. Once the intake
    /// token passed at construction is cancelled (drain), it fires what is due by then and returns.
    /// </summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var startMs = NowMs();
        var started = _time.GetTimestamp();
        var backlog = _store.Read(r => r.CountRange(KeySpace.Schedule, _prefix, StoreKeys.ScheduleDueBound(_partition, startMs)));
        var pacer = new CatchUpPacer(backlog, _options.SchedulerCatchUpWindow);
        SagasLog.SchedulerStarted(_logger, _partition.Value, backlog, _options.SchedulerCatchUpWindow.TotalMilliseconds);
        var backoff = TimeSpan.FromMilliseconds(100);
        while (!cancellationToken.IsCancellationRequested)
        {
            var elapsed = _time.GetElapsedTime(started);
            var allowance = pacer.Allowance(elapsed);
            if (allowance == 0)
            {
                if (_intake.IsCancellationRequested)
                {
                    // Draining during the start-up catch-up: the paced backlog stays stored for the next start.
                    return;
                }
                await WaitAsync(pacer.UntilNext(elapsed), cancellationToken);
                continue;
            }

            var nowMs = NowMs();
            // Peek at the head first: a wake-up with nothing due (the common case while timers
            // are far off) copies one item, not a page.
            var head = _store.Read(r => r.Scan(KeySpace.Schedule, _prefix, 1));
            if (head.Count == 0 || (_intake.IsCancellationRequested && StoreKeys.ScheduleDue(head[0].Key) > nowMs))
            {
                if (_intake.IsCancellationRequested)
                {
                    return;
                }
                await WaitAsync(_options.SchedulerMaxSleep, cancellationToken);
                continue;
            }
            if (StoreKeys.ScheduleDue(head[0].Key) is { } headDue && headDue > nowMs)
            {
                await WaitAsync(TimeSpan.FromMilliseconds(headDue - nowMs), cancellationToken);
                continue;
            }
            var limit = (int)Math.Min(_options.SchedulerConcurrency, allowance);
            var page = _store.Read(r => r.Scan(KeySpace.Schedule, _prefix, limit));
            var due = new List<KeyValuePair<byte[], byte[]>>(page.Count);
            long? next = null;
            foreach (var item in page)
            {
                // A key whose due time does not parse is handed on as due: firing quarantines it.
                var dueMs = StoreKeys.ScheduleDue(item.Key) ?? long.MinValue;
                if (dueMs > nowMs)
                {
                    next = dueMs;
                    break;
                }
                due.Add(item);
            }
            if (due.Count == 0)
            {
                await WaitAsync(next is { } n ? TimeSpan.FromMilliseconds(n - nowMs) : _options.SchedulerMaxSleep, cancellationToken);
                continue;
            }
            if (pacer.Active)
            {
                var fromBacklog = due.Count(item => (StoreKeys.ScheduleDue(item.Key) ?? long.MinValue) < startMs);
                if (fromBacklog == 0)
                {
                    pacer.Finish();
                }
                else
                {
                    pacer.Released(fromBacklog);
                }
            }

            var failed = await FireAsync(due, cancellationToken);
            if (failed > 0)
            {
                SagasLog.SchedulerPublishFailed(_logger, _partition.Value, failed, backoff.TotalMilliseconds);
                await Task.Delay(backoff, _time, cancellationToken);
                backoff = TimeSpan.FromMilliseconds(Math.Min(backoff.TotalMilliseconds * 2, 5_000));
            }
            else
            {
                backoff = TimeSpan.FromMilliseconds(100);
            }
        }
    }

    /// <summary>Sleeps for <paramref name="delay"/> (at most the max sleep) or until the worker pulses.</summary>
    private async Task WaitAsync(TimeSpan delay, CancellationToken cancellationToken)
    {
        if (delay > _options.SchedulerMaxSleep)
        {
            delay = _options.SchedulerMaxSleep;
        }
        if (delay < TimeSpan.FromMilliseconds(1))
        {
            delay = TimeSpan.FromMilliseconds(1);
        }
        using var timeout = new CancellationTokenSource(delay, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token, _intake);
        try
        {
            await _signal.WaitAsync(linked.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // the delay ran out
        }
    }

    private long NowMs() => _time.GetUtcNow().ToUnixTimeMilliseconds();
}
