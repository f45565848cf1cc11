using System.Text.Json.Nodes;
using NATS.Client.Core;
using Runner.Core.Manifests;
using Runner.Testing;
using Xunit;

namespace Runner.Effects.Tests;

/// <summary>
/// The whole loop on real parts: an aggregate event starts a saga, its commands become HTTP calls
/// to a real upstream, the results come back as events, and the saga completes or compensates.
/// </summary>
public sealed class SagaLoopTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(90);

    private const string Script = """
        'use strict';
        function on_event(state, event, ctx) {
          if (event.type === 'order.created') {
            if (state !== null) { return { state: state }; }
            return {
              state: { status: 'charging', order_id: event.data.order_id, amount: event.data.amount },
              commands: [{ effect: 'payment.charge', id: ctx.id('charge'), payload: { order_id: event.data.order_id, amount: event.data.amount } }],
            };
          }
          if (state === null) { return { state: null }; }
          if (event.type === 'payment.charge.succeeded') {
            return {
              state: Object.assign({}, state, { status: 'shipping', payment_ref: event.data.result.reference, charge_attempts: event.data.attempts }),
              commands: [{ effect: 'shipment.create', id: ctx.id('ship'), payload: { order_id: state.order_id } }],
            };
          }
          if (event.type === 'shipment.create.succeeded') {
            return { state: Object.assign({}, state, { status: 'completed', tracking: event.data.result.tracking }), done: true };
          }
          return { state: state };
        }
        function compensate(state, event, ctx) {
          if (state === null) { return { state: null }; }
          return {
            state: Object.assign({}, state, { status: 'compensated', failure: event.data.error.code }),
            commands: [{ effect: 'order.cancel', id: ctx.id('cancel'), payload: { order_id: state.order_id, reason: event.data.error.code } }],
            done: true,
          };
        }
        """;

    private const string SagaManifest = """
        kind: saga
        name: orders
        script: orders.js
        triggers:
          - stream: AGGREGATE_EVENTS
            subject: "aggregate.*.order.*.created"
            correlation: "subject[3]"
          - stream: WORKFLOW_EVENTS
            subject: "workflow.evt.*.payment.charge.>"
            correlation: "$.data.correlation_id"
          - stream: WORKFLOW_EVENTS
            subject: "workflow.evt.*.shipment.create.>"
            correlation: "$.data.correlation_id"
        """;

    private static string Effects(Uri upstream, string chargeUrl, string chargeExtra = "") => $$"""
        kind: effect
        name: payment.charge
        provider: http
        http: { url: "{{chargeUrl}}", method: POST, headers: { x-api-key: { secret: payments_key }, x-static: "yes" } }
        retry: { max_attempts: 4, backoff: exponential, base_ms: 5, max_ms: 50, jitter: true }
        timeout_ms: 5000
        {{chargeExtra}}
        ---
        kind: effect
        name: shipment.create
        provider: http
        http: { url: "{{new Uri(upstream, "/shipments")}}", method: POST }
        ---
        kind: effect
        name: order.cancel
        provider: http
        http: { url: "{{new Uri(upstream, "/cancellations")}}", method: POST }
        """;

    private async Task<(SagaHarness Saga, EffectNode Effects)> StartAsync(StubUpstream upstream, string effects, string? secret = "key-123")
    {
        var saga = await SagaHarness.StartAsync(nats, new Dictionary<string, string>
        {
            ["orders.yaml"] = SagaManifest,
            ["orders.js"] = Script,
            ["effects.yaml"] = effects,
        });
        var secrets = saga.Dir.File("secrets");
        Directory.CreateDirectory(secrets);
        if (secret is not null)
        {
            await File.WriteAllTextAsync(Path.Combine(secrets, "payments_key"), secret + "\n");
        }
        var node = await EffectNode.StartAsync(nats, saga.Manifests.Effects, "worker-1", secretsDir: secrets);
        return (saga, node);
    }

    private static void AnswerOrders(StubUpstream upstream)
    {
        upstream.Respond("/charges", (request, _) =>
        {
            var order = JsonNode.Parse(request.Body)!["order_id"]!.GetValue<string>();
            return new StubResponse(201, $$"""{"reference":"ch-{{order}}"}""");
        });
        upstream.Respond("/shipments", (request, _) =>
        {
            var order = JsonNode.Parse(request.Body)!["order_id"]!.GetValue<string>();
            return new StubResponse(201, $$"""{"tracking":"tr-{{order}}"}""");
        });
    }

    private static Task PublishOrderAsync(SagaHarness saga, string order, int amount, string traceParent, CancellationToken cancellationToken) =>
        saga.PublishAsync($"aggregate.acme.order.{order}.created",
            SagaHarness.CloudEvent("evt-" + order, "order.created", new { order_id = order, amount }),
            headers: new NatsHeaders { ["traceparent"] = traceParent }, cancellationToken: cancellationToken);

    [Fact]
    public async Task An_order_completes_through_http_effects_and_the_upstream_gets_the_exact_request()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        await using var upstream = await StubUpstream.StartAsync(cts.Token);
        AnswerOrders(upstream);
        var (saga, effects) = await StartAsync(upstream, Effects(upstream.Url, new Uri(upstream.Url, "/charges").ToString() + "?order={payload.order_id}"));
        await using var _ = saga;
        await using var __ = effects;
        const string TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

        await PublishOrderAsync(saga, "o-1", 250, TraceParent, cts.Token);
        await SagaHarness.WaitUntilAsync(() => saga.Instance("acme", "orders", "o-1")?.Done == true, s_timeout, "the order saga to complete");

        var state = saga.Instance("acme", "orders", "o-1")!.State;
        Assert.Equal("completed", state.GetProperty("status").GetString());
        Assert.Equal("ch-o-1", state.GetProperty("payment_ref").GetString());
        Assert.Equal("tr-o-1", state.GetProperty("tracking").GetString());
        Assert.Equal(1, state.GetProperty("charge_attempts").GetInt32());

        var commands = await saga.CommandsAsync(cts.Token);
        var chargeCommand = Assert.Single(commands, c => c.Command.Effect == "payment.charge").Command;
        var charge = Assert.Single(upstream.Requests, r => r.PathAndQuery.StartsWith("/charges", StringComparison.Ordinal));
        Assert.Equal("POST", charge.Method);
        Assert.Equal("/charges?order=o-1", charge.PathAndQuery);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"order_id":"o-1","amount":250}"""), JsonNode.Parse(charge.Body)), charge.Body);
        Assert.Equal(chargeCommand.CommandId, charge.IdempotencyKey);
        Assert.Equal("acme", charge.Headers["tenant-id"]);
        Assert.Equal("o-1", charge.Headers["correlation-id"]);
        Assert.Equal(TraceParent, charge.Headers["traceparent"]);
        Assert.Equal("key-123", charge.Headers["x-api-key"]);
        Assert.Equal("yes", charge.Headers["x-static"]);
        Assert.Single(upstream.Requests, r => r.PathAndQuery == "/shipments");

        var results = await EffectStreams.ReadAsync(saga.Js, "WORKFLOW_EVENTS", cts.Token);
        Assert.Equal(2, results.Count);
        var chargeResult = results.Single(r => r.Subject == "workflow.evt.acme.payment.charge.succeeded");
        var data = chargeResult.Body["data"]!;
        Assert.Equal("result:" + chargeCommand.CommandId, chargeResult.Body["id"]!.GetValue<string>());
        Assert.Equal(chargeCommand.CommandId, data["command_id"]!.GetValue<string>());
        Assert.Equal("o-1", data["correlation_id"]!.GetValue<string>());
        Assert.Equal("orders", data["saga"]!.GetValue<string>());
        Assert.Equal("succeeded", data["outcome"]!.GetValue<string>());
        Assert.Equal(1, data["attempts"]!.GetValue<int>());
        Assert.NotNull(data["started_at"]);
        Assert.NotNull(data["finished_at"]);
        Assert.Equal(TraceParent, chargeResult.Headers!["traceparent"].ToString());
        Assert.Equal("result:" + chargeCommand.CommandId, chargeResult.Headers!["Nats-Msg-Id"].ToString());
    }

    [Fact]
    public async Task A_flaky_upstream_succeeds_after_retries()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        await using var upstream = await StubUpstream.StartAsync(cts.Token);
        AnswerOrders(upstream);
        upstream.Respond("/charges", (_, call) => call <= 2 ? new StubResponse(503, """{"error":"busy"}""") : new StubResponse(201, """{"reference":"ch-flaky"}"""));
        var (saga, effects) = await StartAsync(upstream, Effects(upstream.Url, new Uri(upstream.Url, "/charges").ToString()));
        await using var _ = saga;
        await using var __ = effects;

        await PublishOrderAsync(saga, "o-2", 10, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", cts.Token);
        await SagaHarness.WaitUntilAsync(() => saga.Instance("acme", "orders", "o-2")?.Done == true, s_timeout, "the order saga to complete");

        var state = saga.Instance("acme", "orders", "o-2")!.State;
        Assert.Equal("completed", state.GetProperty("status").GetString());
        Assert.Equal("ch-flaky", state.GetProperty("payment_ref").GetString());
        Assert.Equal(3, state.GetProperty("charge_attempts").GetInt32());
        var charges = upstream.Requests.Where(r => r.PathAndQuery == "/charges").ToList();
        Assert.Equal(3, charges.Count);
        Assert.Single(charges.Select(c => c.IdempotencyKey).Distinct());
    }

    [Fact]
    public async Task A_dead_upstream_holds_the_charge_until_give_up_after_ms_and_the_saga_compensates_with_circuit_open()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        await using var upstream = await StubUpstream.StartAsync(cts.Token);
        var dead = new Uri($"http://127.0.0.1:{NatsServerFixture.FreePort()}/charges");
        var (saga, effects) = await StartAsync(upstream, Effects(upstream.Url, dead.ToString(),
            "circuit_breaker: { failure_ratio: 0.5, minimum_throughput: 2, sampling_ms: 30000, break_ms: 60000 }\ngive_up_after_ms: 1500"));
        await using var _ = saga;
        await using var __ = effects;

        await PublishOrderAsync(saga, "o-3", 10, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", cts.Token);
        await SagaHarness.WaitUntilAsync(() => saga.Instance("acme", "orders", "o-3")?.Done == true, s_timeout, "the order saga to compensate");

        var state = saga.Instance("acme", "orders", "o-3")!.State;
        Assert.Equal("compensated", state.GetProperty("status").GetString());
        Assert.Equal("circuit_open", state.GetProperty("failure").GetString());
        await SagaHarness.WaitUntilAsync(() => upstream.Requests.Any(r => r.PathAndQuery == "/cancellations"), s_timeout, "the undo command to reach the upstream");
        var cancel = Assert.Single(upstream.Requests, r => r.PathAndQuery == "/cancellations");
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"order_id":"o-3","reason":"circuit_open"}"""), JsonNode.Parse(cancel.Body)), cancel.Body);
        var failed = Assert.Single(await EffectStreams.ReadAsync(saga.Js, "WORKFLOW_EVENTS", cts.Token), r => r.Subject == "workflow.evt.acme.payment.charge.failed");
        Assert.Equal("circuit_open", failed.Body["data"]!["error"]!["code"]!.GetValue<string>());
        Assert.Contains("give_up_after_ms (1500 ms) passed", failed.Body["data"]!["error"]!["message"]!.GetValue<string>(), StringComparison.Ordinal);
        // Attempts count calls that reached the provider: the open breaker held the rest back, until the limit.
        Assert.InRange(failed.Body["data"]!["attempts"]!.GetValue<int>(), 2, 3);
    }

    [Fact]
    public async Task A_missing_secret_fails_the_effect_without_calling_the_upstream_and_the_saga_compensates()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        await using var upstream = await StubUpstream.StartAsync(cts.Token);
        AnswerOrders(upstream);
        var (saga, effects) = await StartAsync(upstream, Effects(upstream.Url, new Uri(upstream.Url, "/charges").ToString()), secret: null);
        await using var _ = saga;
        await using var __ = effects;

        await PublishOrderAsync(saga, "o-4", 10, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", cts.Token);
        await SagaHarness.WaitUntilAsync(() => saga.Instance("acme", "orders", "o-4")?.Done == true, s_timeout, "the order saga to compensate");

        var state = saga.Instance("acme", "orders", "o-4")!.State;
        Assert.Equal("compensated", state.GetProperty("status").GetString());
        Assert.Equal("secret_unavailable", state.GetProperty("failure").GetString());
        Assert.DoesNotContain(upstream.Requests, r => r.PathAndQuery == "/charges");
        var failed = Assert.Single(await EffectStreams.ReadAsync(saga.Js, "WORKFLOW_EVENTS", cts.Token), r => r.Subject == "workflow.evt.acme.payment.charge.failed");
        Assert.Contains("payments_key", failed.Body["data"]!["error"]!["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_client_error_is_a_permanent_failure_after_one_call()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        await using var upstream = await StubUpstream.StartAsync(cts.Token);
        AnswerOrders(upstream);
        upstream.Respond("/charges", (_, _) => new StubResponse(402, """{"error":"card_declined"}"""));
        var (saga, effects) = await StartAsync(upstream, Effects(upstream.Url, new Uri(upstream.Url, "/charges").ToString()));
        await using var _ = saga;
        await using var __ = effects;

        await PublishOrderAsync(saga, "o-5", 10, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", cts.Token);
        await SagaHarness.WaitUntilAsync(() => saga.Instance("acme", "orders", "o-5")?.Done == true, s_timeout, "the order saga to compensate");

        Assert.Equal("http_402", saga.Instance("acme", "orders", "o-5")!.State.GetProperty("failure").GetString());
        Assert.Single(upstream.Requests, r => r.PathAndQuery == "/charges");
    }
}
