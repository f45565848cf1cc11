using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Runner.Effects.Resilience;
using Runner.Testing;
using Xunit;

namespace Runner.Effects.Tests;

/// <summary>
/// An open circuit breaker is backpressure, on real parts: sagas command charges, an effect worker
/// calls a real upstream that is unwell, and every order still completes with each charge performed
/// once — the breaker holds commands back, it does not fail them.
/// </summary>
public sealed class BreakerLoopTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(90);

    private const string Script = """
        'use strict';
        function on_event(state, event, ctx) {
          if (event.type === 'order.created') {
            if (state !== null) { return { state: state }; }
            return {
              state: { status: 'charging', order_id: event.data.order_id },
              commands: [{ effect: 'payment.charge', id: ctx.id('charge'), payload: { order_id: event.data.order_id } }],
            };
          }
          if (state === null) { return { state: null }; }
          if (event.type === 'payment.charge.succeeded') {
            return { state: Object.assign({}, state, { status: 'completed', attempts: event.data.attempts }), done: true };
          }
          return { state: state };
        }
        function compensate(state, event, ctx) {
          if (state === null) { return { state: null }; }
          return { state: Object.assign({}, state, { status: 'compensated', failure: event.data.error.code }), done: true };
        }
        """;

    private const string SagaManifest = """
        kind: saga
        name: orders
        script: orders.js
        triggers:
          - { stream: AGGREGATE_EVENTS, subject: "aggregate.*.order.*.created", correlation: "subject[3]" }
          - { stream: WORKFLOW_EVENTS, subject: "workflow.evt.*.payment.charge.>", correlation: "$.data.correlation_id" }
        """;

    private static string Charge(Uri upstream, string policies) => $$"""
        kind: effect
        name: payment.charge
        provider: http
        http: { url: "{{new Uri(upstream, "/charges")}}", method: POST }
        {{policies}}
        """;

    /// <summary>Per order: the upstream's 2xx answers (the charges it performed).</summary>
    private readonly ConcurrentDictionary<string, int> _performed = new(StringComparer.Ordinal);

    private volatile bool _down;

    private static async Task<SagaHarness> StartSagasAsync(NatsServerFixture nats, StubUpstream upstream, string policies) =>
        await SagaHarness.StartAsync(nats, new Dictionary<string, string>
        {
            ["orders.yaml"] = SagaManifest,
            ["orders.js"] = Script,
            ["effects.yaml"] = Charge(upstream.Url, policies),
        });

    /// <summary>503 while <see cref="_down"/>; else <paramref name="answer"/>, and a 2xx counts as the charge performed.</summary>
    private void AnswerCharges(StubUpstream upstream, Func<int, StubResponse>? answer = null) => upstream.Respond("/charges", (request, call) =>
    {
        if (_down)
        {
            return new StubResponse(503, """{"error":"down"}""");
        }
        var response = answer?.Invoke(call) ?? new StubResponse(201, """{"reference":"ch"}""");
        if (response.Status is >= 200 and < 300)
        {
            _performed.AddOrUpdate(JsonNode.Parse(request.Body)!["order_id"]!.GetValue<string>(), 1, (_, n) => n + 1);
        }
        return response;
    });

    /// <summary>An upstream that answers 503 until <see cref="_down"/> is cleared, and sagas whose charges retry fast and open the breaker at two failures.</summary>
    private async Task<(StubUpstream Upstream, SagaHarness Saga)> StartWithUpstreamDownAsync(int breakMs, CancellationToken cancellationToken)
    {
        var upstream = await StubUpstream.StartAsync(cancellationToken);
        _down = true;
        AnswerCharges(upstream);
        var saga = await StartSagasAsync(nats, upstream, $$"""
            retry: { max_attempts: 10, backoff: constant, base_ms: 5, max_ms: 5, jitter: false }
            circuit_breaker: { minimum_throughput: 2, break_ms: {{breakMs}} }
            """);
        return (upstream, saga);
    }

    private static async Task<List<string>> PublishOrdersAsync(SagaHarness saga, int count, CancellationToken cancellationToken)
    {
        var prefix = "o" + Guid.NewGuid().ToString("N")[..6] + "-";
        var orders = Enumerable.Range(1, count).Select(i => prefix + i).ToList();
        foreach (var order in orders)
        {
            await saga.PublishAsync($"aggregate.acme.order.{order}.created",
                SagaHarness.CloudEvent("evt-" + order, "order.created", new { order_id = order }), cancellationToken: cancellationToken);
        }
        return orders;
    }

    private static Task AllDoneAsync(SagaHarness saga, IReadOnlyList<string> orders) =>
        SagaHarness.WaitUntilAsync(() => orders.All(o => saga.Instance("acme", "orders", o)?.Done == true), s_timeout, "every order saga to end");

    /// <summary>The node's one breaker, or null before its first command.</summary>
    private static BreakerStatus? Breaker(EffectNode node) =>
        ((EffectExecutor)node.Runtime.Executor).Pipelines.BreakerStates().SingleOrDefault();

    private void AssertEachPerformedOnce(SagaHarness saga, IReadOnlyList<string> orders)
    {
        foreach (var order in orders)
        {
            var state = saga.Instance("acme", "orders", order)!.State;
            Assert.Equal("completed", state.GetProperty("status").GetString());
            Assert.Equal(1, _performed.GetValueOrDefault(order));
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Ten_orders_against_an_upstream_that_fails_twice_per_key_all_complete_with_three_calls_each(bool sensitiveBreaker)
    {
        // The scenario: no circuit_breaker block (the defaults), and again with a breaker
        // that opens on the first two failures, so that the commands are held in between.
        using var cts = new CancellationTokenSource(s_timeout);
        await using var upstream = await StubUpstream.StartAsync(cts.Token);
        AnswerCharges(upstream, call => call <= 2 ? new StubResponse(503, """{"error":"blip"}""") : new StubResponse(201, """{"reference":"ch"}"""));
        var policies = "retry: { max_attempts: 5, base_ms: 50, max_ms: 500 }"
            + (sensitiveBreaker ? "\ncircuit_breaker: { minimum_throughput: 2, break_ms: 500 }" : string.Empty);
        await using var saga = await StartSagasAsync(nats, upstream, policies);
        await using var node = await EffectNode.StartAsync(nats, saga.Manifests.Effects, "worker-1");

        var orders = await PublishOrdersAsync(saga, 10, cts.Token);
        await AllDoneAsync(saga, orders);

        AssertEachPerformedOnce(saga, orders);
        var commands = await saga.CommandsAsync(cts.Token);
        foreach (var order in orders)
        {
            Assert.Equal(3, saga.Instance("acme", "orders", order)!.State.GetProperty("attempts").GetInt32());
            var command = Assert.Single(commands, c => c.Command.CorrelationId == order).Command;
            Assert.Equal(3, upstream.CallsFor(command.CommandId));
        }
        // 30 calls never reach the default's minimum throughput of 100: the retries alone carry the
        // blip. The sensitive breaker opens at the second failure, whatever the interleaving (a key
        // succeeds only after two failures of its own).
        var breaker = Breaker(node)!;
        Assert.Equal(sensitiveBreaker, breaker.Opened >= 1);
        Assert.Equal(0, breaker.Held);
    }

    [Fact]
    public async Task An_upstream_down_longer_than_the_break_holds_the_commands_then_performs_each_once_when_back()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        var (upstream, saga) = await StartWithUpstreamDownAsync(breakMs: 500, cts.Token);
        await using var _ = upstream;
        await using var __ = saga;
        await using var node = await EffectNode.StartAsync(nats, saga.Manifests.Effects, "worker-1");

        var orders = await PublishOrdersAsync(saga, 8, cts.Token);
        // Opened twice: the first break ran out, its probe failed — the outage outlasted the break —
        // and every command is held, none failed.
        await SagaHarness.WaitUntilAsync(() => Breaker(node) is { Opened: >= 2, Held: 8 }, s_timeout, "all eight commands held after a failed probe");
        Assert.DoesNotContain(orders, o => saga.Instance("acme", "orders", o)?.Done == true);
        Assert.Empty(_performed);

        _down = false;
        await AllDoneAsync(saga, orders);

        AssertEachPerformedOnce(saga, orders);
        var results = await EffectStreams.ReadAsync(saga.Js, "WORKFLOW_EVENTS", cts.Token);
        Assert.Equal(8, results.Count(r => r.Subject == "workflow.evt.acme.payment.charge.succeeded"));
        Assert.DoesNotContain(results, r => r.Subject == "workflow.evt.acme.payment.charge.failed");
        Assert.Equal(0, Breaker(node)!.Held);
    }

    [Fact]
    public async Task Held_commands_keep_their_claims_past_the_lease_and_a_drain_hands_them_to_another_worker_that_performs_each_once()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        // A break of a minute: no probe during the test, the commands stay held until the drain.
        var (upstream, saga) = await StartWithUpstreamDownAsync(breakMs: 60_000, cts.Token);
        await using var _ = upstream;
        await using var __ = saga;
        // Long enough that a stall of the loaded test process (up to half a lease) costs no claim, and (up to two
        // thirds of the ack wait) no redelivery.
        var lease = TimeSpan.FromSeconds(5);
        await using var first = await EffectNode.StartAsync(nats, saga.Manifests.Effects, "worker-1", lease: lease, ackWait: lease);
        var orders = await PublishOrdersAsync(saga, 5, cts.Token);
        await SagaHarness.WaitUntilAsync(() => Breaker(first) is { Held: 5 }, s_timeout, "all five commands held");
        var commands = (await saga.CommandsAsync(cts.Token)).Select(c => c.Command).ToList();

        // Held longer than the lease and the ack wait: the heartbeat renewed every claim and kept
        // every message in progress, so nothing was taken over or delivered again.
        await SagaHarness.WaitUntilAsync(async () =>
        {
            foreach (var command in commands)
            {
                if (await first.Runtime.Claims!.GetAsync(command.Tenant, command.CommandId, cts.Token) is not { } claim
                    || claim.LeaseUntilMs <= claim.ClaimedAtMs + 2 * (long)lease.TotalMilliseconds)
                {
                    return false;
                }
            }
            return true;
        }, s_timeout, "every claim renewed after its first lease ran out");
        foreach (var command in commands)
        {
            var claim = (await first.Runtime.Claims!.GetAsync(command.Tenant, command.CommandId, cts.Token))!;
            Assert.Equal(("running", "worker-1", 1), (claim.State, claim.Worker, claim.Attempt));
        }
        var consumer = (await saga.Js.GetConsumerAsync("WORKFLOW_COMMANDS", Workers.EffectWorker.ConsumerName("runner", "payment.charge", null), cts.Token)).Info;
        Assert.Equal(5, consumer.NumAckPending);
        Assert.Equal(0, consumer.NumRedelivered);
        Assert.Equal(5, Breaker(first)!.Held);

        await first.Runtime.DrainAsync(cts.Token);

        Assert.Equal(5, first.Runtime.Workers.Sum(w => w.HandedBack));
        Assert.Equal(0, Breaker(first)!.Held);
        foreach (var command in commands)
        {
            Assert.Null(await first.Runtime.Claims!.GetAsync(command.Tenant, command.CommandId, cts.Token));
        }
        Assert.DoesNotContain(orders, o => saga.Instance("acme", "orders", o)?.Done == true);

        _down = false;
        await using var second = await EffectNode.StartAsync(nats, saga.Manifests.Effects, "worker-2", lease: lease, ackWait: lease);
        await AllDoneAsync(saga, orders);

        AssertEachPerformedOnce(saga, orders);
        Assert.Equal(5, second.Executed);
        Assert.Equal(0, first.Executed);
    }
}
