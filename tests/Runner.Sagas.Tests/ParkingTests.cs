using System.Text.Json;
using NATS.Client.Core;
using Runner.Core;
using Runner.Core.Events;
using Runner.Core.Ids;
using Runner.Core.Keys;
using Runner.Core.Transitions;
using Runner.Sagas.Manifests;
using Runner.Sagas.Quarantine;
using Runner.Scripting;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>A failed transition parks its instance, not its partition; resume, skip and cancel go through the inbox.</summary>
public sealed class ParkingTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(60);

    private const string Manifest = """
        kind: saga
        name: ledger
        script: ledger.js
        triggers:
          - stream: AGGREGATE_EVENTS
            subject: "aggregate.*.ledger.*.>"
            correlation: "subject[3]"
        """;

    /// <summary>Folds data.n; v1 throws on 13 (the poison), the fix does not. Compensate marks the instance cancelled and ends it.</summary>
    private static string Script(bool fixedVersion) => $$"""
        'use strict';
        function on_event(state, event, ctx) {
          state = state || { order: [] };
          if (event.data.n === 13 && {{(fixedVersion ? "false" : "true")}}) { throw new Error('unlucky ' + event.data.n); }
          return { state: { order: state.order.concat([event.data.n]) },
                   commands: [{ effect: 'ledger.add', id: ctx.id('add'), payload: { n: event.data.n } }] };
        }
        function compensate(state, event, ctx) {
          return { state: { order: (state || { order: [] }).order, cancelled: event.id }, done: true };
        }
        """;

    private static Dictionary<string, string> Files(bool fixedVersion) => new()
    {
        ["ledger.yaml"] = Manifest,
        ["ledger.js"] = Script(fixedVersion),
        ["effects.yaml"] = TestSagas.LedgerEffect,
    };

    [Fact]
    public async Task A_poisoned_instance_parks_while_its_partition_flows_and_resumes_to_the_exact_fold_after_a_fix()
    {
        // One partition: the poisoned instance and the 1,000 others share it.
        await using var h = await SagaHarness.StartAsync(nats, Files(fixedVersion: false), o => o with { Partitions = 1 });
        using var cts = new CancellationTokenSource(s_wait);
        var poisoned = new[] { 1, 2, 13, 4, 5 };
        for (var i = 0; i < 1000; i++)
        {
            if (i % 200 == 0)
            {
                var n = poisoned[i / 200];
                await h.PublishAsync("aggregate.acme.ledger.p.added", SagaHarness.CloudEvent($"p-{n}", "added", new { n }), cancellationToken: cts.Token);
            }
            await h.PublishAsync($"aggregate.acme.ledger.o{i}.added", SagaHarness.CloudEvent($"o-{i}", "added", new { n = 100 + i }), cancellationToken: cts.Token);
        }
        await SagaHarness.WaitUntilAsync(() => h.Listener.Count == 1002, s_wait, "1,000 others and p's two events before the poison applied");
        await SagaHarness.WaitUntilAsync(() => h.Count(KeySpace.Held) == 3, s_wait, "13, 4 and 5 held for p");
        var parked = h.Instance("acme", "ledger", "p")!;
        Assert.Equal(2, parked.Version);
        Assert.Equal(("p-13", ScriptFailure.ScriptError), (parked.Parked!.EventId, parked.Parked.Reason));
        Assert.Contains("unlucky 13", parked.Parked.Detail, StringComparison.Ordinal);
        Assert.Equal([1, 2], Order(parked));
        var record = Assert.Single(h.Quarantine());
        Assert.Equal(("p", ScriptFailure.ScriptError), (record.Key, record.Reason));
        Assert.Contains("instance parked", record.Detail, StringComparison.Ordinal);
        Assert.Equal(1000, Enumerable.Range(0, 1000).Count(i => h.Instance("acme", "ledger", $"o{i}")?.Version == 1));

        // Later events keep coming while it is parked: held behind the others, in order.
        await h.PublishAsync("aggregate.acme.ledger.p.added", SagaHarness.CloudEvent("p-6", "added", new { n = 6 }), cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Count(KeySpace.Held) == 4, s_wait, "p-6 held");

        // Resume without a fix: it parks again on the same event, nothing else changes.
        await ControlAsync(h, "resume", "p", cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Quarantine().Count == 2, s_wait, "the second failure recorded");
        Assert.Equal((2L, "p-13"), (h.Instance("acme", "ledger", "p")!.Version, h.Instance("acme", "ledger", "p")!.Parked!.EventId));
        Assert.Equal(4, h.Count(KeySpace.Held));

        // The fix goes live; resume runs 13, 4, 5, 6 in order with it.
        await h.SwapAsync(Files(fixedVersion: true), "fixed", cts.Token);
        await ControlAsync(h, "resume", "p", cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Instance("acme", "ledger", "p")?.Version == 6, s_wait, "p resumed to version 6");
        var resumed = h.Instance("acme", "ledger", "p")!;
        Assert.Null(resumed.Parked);
        Assert.Equal([1, 2, 13, 4, 5, 6], Order(resumed));
        Assert.Equal(0, h.Count(KeySpace.Held));
        var commands = await WaitCommandsAsync(h, 1006, cts.Token);
        Assert.Equal([1, 2, 13, 4, 5, 6], commands.Where(c => c.CorrelationId == "p").Select(c => c.Payload.GetProperty("n").GetInt32()));

        // A later event applies at once.
        await h.PublishAsync("aggregate.acme.ledger.p.added", SagaHarness.CloudEvent("p-7", "added", new { n = 7 }), cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Instance("acme", "ledger", "p")?.Version == 7, s_wait, "p-7 applied");
    }

    [Fact]
    public async Task Skip_drops_the_failed_event_with_a_record_and_cancel_runs_compensate()
    {
        await using var h = await SagaHarness.StartAsync(nats, Files(fixedVersion: false));
        using var cts = new CancellationTokenSource(s_wait);
        foreach (var key in new[] { "s", "c" })
        {
            foreach (var n in new[] { 1, 13, 3 })
            {
                await h.PublishAsync($"aggregate.acme.ledger.{key}.added", SagaHarness.CloudEvent($"{key}-{n}", "added", new { n }), cancellationToken: cts.Token);
            }
        }
        await SagaHarness.WaitUntilAsync(() => h.Count(KeySpace.Held) == 4, s_wait, "two parked instances with two held each");

        await ControlAsync(h, "skip", "s", cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Instance("acme", "ledger", "s")?.Version == 2, s_wait, "s skipped 13 and applied 3");
        Assert.Equal([1, 3], Order(h.Instance("acme", "ledger", "s")!));
        Assert.Null(h.Instance("acme", "ledger", "s")!.Parked);
        Assert.Equal(DedupeRecord.Skipped, Marker(h, "s", "s-13")!.Outcome);
        // A copy of the skipped event is not applied later either.
        await h.PublishAsync("aggregate.acme.ledger.s.added", SagaHarness.CloudEvent("s-13", "added", new { n = 13 }), msgId: "copy-of-s-13", cancellationToken: cts.Token);
        await h.PublishAsync("aggregate.acme.ledger.s.added", SagaHarness.CloudEvent("s-4", "added", new { n = 4 }), cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Instance("acme", "ledger", "s")?.Version == 3, s_wait, "s-4 applied");
        Assert.Equal([1, 3, 4], Order(h.Instance("acme", "ledger", "s")!));
        Assert.Null(h.Instance("acme", "ledger", "s")!.Parked);

        await ControlAsync(h, "cancel", "c", cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Instance("acme", "ledger", "c")?.Done == true, s_wait, "c compensated and done");
        var cancelled = h.Instance("acme", "ledger", "c")!;
        Assert.Equal("c-13", cancelled.State.GetProperty("cancelled").GetString());
        Assert.Equal([1], Order(cancelled));
        Assert.Equal(DedupeRecord.IgnoredCompleted, Marker(h, "c", "c-3")!.Outcome);
        Assert.Equal(0, h.Count(KeySpace.Held));
    }

    [Fact]
    public async Task Control_messages_for_an_instance_that_is_not_parked_change_nothing_and_malformed_ones_are_quarantined()
    {
        await using var h = await SagaHarness.StartAsync(nats, Files(fixedVersion: false));
        using var cts = new CancellationTokenSource(s_wait);
        await h.PublishAsync("aggregate.acme.ledger.fine.added", SagaHarness.CloudEvent("f-1", "added", new { n = 1 }), cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Instance("acme", "ledger", "fine")?.Version == 1, s_wait, "fine applied");
        await ControlAsync(h, "skip", "fine", cts.Token);
        var bad = new NatsHeaders { [EventHeaders.Control] = "explode", [EventHeaders.TenantId] = "acme", [EventHeaders.Saga] = "ledger", [EventHeaders.Key] = "fine" };
        await h.PublishRawAsync(Core.Subjects.Subjects.Inbox(PartitionOf(h, "fine")), [], bad, cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Quarantine().Count == 1, s_wait, "the malformed control message quarantined");
        Assert.Equal(QuarantineRecords.InvalidControl, h.Quarantine()[0].Reason);
        await h.PublishAsync("aggregate.acme.ledger.fine.added", SagaHarness.CloudEvent("f-2", "added", new { n = 2 }), cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Instance("acme", "ledger", "fine")?.Version == 2, s_wait, "f-2 applied");
        Assert.Equal([1, 2], Order(h.Instance("acme", "ledger", "fine")!));
        Assert.Equal(DedupeRecord.Applied, Marker(h, "fine", "f-1")!.Outcome);
    }

    [Fact]
    public async Task A_parked_instance_and_its_held_events_move_with_the_partition_to_an_empty_volume()
    {
        await using var set = await ReplicaSet.CreateAsync(nats.Url, Files(fixedVersion: false), o => o with { Partitions = 2, SnapshotInterval = TimeSpan.FromHours(1) });
        using var cts = new CancellationTokenSource(s_wait);
        var a = await set.StartAsync("a");
        foreach (var n in new[] { 1, 13, 3 })
        {
            await set.PublishAsync("aggregate.acme.ledger.m.added", $"m-{n}", new { n }, cts.Token);
        }
        await SagaHarness.WaitUntilAsync(() => a.Instance("acme", "ledger", "m")?.Parked is not null && a.Store!.Read(r => r.Count(KeySpace.Held)) == 2, s_wait, "m parked with two held");
        await a.Runtime!.DrainAsync(cts.Token);
        await a.StopAsync();
        await set.PublishAsync("aggregate.acme.ledger.m.added", "m-4", new { n = 4 }, cts.Token); // after the snapshot: replayed
        a.Wipe();

        // The fixed version runs on the new replica; the control message goes through the inbox like any event.
        var fixedDir = Path.Combine(set.Dir.Path, "fixed");
        Directory.CreateDirectory(fixedDir);
        foreach (var (name, text) in Files(fixedVersion: true))
        {
            await File.WriteAllTextAsync(Path.Combine(fixedDir, name), text, cts.Token);
        }
        var b = await set.StartAsync("b", fixedDir);
        await SagaHarness.WaitUntilAsync(() => b.Store!.Read(r => r.Count(KeySpace.Held)) == 3, s_wait, "m restored parked, with 13, 3 and the replayed 4 held");
        Assert.Equal("m-13", b.Instance("acme", "ledger", "m")!.Parked!.EventId);
        var control = new NatsHeaders { [EventHeaders.Control] = "resume", [EventHeaders.TenantId] = "acme", [EventHeaders.Saga] = "ledger", [EventHeaders.Key] = "m" };
        var id = new InstanceId(new TenantId("acme"), new SagaName("ledger"), new CorrelationKey("m"));
        Messaging.PubAcks.EnsureStored(await set.Js.PublishAsync(Core.Subjects.Subjects.Inbox(Partitioner.PartitionOf(id, 2)), Array.Empty<byte>(), headers: control, cancellationToken: cts.Token));
        await SagaHarness.WaitUntilAsync(() => b.Instance("acme", "ledger", "m")?.Version == 4, s_wait, "m resumed on b");
        Assert.Equal([1, 13, 3, 4], Order(b.Instance("acme", "ledger", "m")!));
    }

    private static List<int> Order(SagaInstanceRecord record) => [.. record.State.GetProperty("order").EnumerateArray().Select(e => e.GetInt32())];

    private static PartitionId PartitionOf(SagaHarness h, string key) =>
        Partitioner.PartitionOf(new InstanceId(new TenantId("acme"), new SagaName("ledger"), new CorrelationKey(key)), h.Options.Partitions);

    private static DedupeRecord? Marker(SagaHarness h, string key, string eventId)
    {
        var id = new InstanceId(new TenantId("acme"), new SagaName("ledger"), new CorrelationKey(key));
        var raw = h.Store!.Read(r => r.Get(KeySpace.Dedupe, StoreKeys.Dedupe(PartitionOf(h, key), id, eventId)));
        return raw is null ? null : JsonSerializer.Deserialize(raw, CoreJsonContext.Default.DedupeRecord);
    }

    /// <summary>Publishes an operator's control message to the instance's partition inbox, as the CLI and the admin endpoint do.</summary>
    private static async Task ControlAsync(SagaHarness h, string action, string key, CancellationToken cancellationToken)
    {
        var headers = new NatsHeaders { [EventHeaders.Control] = action, [EventHeaders.TenantId] = "acme", [EventHeaders.Saga] = "ledger", [EventHeaders.Key] = key };
        await h.PublishRawAsync(Core.Subjects.Subjects.Inbox(PartitionOf(h, key)), [], headers, cancellationToken: cancellationToken);
    }

    private static async Task<List<CommandMessage>> WaitCommandsAsync(SagaHarness h, int count, CancellationToken cancellationToken)
    {
        List<CommandMessage> commands = [];
        await SagaHarness.WaitUntilAsync(async () => (commands = [.. (await h.CommandsAsync(cancellationToken)).Select(c => c.Command)]).Count >= count, s_wait, $"{count} commands");
        Assert.Equal(count, commands.Count);
        return commands;
    }
}
