using System.Text.Json;
using NATS.Client.Core;
using Runner.Core;
using Runner.Core.Events;
using Runner.Core.Ids;
using Runner.Core.Keys;
using Runner.Core.Transitions;
using Runner.Sagas.Instances;
using Runner.Sagas.Manifests;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>A reset control message takes an instance back to an earlier version and replays the rest with the current script.</summary>
public sealed class ResetTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);

    private const string Manifest = """
        kind: saga
        name: tally
        script: tally.js
        triggers:
          - stream: AGGREGATE_EVENTS
            subject: "aggregate.*.tally.*.>"
            correlation: "subject[3]"
        """;

    /// <summary>The bad version doubles what it adds; each event commands ledger.add and sets (again) a reminder.</summary>
    private static string Script(int factor) => $$"""
        'use strict';
        function on_event(state, event, ctx) {
          state = state || { order: [] };
          return { state: { order: state.order.concat([event.data.n * {{factor}}]) },
                   commands: [{ effect: 'ledger.add', id: ctx.id('add'), payload: { n: event.data.n * {{factor}} } }],
                   schedules: [{ name: 'reminder', after_ms: 600000 }] };
        }
        """;

    private static Dictionary<string, string> Files(int factor) => new()
    {
        ["tally.yaml"] = Manifest,
        ["tally.js"] = Script(factor),
        ["effects.yaml"] = TestSagas.LedgerEffect,
    };

    [Fact]
    public async Task Reset_replays_from_the_target_with_the_current_script_and_commands_keep_their_ids()
    {
        await using var h = await SagaHarness.StartAsync(nats, Files(factor: 2));
        using var cts = new CancellationTokenSource(s_wait);
        foreach (var n in new[] { 1, 2, 3 })
        {
            await h.PublishAsync("aggregate.acme.tally.t.added", SagaHarness.CloudEvent($"t-{n}", "added", new { n }), cancellationToken: cts.Token);
        }
        await SagaHarness.WaitUntilAsync(() => h.Instance("acme", "tally", "t")?.Version == 3, s_wait, "three transitions with the bad version");
        Assert.Equal([2, 4, 6], Order(h.Instance("acme", "tally", "t")!));
        var commands = await WaitCommandsAsync(h, 3, cts.Token);

        // A reset that names the wrong current version, or an impossible target, changes nothing.
        await ResetAsync(h, "t", to: 0, from: 2, cts.Token);
        await ResetAsync(h, "t", to: 7, from: 3, cts.Token);
        await h.PublishAsync("aggregate.acme.tally.other.added", SagaHarness.CloudEvent("o-1", "added", new { n = 1 }), cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Instance("acme", "tally", "other") is not null, s_wait, "a later event: the resets before it are applied");
        Assert.Equal(3, h.Instance("acme", "tally", "t")!.Version);

        // The fix goes live; reset to 1 replays t-2 and t-3 with it from the state after t-1.
        var before = History(h, "t");
        await h.SwapAsync(Files(factor: 1), "fixed", cts.Token);
        await ResetAsync(h, "t", to: 1, from: 3, cts.Token);
        await SagaHarness.WaitUntilAsync(() => History(h, "t") is { Count: 3 } now && now[1].InboxSequence != before[1].InboxSequence, s_wait, "the reset: two replayed steps");
        var reset = h.Instance("acme", "tally", "t")!;
        Assert.Equal(3, reset.Version);
        Assert.Equal([2, 2, 3], Order(reset));
        var history = History(h, "t");
        Assert.Equal([1L, 2L, 3L], history.Select(s => s.Version));
        Assert.Equal(["t-1", "t-2", "t-3"], history.Select(s => s.EventId));
        Assert.Equal(before[0].StateHash, history[0].StateHash);
        Assert.Equal(history[1].InboxSequence, history[2].InboxSequence); // both replayed by the one control message
        // The replayed commands have the ids they had: the stream's duplicate window (and the
        // effect workers' claims behind it) keeps them from being performed again.
        Assert.Equal(before[1].Commands[0].Id, history[1].Commands[0].Id);
        Assert.Equal(2, history[1].Commands[0].Payload.GetProperty("n").GetInt32());
        await h.PublishAsync("aggregate.acme.tally.t.added", SagaHarness.CloudEvent("t-4", "added", new { n = 4 }), cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Instance("acme", "tally", "t")?.Version == 4, s_wait, "a new event after the reset");
        Assert.Equal([2, 2, 3, 4], Order(h.Instance("acme", "tally", "t")!));
        var after = await WaitCommandsAsync(h, 5, cts.Token); // t-1..t-3, other's, and t-4's: none of the replayed ones again
        Assert.Equal(commands.Select(c => c.CommandId), after.Where(c => c.CorrelationId == "t").Take(3).Select(c => c.CommandId));
        // One reminder, set by the newest transition.
        var schedules = h.Store!.Read(r => r.Scan(KeySpace.Schedule, [], 100)).Select(kv => JsonSerializer.Deserialize(kv.Value, CoreJsonContext.Default.ScheduleRecord)!).Where(r => r.Key == "t").ToList();
        Assert.Equal(4, Assert.Single(schedules).Generation);

        // Reset to 0: a new instance again, every event replayed.
        await ResetAsync(h, "t", to: 0, from: 4, cts.Token);
        await SagaHarness.WaitUntilAsync(() => Order(h.Instance("acme", "tally", "t")!).SequenceEqual([1, 2, 3, 4]), s_wait, "the reset to 0: four replayed steps");
        Assert.Equal(4, h.Instance("acme", "tally", "t")!.Version);
        Assert.Equal(["t-1", "t-2", "t-3", "t-4"], History(h, "t").Select(s => s.EventId));
    }

    [Fact]
    public void A_plan_needs_every_step_from_version_1_and_rebuilds_the_timers_live_at_the_target()
    {
        static HistoryStep Step(long version, string[]? set = null, string[]? cancel = null, string? fired = null) => new()
        {
            Version = version, EventId = $"e-{version}", Type = "x", Time = "2026-01-01T00:00:00Z", Stream = "S", ManifestHash = "m", Handler = "on_event",
            StateHash = "h", State = JsonDocument.Parse($"{{\"v\":{version}}}").RootElement.Clone(), Event = JsonDocument.Parse("{}").RootElement.Clone(),
            Timer = fired, Cancel = [.. cancel ?? []], Schedules = [.. (set ?? []).Select(n => new HistoryTimer { Name = n, DueMs = version * 1000 })],
        };
        var history = new List<HistoryStep> { Step(1, set: ["a", "b"]), Step(2, cancel: ["a"]), Step(3, set: ["c"], fired: "b"), Step(4, set: ["a"]) };
        var (plan, error) = ResetPlan.Make(history, 4, 3);
        Assert.Null(error);
        Assert.Equal("{\"v\":3}", plan!.StateJson);
        Assert.Equal(["c"], plan.Timers.Keys);
        Assert.Equal(3, plan.Timers["c"].SetBy.Version);
        Assert.Equal([4L], plan.Replay.Select(s => s.Version));
        Assert.Equal(["a", "b"], ResetPlan.Make(history, 4, 1).Plan!.Timers.Keys.Order());
        Assert.Null(ResetPlan.Make(history, 4, 0).Plan!.StateJson);

        Assert.Contains("kept from version 2", ResetPlan.Make(history.Skip(1).ToList(), 4, 2).Error, StringComparison.Ordinal);
        Assert.Contains("must be in [0, 3]", ResetPlan.Make(history, 4, 4).Error, StringComparison.Ordinal);
        Assert.Contains("gap", ResetPlan.Make([history[0], history[2]], 2, 0).Error, StringComparison.Ordinal);
        Assert.NotEqual(ResetPlan.Token("a", "s", "k", 4, 1, "x"), ResetPlan.Token("a", "s", "k", 5, 1, "x"));
        Assert.NotEqual(ResetPlan.Token("a", "s", "k", 4, 1, "x"), ResetPlan.Token("a", "s", "k", 4, 1, "y"));
    }

    private static List<int> Order(SagaInstanceRecord record) => [.. record.State.GetProperty("order").EnumerateArray().Select(e => e.GetInt32())];

    private static List<HistoryStep> History(SagaHarness h, string key)
    {
        var id = new InstanceId(new TenantId("acme"), new SagaName("tally"), new CorrelationKey(key));
        return [.. h.Store!.Read(r => r.Scan(KeySpace.History, StoreKeys.HistoryPrefix(Partitioner.PartitionOf(id, h.Options.Partitions), id), 1000))
            .Select(kv => JsonSerializer.Deserialize(kv.Value, CoreJsonContext.Default.HistoryStep)!)];
    }

    private static async Task ResetAsync(SagaHarness h, string key, long to, long from, CancellationToken cancellationToken)
    {
        var id = new InstanceId(new TenantId("acme"), new SagaName("tally"), new CorrelationKey(key));
        var headers = new NatsHeaders
        {
            [EventHeaders.Control] = "reset", [EventHeaders.TenantId] = "acme", [EventHeaders.Saga] = "tally", [EventHeaders.Key] = key,
            [EventHeaders.ResetTo] = to.ToString(System.Globalization.CultureInfo.InvariantCulture),
            [EventHeaders.ResetFrom] = from.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        await h.PublishRawAsync(Core.Subjects.Subjects.Inbox(Partitioner.PartitionOf(id, h.Options.Partitions)), [], headers, cancellationToken: cancellationToken);
    }

    private static async Task<List<CommandMessage>> WaitCommandsAsync(SagaHarness h, int count, CancellationToken cancellationToken)
    {
        List<CommandMessage> commands = [];
        await SagaHarness.WaitUntilAsync(async () => (commands = [.. (await h.CommandsAsync(cancellationToken)).Select(c => c.Command)]).Count >= count, s_wait, $"{count} commands");
        // Settle: anything the relay still publishes would show up now.
        await Task.Delay(300, cancellationToken);
        commands = [.. (await h.CommandsAsync(cancellationToken)).Select(c => c.Command)];
        Assert.Equal(count, commands.Count);
        return commands;
    }
}
