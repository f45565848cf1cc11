using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Text.Json;
using Runner.Core;
using Runner.Core.Keys;
using Runner.Core.Transitions;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

public sealed class SchedulerRestartTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Timers_that_came_due_while_the_runtime_was_down_fire_exactly_once_after_restart()
    {
        var fired = await RunDowntimeAsync(instances: 10, timersPerInstance: 2);
        Assert.Equal(20, fired);
    }

    [Fact]
    public async Task Backlog_of_200_overdue_timers_fires_each_exactly_once()
    {
        var lags = new ConcurrentBag<double>();
        var counted = 0L;
        using var meters = new MeterListener();
        meters.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == SagasTelemetry.MeterName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        meters.SetMeasurementEventCallback<double>((instrument, value, _, _) =>
        {
            if (instrument.Name == SagasTelemetry.SchedulerLag)
            {
                lags.Add(value);
            }
        });
        meters.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
        {
            if (instrument.Name == SagasTelemetry.TimersFired)
            {
                Interlocked.Add(ref counted, value);
            }
        });
        meters.Start();

        var fired = await RunDowntimeAsync(instances: 20, timersPerInstance: 10);

        Assert.Equal(200, fired);
        // Other test classes fire timers in parallel on the same static meter: at least ours were measured. The
        // scheduler counts a timer after its own delete commit, which may come after the worker's transition deleted
        // the timer's key: waited for, not read at once.
        await SagaHarness.WaitUntilAsync(() => Interlocked.Read(ref counted) >= 200, TimeSpan.FromSeconds(30), "runner.scheduler.fired to count 200");
        Assert.True(lags.Count >= 200, $"runner.scheduler.lag recorded {lags.Count} times");
        Assert.True(lags.Count(l => l > 0) >= 200, "the backlog fired late, and the lag says so");
    }

    /// <summary>
    /// Sets timers, stops the runtime before any is due, waits (while it is down) until all are
    /// overdue, starts a new runtime on the same LMDB file, and checks each timer reached its saga
    /// once. Returns how many distinct timer events reached WORKFLOW_EVENTS.
    /// </summary>
    private async Task<int> RunDowntimeAsync(int instances, int timersPerInstance)
    {
        // A 5 s catch-up window: the spread checked below (at least 1 s) keeps 4 s of room for a test process
        // starved while the new runtime starts, which fires the slots it missed together.
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Timed(), o => o with { Partitions = 4, SchedulerCatchUpWindow = TimeSpan.FromSeconds(5) });
        using var cts = new CancellationTokenSource(s_wait);
        for (var i = 0; i < instances; i++)
        {
            var schedules = Enumerable.Range(0, timersPerInstance).Select(t => (object)new { name = $"t{t}", after_ms = 8000 + (t * 10) }).ToArray();
            await Timers.SetAsync(h, $"k{i}", $"set-k{i}", schedules, cancellationToken: cts.Token);
        }
        await SagaHarness.WaitUntilAsync(() => h.Count(KeySpace.Schedule) == instances * timersPerInstance, s_wait, "every timer stored");
        var lastDue = Enumerable.Range(0, instances).Max(i => h.Instance("acme", "timed", $"k{i}")!.Timers!.Values.Max());
        await h.StopRuntimeAsync();
        Assert.Empty(await Timers.EventsAsync(h, cts.Token)); // nothing was due before the stop

        await SagaHarness.WaitUntilAsync(() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() > lastDue, s_wait, "every timer to come due during the downtime");
        await h.StartRuntimeAsync();

        var versions = 1 + timersPerInstance;
        await SagaHarness.WaitUntilAsync(
            // The listener hears of a commit after the store holds it: wait for both.
            () => h.Count(KeySpace.Schedule) == 0 && Enumerable.Range(0, instances).All(i => h.Instance("acme", "timed", $"k{i}")!.Version == versions)
                && h.Listener.Count >= instances * versions,
            s_wait, "every overdue timer to reach its saga");

        var events = await Timers.EventsAsync(h, cts.Token);
        var ids = events.Select(Timers.Id).ToList();
        Assert.Equal(ids.Count, ids.Distinct(StringComparer.Ordinal).Count());
        Assert.Equal(instances * timersPerInstance, ids.Count);
        for (var i = 0; i < instances; i++)
        {
            var instance = h.Instance("acme", "timed", $"k{i}")!;
            var fired = Timers.FiredOf(instance);
            Assert.Equal(Enumerable.Range(0, timersPerInstance).Select(t => $"t{t}").Order(StringComparer.Ordinal), fired.Select(f => f.Name).Order(StringComparer.Ordinal));
            Assert.All(fired, f => Assert.Equal(f.Due, f.Now));
            Assert.Null(instance.Timers);
        }
        Assert.Equal(instances * versions, h.Listener.Count);
        var outcomes = h.Store!.Read(r => r.Scan(KeySpace.Dedupe, [], 100_000))
            .Select(kv => JsonSerializer.Deserialize(kv.Value, CoreJsonContext.Default.DedupeRecord)!.Outcome).Distinct().ToList();
        Assert.Equal([DedupeRecord.Applied], outcomes);

        // The catch-up spreads a backlog over its window (5 s here) instead of firing it as one storm:
        // the stream's own timestamps show the spread. Without pacing, 200 go out within ~0.1 s.
        if (ids.Count >= 100)
        {
            var stamps = new List<DateTimeOffset>();
            var consumer = await h.Js.CreateOrderedConsumerAsync("WORKFLOW_EVENTS", cancellationToken: cts.Token);
            await foreach (var msg in consumer.ConsumeAsync<byte[]>(cancellationToken: cts.Token))
            {
                stamps.Add(msg.Metadata!.Value.Timestamp);
                if (stamps.Count == ids.Count)
                {
                    break;
                }
            }
            var spread = stamps.Max() - stamps.Min();
            Assert.True(spread >= TimeSpan.FromSeconds(1), $"the backlog went out within {spread.TotalMilliseconds} ms");
        }
        return ids.Count;
    }
}
