using Runner.Core.Keys;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

public sealed class ReplyRoutingTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Timers_and_effect_results_route_back_to_their_saga_once_with_or_without_a_declared_trigger()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Timed(explicitTwin: true), o => o with { Partitions = 2 });
        using var cts = new CancellationTokenSource(s_wait);
        Assert.Contains(h.Options.JetStream.Streams.WorkflowEvents, h.Manifests.TriggerStreams);
        await Timers.SetAsync(h, "i1", "set-i1", [new { name = "a", after_ms = 200 }], cancellationToken: cts.Token);
        await Timers.SetAsync(h, "i2", "set-i2", [new { name = "a", after_ms = 200 }], saga: "twin", cancellationToken: cts.Token);

        // 'timed' declares no WORKFLOW_EVENTS trigger; 'twin' declares both, and must still see each event once.
        await SagaHarness.WaitUntilAsync(() => h.Instance("acme", "timed", "i1")?.Version == 2 && h.Instance("acme", "twin", "i2")?.Version == 2, s_wait, "both timers");
        await h.PublishAsync("workflow.evt.acme.ledger.add.succeeded", Result("r-1", "timed", "i1"), cancellationToken: cts.Token);
        await h.PublishAsync("workflow.evt.acme.ledger.add.succeeded", Result("r-2", "twin", "i2"), cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Instance("acme", "timed", "i1")?.Version == 3 && h.Instance("acme", "twin", "i2")?.Version == 3, s_wait, "both results");

        Assert.Equal(["set", "timer.fired", "ledger.add.succeeded"], Timers.SeenOf(h.Instance("acme", "timed", "i1")));
        Assert.Equal(["set", "timer.fired", "ledger.add.succeeded"], Timers.SeenOf(h.Instance("acme", "twin", "i2")));
        Assert.Single(Timers.FiredOf(h.Instance("acme", "twin", "i2")));
        // The twin's explicit result trigger also takes timed's result, keyed by its own correlation.
        await SagaHarness.WaitUntilAsync(() => h.Instance("acme", "twin", "i1") is not null, s_wait, "the explicit trigger's copy");
        Assert.Equal(["ledger.add.succeeded"], Timers.SeenOf(h.Instance("acme", "twin", "i1")));
        Assert.Null(h.Instance("acme", "timed", "i2"));
        Assert.Empty(h.Quarantine());
    }

    [Fact]
    public async Task Result_for_a_loaded_saga_without_a_correlation_id_is_quarantined_and_one_for_another_saga_is_skipped()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Timed(), o => o with { Partitions = 1 });
        using var cts = new CancellationTokenSource(s_wait);
        await h.PublishAsync("workflow.evt.acme.ledger.add.succeeded", Result("r-nokey", "timed", null), cancellationToken: cts.Token);
        await h.PublishAsync("workflow.evt.acme.ledger.add.succeeded", Result("r-other", "not-loaded", "x1"), cancellationToken: cts.Token);
        await h.PublishAsync("workflow.evt.acme.ledger.add.succeeded", Result("r-ok", "timed", "x2"), cancellationToken: cts.Token);

        // The router commits its quarantine record after the batch's PubAcks: a worker may commit x2 before it.
        await SagaHarness.WaitUntilAsync(() => h.Instance("acme", "timed", "x2") is not null && h.Quarantine().Count >= 1, s_wait, "the routable result and the quarantined one");
        var record = Assert.Single(h.Quarantine());
        Assert.Equal("no_correlation_key", record.Reason);
        Assert.Equal("router", record.Stage);
        Assert.Equal("timed", record.Saga);
        Assert.Contains("correlation_id", record.Detail, StringComparison.Ordinal);
        Assert.Null(h.Instance("acme", "timed", "x1"));
    }

    [Fact]
    public async Task Command_for_an_undeclared_effect_parks_the_instance_as_unknown_effect_and_nothing_of_it_commits()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Timed(), o => o with { Partitions = 1 });
        using var cts = new CancellationTokenSource(s_wait);
        await Timers.SetAsync(h, "u1", "set-u1", [new { name = "later", after_ms = 600_000 }], cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Instance("acme", "timed", "u1")?.Version == 1, s_wait, "the first transition");
        await h.PublishAsync("aggregate.acme.timed.u1.command", SagaHarness.CloudEvent("cmd-u1", "command", new { effect = "nope.never" }), cancellationToken: cts.Token);
        await h.PublishAsync("aggregate.acme.timed.u1.noop", SagaHarness.CloudEvent("noop-u1", "noop", new { }), cancellationToken: cts.Token);

        // The instance parks on the bad event; the one after it is held behind it.
        await SagaHarness.WaitUntilAsync(() => h.Count(KeySpace.Held) == 2, s_wait, "the bad event and the one after it held");
        var parked = h.Instance("acme", "timed", "u1")!;
        Assert.Equal((1L, "cmd-u1", "unknown_effect"), (parked.Version, parked.Parked!.EventId, parked.Parked.Reason));
        var record = Assert.Single(h.Quarantine());
        Assert.Equal("unknown_effect", record.Reason);
        Assert.Equal("saga", record.Stage);
        Assert.Equal("timed", record.Saga);
        Assert.Equal("u1", record.Key);
        Assert.Contains("'nope.never'", record.Detail, StringComparison.Ordinal);
        Assert.True(record.Parked);
        Assert.Equal(["set"], Timers.SeenOf(h.Instance("acme", "timed", "u1")));
        Assert.Equal(1, h.Count(KeySpace.Dedupe));
        Assert.Equal(1, h.Count(KeySpace.Schedule));
        Assert.Equal(0, h.Count(KeySpace.Outbox));
        Assert.Empty(await h.CommandsAsync(cts.Token));
    }

    private static System.Text.Json.Nodes.JsonObject Result(string id, string saga, string? correlationId) =>
        SagaHarness.CloudEvent(id, "ledger.add.succeeded", new
        {
            command_id = "cmd-" + id,
            correlation_id = correlationId,
            saga,
            effect = "ledger.add",
            outcome = "succeeded",
            attempts = 1,
            result = new { reference = "ref-" + id },
        }, source: "runner/effects");
}
