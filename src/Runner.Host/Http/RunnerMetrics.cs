using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using Polly.CircuitBreaker;
using Prometheus;
using Runner.Core.Ids;
using Runner.Core.Keys;
using Runner.Effects.Resilience;
using Runner.Host.Operations;
using Runner.Host.Service;

namespace Runner.Host.Http;

/// <summary>
/// The gauges read at scrape time (consumer lag, outbox and schedule depth, map usage, breaker
/// states, drain state). Counters and histograms come from the <c>Runner.*</c> meters through
/// <see cref="MeterBridge"/>; .NET runtime metrics from prometheus-net's own meter adapter.
/// </summary>
internal sealed class RunnerMetrics
{
    private static readonly TimeSpan s_consumerTimeout = TimeSpan.FromSeconds(2);

    private readonly RunnerControl _control;
    private readonly TimeProvider _time;
    private readonly Gauge _pending;
    private readonly Gauge _ackPending;
    private readonly Gauge _redelivered;
    private readonly Gauge _outbox;
    private readonly Gauge _schedules;
    private readonly Gauge _overdue;
    private readonly Gauge _scheduleLag;
    private readonly Gauge _mapSize;
    private readonly Gauge _mapUsed;
    private readonly Gauge _breakers;
    private readonly Gauge _held;
    private readonly Gauge _ready;
    private readonly Gauge _draining;
    private readonly Gauge _manifest;
    private readonly Gauge _owned;
    private readonly Gauge _epoch;
    private readonly Gauge _snapshotBytes;
    private readonly Gauge _snapshotAge;
    private readonly Gauge _snapshotLag;

    public RunnerMetrics(RunnerControl control, TimeProvider time, CollectorRegistry registry)
    {
        _control = control;
        _time = time;
        var factory = Metrics.WithCustomRegistry(registry);
        _pending = factory.CreateGauge("runner_consumer_pending", "Messages on the stream not yet delivered to the consumer (lag)", "stream", "consumer");
        _ackPending = factory.CreateGauge("runner_consumer_ack_pending", "Messages delivered to the consumer and not yet acknowledged", "stream", "consumer");
        _redelivered = factory.CreateGauge("runner_consumer_redelivered", "Messages the consumer has redelivered and not yet acknowledged", "stream", "consumer");
        _outbox = factory.CreateGauge("runner_outbox_depth", "Commands committed and not yet published");
        _schedules = factory.CreateGauge("runner_schedule_depth", "Timers stored (pending) in owned partitions");
        _overdue = factory.CreateGauge("runner_schedule_overdue", "Timers due and not yet fired");
        _scheduleLag = factory.CreateGauge("runner_schedule_lag_seconds", "Age of the oldest timer that is due and not yet fired");
        _mapSize = factory.CreateGauge("runner_lmdb_map_size_bytes", "LMDB map size");
        _mapUsed = factory.CreateGauge("runner_lmdb_map_used_bytes", "LMDB map bytes in use (up to the last page written)");
        _breakers = factory.CreateGauge("runner_breaker_state", "Circuit breaker state per effect and upstream: 0 closed, 1 half-open, 2 open, 3 isolated", "effect", "upstream");
        _held = factory.CreateGauge("runner_effect_held", "Commands held back (claimed, not attempted) because the circuit to their upstream is open, per effect and upstream", "effect", "upstream");
        _ready = factory.CreateGauge("runner_ready", "1 while the runner takes work (started, not draining, not stopping)");
        _draining = factory.CreateGauge("runner_draining", "1 while draining or drained");
        _manifest = factory.CreateGauge("runner_manifest_info", "The manifest version running (value 1)", "version");
        _owned = factory.CreateGauge("runner_partitions_owned", "Partitions this replica holds a lease on");
        _epoch = factory.CreateGauge("runner_partition_epoch", "Epoch of each partition this replica holds", "partition");
        _snapshotBytes = factory.CreateGauge("runner_partition_snapshot_bytes", "Size of the newest stored snapshot of each partition this replica holds", "partition");
        _snapshotAge = factory.CreateGauge("runner_partition_snapshot_age_seconds", "Age of the newest stored snapshot of each partition this replica holds", "partition");
        _snapshotLag = factory.CreateGauge("runner_partition_snapshot_lag", "Inbox sequences between the newest snapshot and the committed checkpoint (what a new owner would replay at most)", "partition");
        registry.AddBeforeCollectCallback(UpdateAsync);
    }

    private async Task UpdateAsync(CancellationToken cancellationToken)
    {
        var state = _control.State;
        _ready.Set(state == "running" ? 1 : 0);
        _draining.Set(state is "draining" or "drained" ? 1 : 0);
        if (_control.Components is not { } components)
        {
            return;
        }
        foreach (var labels in _manifest.GetAllLabelValues().ToList())
        {
            _manifest.RemoveLabelled(labels);
        }
        _manifest.WithLabels(components.Manifests.Hash[..12]).Set(1);
        try
        {
            Store(components);
        }
        catch (ObjectDisposedException)
        {
            return; // stopping
        }
        if (components.Effects?.Executor is EffectExecutor executor)
        {
            foreach (var breaker in executor.Pipelines.BreakerStates())
            {
                _breakers.WithLabels(breaker.Effect, breaker.Upstream).Set(breaker.State switch
                {
                    CircuitState.Closed => 0,
                    CircuitState.HalfOpen => 1,
                    CircuitState.Open => 2,
                    _ => 3,
                });
                _held.WithLabels(breaker.Effect, breaker.Upstream).Set(breaker.Held);
            }
        }
        await ConsumersAsync(components, cancellationToken);
    }

    private void Store(RunnerComponents components)
    {
        var store = components.Store;
        _mapSize.Set(store.MapSize);
        _mapUsed.Set(store.UsedBytes);
        if (components.Sagas is not { } sagas)
        {
            return;
        }
        _outbox.Set(sagas.Relay.Depth());
        var nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
        Ownership(sagas, nowMs);
        var (depth, overdue, oldestDue) = store.Read(reader =>
        {
            long total = 0, due = 0;
            long? oldest = null;
            foreach (var p in sagas.OwnedPartitions)
            {
                var partition = new PartitionId(p);
                var prefix = StoreKeys.SchedulePrefix(partition);
                total += reader.Visit(KeySpace.Schedule, prefix, (_, _) => { });
                due += reader.CountRange(KeySpace.Schedule, prefix, StoreKeys.ScheduleDueBound(partition, nowMs + 1));
                if (reader.Scan(KeySpace.Schedule, prefix, 1) is [var head] && StoreKeys.ScheduleDue(head.Key) is { } headDue && headDue <= nowMs)
                {
                    oldest = Math.Min(oldest ?? headDue, headDue);
                }
            }
            return (total, due, oldest);
        });
        _schedules.Set(depth);
        _overdue.Set(overdue);
        _scheduleLag.Set(oldestDue is { } o ? (nowMs - o) / 1000.0 : 0);
    }

    /// <summary>Per held partition: its epoch and its newest snapshot's size, age and distance behind the checkpoint.</summary>
    private void Ownership(Sagas.SagaRuntime sagas, long nowMs)
    {
        foreach (var gauge in new[] { _epoch, _snapshotBytes, _snapshotAge, _snapshotLag })
        {
            foreach (var labels in gauge.GetAllLabelValues().ToList())
            {
                gauge.RemoveLabelled(labels);
            }
        }
        var leases = sagas.PartitionLeases;
        _owned.Set(leases.Count);
        foreach (var lease in leases)
        {
            var partition = lease.Partition!.Value.Value.ToString(System.Globalization.CultureInfo.InvariantCulture);
            _epoch.WithLabels(partition).Set(lease.Epoch);
            if (lease.Record.Snapshots is [var newest, ..])
            {
                _snapshotBytes.WithLabels(partition).Set(newest.Bytes);
                _snapshotAge.WithLabels(partition).Set(Math.Max(0, nowMs - newest.AtMs) / 1000.0);
                _snapshotLag.WithLabels(partition).Set(lease.Record.Checkpoint > newest.Sequence ? lease.Record.Checkpoint - newest.Sequence : 0);
            }
        }
    }

    /// <summary>
    /// Lag of every consumer read now. A consumer this scrape could not ask (being re-created, NATS away, past the timeout) or
    /// no longer reads (a partition that moved, a new epoch) has no series rather than an old figure: a stale lag would look current.
    /// </summary>
    private async Task ConsumersAsync(RunnerComponents components, CancellationToken cancellationToken)
    {
        var js = new NatsJSContext(components.Nats);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(s_consumerTimeout);
        var answers = await Task.WhenAll(components.Consumers().Select(async c =>
        {
            try
            {
                return (c.Stream, c.Consumer, Info: (await js.GetConsumerAsync(c.Stream, c.Consumer, timeout.Token)).Info);
            }
            catch (Exception ex) when (ex is NATS.Client.Core.NatsException or OperationCanceledException or TimeoutException)
            {
                return (c.Stream, c.Consumer, Info: (ConsumerInfo?)null); // health says why
            }
        }));
        var answered = answers.Where(a => a.Info is not null).Select(a => (a.Stream, a.Consumer)).ToHashSet();
        foreach (var gauge in new[] { _pending, _ackPending, _redelivered })
        {
            foreach (var labels in gauge.GetAllLabelValues().ToList())
            {
                if (labels is not [var stream, var consumer] || !answered.Contains((stream, consumer)))
                {
                    gauge.RemoveLabelled(labels);
                }
            }
        }
        foreach (var (stream, consumer, info) in answers)
        {
            if (info is not null)
            {
                _pending.WithLabels(stream, consumer).Set(info.NumPending);
                _ackPending.WithLabels(stream, consumer).Set(info.NumAckPending);
                _redelivered.WithLabels(stream, consumer).Set(info.NumRedelivered);
            }
        }
    }
}
