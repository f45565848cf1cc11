using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Reflection;
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
/// starts all the same when it fails. That it records no metric and no span is in
/// <see cref="WarmUpTelemetryTests"/>, which runs alone.
/// </summary>
public sealed class WarmUpTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    [Theory]
    [InlineData(100)]
    [InlineData(2)]
    [InlineData(0)]
    public async Task The_warm_up_runs_its_saga_through_the_worker_on_a_scratch_store_it_deletes_and_asks_nothing_of_NATS(int historyLimit)
    {
        using var dir = new TempDirectory("runner-warm-up");
        var scratch = dir.File(HotPathWarmUp.DirectoryName);
        var nats = NoNats.Create();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));

        var result = await HotPathWarmUp.RunAsync(nats, new SagaRuntimeOptions { Partitions = 16, HistoryLimit = historyLimit }, scratch, cts.Token);

        Assert.Equal(HotPathWarmUp.Instances * HotPathWarmUp.EventsPerInstance, result.Events);
        Assert.Equal(HotPathWarmUp.Groups * HotPathWarmUp.InstancesPerGroup, result.Instances);
        Assert.False(Directory.Exists(scratch), "the scratch store is deleted");
        Assert.Empty(NoNats.CallsOf(nats));
    }

    [Fact]
    public async Task A_warm_up_left_behind_by_a_crash_is_cleared_first_and_a_cancelled_one_leaves_nothing()
    {
        using var dir = new TempDirectory("runner-warm-up");
        var scratch = dir.File(HotPathWarmUp.DirectoryName);
        var nats = NoNats.Create();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await HotPathWarmUp.RunAsync(nats, new SagaRuntimeOptions(), scratch, cts.Token);
        // What a crash in the middle leaves: the marker, a store that is not one.
        Directory.CreateDirectory(Path.Combine(scratch, "store"));
        await File.WriteAllTextAsync(Path.Combine(scratch, HotPathWarmUp.Marker), "left by a crash", cts.Token);
        await File.WriteAllTextAsync(Path.Combine(scratch, "store", "data.mdb"), "not an LMDB file", cts.Token);

        var result = await HotPathWarmUp.RunAsync(nats, new SagaRuntimeOptions(), scratch, cts.Token);
        Assert.Equal(HotPathWarmUp.Instances, result.Instances);

        // Cancelled before it starts, and while it runs (or, on a fast machine, just after): nothing is left either way.
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => HotPathWarmUp.RunAsync(nats, new SagaRuntimeOptions(), scratch, cancelled.Token));
        Assert.False(Directory.Exists(scratch), "a cancelled warm-up deletes its scratch store too");
        using var soon = CancellationTokenSource.CreateLinkedTokenSource(cts.Token);
        soon.CancelAfter(TimeSpan.FromMilliseconds(30));
        try
        {
            await HotPathWarmUp.RunAsync(nats, new SagaRuntimeOptions(), scratch, soon.Token);
        }
        catch (OperationCanceledException) when (soon.IsCancellationRequested)
        {
        }
        Assert.False(Directory.Exists(scratch), "a warm-up cancelled while it runs deletes its scratch store");
        Assert.Empty(NoNats.CallsOf(nats));
    }

    [Fact]
    public async Task A_directory_in_the_warm_ups_place_that_is_not_its_own_is_left_alone()
    {
        using var dir = new TempDirectory("runner-warm-up");
        var scratch = dir.File(HotPathWarmUp.DirectoryName);
        Directory.CreateDirectory(scratch);
        await File.WriteAllTextAsync(Path.Combine(scratch, "notes.txt"), "someone else's");

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => HotPathWarmUp.RunAsync(NoNats.Create(), new SagaRuntimeOptions(), scratch, CancellationToken.None));

        Assert.Contains("is not a warm-up's", error.Message, StringComparison.Ordinal);
        Assert.Equal("someone else's", await File.ReadAllTextAsync(Path.Combine(scratch, "notes.txt")));
    }

    [Fact]
    public async Task A_replica_warms_up_before_its_first_lease_and_its_own_store_holds_nothing_of_it()
    {
        var logs = new ReviewLogs(LogLevel.Information);
        var warmedBeforeFirstLease = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var harness = await SagaHarness.StartAsync(nats, TestSagas.Counter(), o => o with
        {
            Partitions = 2,
            WarmUp = true,
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
        Assert.False(Directory.Exists(Path.Combine(Path.GetDirectoryName(harness.StorePath)!, HotPathWarmUp.DirectoryName)));
    }

    [Fact]
    public async Task A_replica_whose_warm_up_fails_says_so_and_starts_all_the_same()
    {
        var logs = new ReviewLogs(LogLevel.Information);
        await using var harness = await SagaHarness.StartAsync(nats, TestSagas.Counter(), o => o with { Partitions = 2, WarmUp = true }, start: false, loggers: logs);
        // A directory of someone else's where the scratch directory goes: the warm-up leaves it and does not run.
        var foreign = Path.Combine(Path.GetDirectoryName(harness.StorePath)!, HotPathWarmUp.DirectoryName);
        Directory.CreateDirectory(foreign);
        await File.WriteAllTextAsync(Path.Combine(foreign, "keep.txt"), "not the warm-up's");
        await harness.StartRuntimeAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));

        Assert.Contains(logs.Events, l => l.Id == 3025);
        Assert.DoesNotContain(logs.Events, l => l.Id == 3024);
        Assert.True(File.Exists(Path.Combine(foreign, "keep.txt")), "a directory that is not the warm-up's is left as it was");
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

/// <summary>
/// The warm-up records nothing in the replica's metrics and traces. Storage and quarantine metrics
/// carry no saga, so this runs alone: nothing else in the process may record while it listens.
/// </summary>
[Collection(WarmUpTelemetryTests.Serial)]
public sealed class WarmUpTelemetryTests
{
    public const string Serial = "warm-up telemetry, alone";

    [Fact]
    public async Task The_warm_up_records_no_metric_and_no_span()
    {
        using var dir = new TempDirectory("runner-warm-up");
        var measured = new ConcurrentQueue<string>();
        var spans = new ConcurrentQueue<string>();
        using var meters = new MeterListener();
        meters.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name is SagasTelemetry.MeterName or Runner.Storage.StorageTelemetry.MeterName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        void Measured<T>(Instrument instrument, T value, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state) => measured.Enqueue(instrument.Name);
        meters.SetMeasurementEventCallback<long>(Measured);
        meters.SetMeasurementEventCallback<double>(Measured);
        meters.SetMeasurementEventCallback<int>(Measured);
        meters.Start();
        using var activities = new ActivityListener
        {
            ShouldListenTo = source => source.Name == SagasTelemetry.ActivitySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity => spans.Enqueue(activity.DisplayName),
        };
        ActivitySource.AddActivityListener(activities);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));

        var result = await HotPathWarmUp.RunAsync(NoNats.Create(), new SagaRuntimeOptions(), dir.File(HotPathWarmUp.DirectoryName), cts.Token);

        Assert.Equal(HotPathWarmUp.Events, result.Events);
        Assert.Empty(measured);
        Assert.Empty(spans);
    }

    [Fact]
    public void A_quarantine_record_of_a_worker_without_telemetry_is_written_and_not_counted()
    {
        var counted = new ConcurrentQueue<string>();
        using var meters = new MeterListener();
        meters.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument == SagasTelemetry.Quarantined)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        meters.SetMeasurementEventCallback<long>((_, _, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == SagasTelemetry.ReasonTag && tag.Value is "quiet_reason" or "loud_reason")
                {
                    counted.Enqueue((string)tag.Value);
                }
            }
        });
        meters.Start();
        var held = new Runner.Core.Transitions.HeldMessage { InboxSequence = 7, Subject = "runner.inbox.0", Headers = [], Data = "{}"u8.ToArray() };

        var quiet = new Runner.Storage.WriteBatch();
        Quarantine.QuarantineRecords.AddHeld(quiet, held, "RUNNER_INBOX", "saga", "quiet_reason", "a test", 1024, TimeProvider.System,
            "s", "t", "k", new Runner.Core.Ids.PartitionId(0), counted: false);
        var loud = new Runner.Storage.WriteBatch();
        Quarantine.QuarantineRecords.AddHeld(loud, held, "RUNNER_INBOX", "saga", "loud_reason", "a test", 1024, TimeProvider.System,
            "s", "t", "k", new Runner.Core.Ids.PartitionId(0));

        Assert.Equal(1, quiet.Count);
        Assert.Equal(1, loud.Count);
        Assert.Equal(["loud_reason"], counted);
    }
}

[CollectionDefinition(WarmUpTelemetryTests.Serial, DisableParallelization = true)]
public sealed class WarmUpTelemetryCollection;

/// <summary>A JetStream context that answers nothing: it records every call made of it and throws. (Not sealed: a DispatchProxy cannot be.)</summary>
public class NoNats : DispatchProxy
{
    public ConcurrentQueue<string> Calls { get; } = new();

    internal static INatsJSContext Create() => DispatchProxy.Create<INatsJSContext, NoNats>();

    /// <summary>The calls made of a context <see cref="Create"/> made.</summary>
    internal static ConcurrentQueue<string> CallsOf(INatsJSContext js) => ((NoNats)(object)js).Calls;

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        Calls.Enqueue(targetMethod?.Name ?? "?");
        throw new InvalidOperationException($"the warm-up asked NATS for {targetMethod?.Name}");
    }
}
