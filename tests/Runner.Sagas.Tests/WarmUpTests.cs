using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Text;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Core.Keys;
using Runner.Sagas.Partitions;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>
/// The warm-up a saga replica runs before its first lease (<see cref="HotPathWarmUp"/>): the event
/// path on a scratch store, nothing of it on NATS or in the replica's own store, and a replica that
/// starts all the same when it fails.
/// </summary>
public sealed class WarmUpTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    [Fact]
    public async Task The_warm_up_runs_its_saga_through_the_worker_on_a_scratch_store_it_deletes_and_touches_no_NATS()
    {
        using var dir = new TempDirectory("runner-warm-up");
        var scratch = dir.File("warm-up");
        // A connection that never connected: any use of NATS by the warm-up would fail it.
        await using var nowhere = new NatsConnection(new NatsOpts { Url = $"nats://127.0.0.1:{NatsServerFixture.FreePort()}", ConnectTimeout = TimeSpan.FromMilliseconds(200) });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));

        var result = await HotPathWarmUp.RunAsync(new NatsJSContext(nowhere), new SagaRuntimeOptions { Partitions = 16 }, scratch, cts.Token);

        Assert.Equal(HotPathWarmUp.Batches * HotPathWarmUp.InstancesPerBatch * HotPathWarmUp.EventsPerInstance, result.Events);
        Assert.Equal(HotPathWarmUp.Batches * HotPathWarmUp.InstancesPerBatch, result.Instances);
        Assert.False(Directory.Exists(scratch), "the scratch store is deleted");
        Assert.Equal(NatsConnectionState.Closed, nowhere.ConnectionState);
    }

    [Fact]
    public async Task The_warm_up_records_no_span_and_no_metric_of_its_saga()
    {
        using var dir = new TempDirectory("runner-warm-up");
        await using var nowhere = new NatsConnection(new NatsOpts { Url = $"nats://127.0.0.1:{NatsServerFixture.FreePort()}" });
        var measured = new ConcurrentQueue<string>();
        var spans = new ConcurrentQueue<string>();
        using var meters = new MeterListener();
        meters.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == SagasTelemetry.MeterName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        void Measured<T>(Instrument instrument, T value, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
        {
            foreach (var tag in tags)
            {
                if (tag.Key == SagasTelemetry.SagaTag && Equals(tag.Value, HotPathWarmUp.SagaName))
                {
                    measured.Enqueue(instrument.Name);
                }
            }
        }
        meters.SetMeasurementEventCallback<long>(Measured);
        meters.SetMeasurementEventCallback<double>(Measured);
        meters.Start();
        using var activities = new ActivityListener
        {
            ShouldListenTo = source => source.Name == SagasTelemetry.ActivitySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity =>
            {
                if (activity.DisplayName.Contains(HotPathWarmUp.SagaName, StringComparison.Ordinal)
                    || Equals(activity.GetTagItem("runner.saga"), HotPathWarmUp.SagaName))
                {
                    spans.Enqueue(activity.DisplayName);
                }
            },
        };
        ActivitySource.AddActivityListener(activities);

        var result = await HotPathWarmUp.RunAsync(new NatsJSContext(nowhere), new SagaRuntimeOptions(), dir.File("warm-up"), CancellationToken.None);

        Assert.Equal(HotPathWarmUp.Events, result.Events);
        Assert.Empty(measured);
        Assert.Empty(spans);
    }

    [Fact]
    public async Task A_warm_up_left_behind_by_a_crash_is_cleared_first_and_a_cancelled_one_leaves_nothing()
    {
        using var dir = new TempDirectory("runner-warm-up");
        var scratch = dir.File("warm-up");
        Directory.CreateDirectory(Path.Combine(scratch, "store"));
        await File.WriteAllTextAsync(Path.Combine(scratch, "store", "data.mdb"), "not an LMDB file");
        await using var nowhere = new NatsConnection(new NatsOpts { Url = $"nats://127.0.0.1:{NatsServerFixture.FreePort()}" });
        var js = new NatsJSContext(nowhere);

        var result = await HotPathWarmUp.RunAsync(js, new SagaRuntimeOptions(), scratch, CancellationToken.None);
        Assert.Equal(HotPathWarmUp.Batches * HotPathWarmUp.InstancesPerBatch, result.Instances);

        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => HotPathWarmUp.RunAsync(js, new SagaRuntimeOptions(), scratch, cancelled.Token));
        Assert.False(Directory.Exists(scratch), "a cancelled warm-up deletes its scratch store too");
    }

    [Fact]
    public async Task A_replica_warms_up_before_its_first_lease_and_its_own_store_holds_nothing_of_it()
    {
        var logs = new ReviewLogs(LogLevel.Information);
        var warmedBeforeFirstLease = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var harness = await SagaHarness.StartAsync(nats, TestSagas.Counter(), o => o with
        {
            Partitions = 2,
            BeforeLeaseAcquire = (_, _) =>
            {
                warmedBeforeFirstLease.TrySetResult(logs.Has(3024));
                return Task.CompletedTask;
            },
        }, loggers: logs);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));

        Assert.True(await warmedBeforeFirstLease.Task.WaitAsync(cts.Token), "the warm-up was logged before the first lease was asked for");
        var line = logs.Events.Single(l => l.Id == 3024).Message;
        Assert.Contains($"{HotPathWarmUp.Events} events", line, StringComparison.Ordinal);
        Assert.DoesNotContain(logs.Events, l => l.Id == 3025);

        // The replica works as before, and nothing of the warm-up is in its store or next to it.
        await SagaHarness.WaitUntilAsync(() => harness.Runtime!.OwnedPartitions.Count == 2, TimeSpan.FromSeconds(30), "both partitions taken");
        await harness.PublishAsync("aggregate.acme.counter.w-1.added", SagaHarness.CloudEvent("e-1", "added", new { n = 1 }), cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => harness.Listener.Count >= 1, TimeSpan.FromSeconds(30), "the replica's own event applied");
        var keys = new List<string>();
        foreach (var space in KeySpaces.All)
        {
            keys.AddRange(harness.Store!.Read(space, static (reader, space) => reader.Scan(space, default, int.MaxValue)).Select(kv => Encoding.UTF8.GetString(kv.Key)));
        }
        Assert.Contains(keys, k => k.Contains("w-1", StringComparison.Ordinal));
        Assert.DoesNotContain(keys, k => k.Contains(HotPathWarmUp.Tenant, StringComparison.Ordinal));
        Assert.False(Directory.Exists(Path.Combine(Path.GetDirectoryName(harness.StorePath)!, "warm-up")));
    }

    [Fact]
    public async Task A_replica_whose_warm_up_fails_says_so_and_starts_all_the_same()
    {
        var logs = new ReviewLogs(LogLevel.Information);
        await using var harness = await SagaHarness.StartAsync(nats, TestSagas.Counter(), o => o with { Partitions = 2 }, start: false, loggers: logs);
        // A file where the scratch directory goes: the warm-up cannot make its store.
        await File.WriteAllTextAsync(Path.Combine(Path.GetDirectoryName(harness.StorePath)!, "warm-up"), "in the way");
        await harness.StartRuntimeAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));

        Assert.Contains(logs.Events, l => l.Id == 3025);
        Assert.DoesNotContain(logs.Events, l => l.Id == 3024);
        await SagaHarness.WaitUntilAsync(() => harness.Runtime!.OwnedPartitions.Count == 2, TimeSpan.FromSeconds(30), "both partitions taken");
        await harness.PublishAsync("aggregate.acme.counter.w-2.added", SagaHarness.CloudEvent("e-2", "added", new { n = 1 }), cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => harness.Listener.Count >= 1, TimeSpan.FromSeconds(30), "the replica's own event applied");
    }

    [Fact]
    public async Task A_replica_told_not_to_warm_up_does_not()
    {
        var logs = new ReviewLogs(LogLevel.Information);
        await using var harness = await SagaHarness.StartAsync(nats, TestSagas.Counter(), o => o with { Partitions = 2, WarmUp = false }, loggers: logs);

        await SagaHarness.WaitUntilAsync(() => harness.Runtime!.OwnedPartitions.Count == 2, TimeSpan.FromSeconds(30), "both partitions taken");
        Assert.DoesNotContain(logs.Events, l => l.Id is 3024 or 3025);
    }
}
