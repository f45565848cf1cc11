using System.Text;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.KeyValueStore;
using Runner.Core.Manifests;
using Runner.Effects.Claims;
using Runner.Effects.Workers;
using Runner.Sagas.Quarantine;
using Runner.Testing;
using Xunit;

namespace Runner.Effects.Tests;

/// <summary>The effect worker's edges: results too large, ids that make long keys, poison commands, a graceful stop.</summary>
public sealed class WorkerEdgeTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(60);

    private async Task<(NatsConnection Connection, INatsJSContext Js)> ConnectAsync(CancellationToken cancellationToken)
    {
        var connection = await nats.ConnectAsync();
        var js = new NatsJSContext(connection);
        await EffectStreams.ResetAsync(js, cancellationToken);
        return (connection, js);
    }

    [Fact]
    public async Task A_result_too_large_for_a_message_becomes_a_failed_result_and_the_effect_is_not_run_again()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        await using var upstream = await StubUpstream.StartAsync(cts.Token);
        var huge = "{\"blob\":\"" + new string('x', 700 * 1024) + "\"}";
        upstream.Respond("/charges", (_, _) => new StubResponse(200, huge));
        var (connection, js) = await ConnectAsync(cts.Token);
        await using var _ = connection;
        await using var node = await EffectNode.StartAsync(nats, [Effects.Charge(upstream.Url)], "worker-1");

        await EffectStreams.PublishAsync(js, EffectStreams.Command("acme", "payment.charge", "big-1", new { }), cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(async () => await EffectStreams.CountAsync(js, "WORKFLOW_EVENTS", cts.Token) == 1, s_timeout, "a result");

        var result = Assert.Single(await EffectStreams.ReadAsync(js, "WORKFLOW_EVENTS", cts.Token));
        Assert.Equal("workflow.evt.acme.payment.charge.failed", result.Subject);
        Assert.Equal(EffectWorker.ResultTooLarge, result.Body["data"]!["error"]!["code"]!.GetValue<string>());
        Assert.Equal(1, upstream.CallsFor("big-1"));
        var claim = await node.Runtime.Claims!.GetAsync("acme", "big-1", cts.Token);
        Assert.Equal(ClaimRecord.Completed, claim!.State);
    }

    [Fact]
    public async Task Long_and_non_ascii_ids_get_bounded_claim_keys_and_run_once()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        await using var upstream = await StubUpstream.StartAsync(cts.Token);
        var (connection, js) = await ConnectAsync(cts.Token);
        await using var _ = connection;
        await using var node = await EffectNode.StartAsync(nats, [Effects.Charge(upstream.Url)], "worker-1");
        var longId = "zürich-注文-" + new string('é', 600);

        await EffectStreams.PublishAsync(js, EffectStreams.Command("acme", "payment.charge", longId, new { }, correlation: "zürich"), cancellationToken: cts.Token);
        await EffectStreams.PublishAsync(js, EffectStreams.Command("acme", "payment.charge", "zürich-1", new { }, correlation: "zürich"), cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(async () => await EffectStreams.CountAsync(js, "WORKFLOW_EVENTS", cts.Token) == 2, s_timeout, "both results");

        Assert.True(ClaimKeys.For("acme", longId).Length <= ClaimKeys.MaxLength);
        Assert.Equal(ClaimRecord.Completed, (await node.Runtime.Claims!.GetAsync("acme", longId, cts.Token))!.State);
        var results = await EffectStreams.ReadAsync(js, "WORKFLOW_EVENTS", cts.Token);
        Assert.Contains(results, r => r.Body["data"]!["command_id"]!.GetValue<string>() == longId);
        var short1 = Assert.Single(results, r => r.Body["data"]!["command_id"]!.GetValue<string>() == "zürich-1");
        // Header values are ASCII on the wire: non-ASCII ids arrive percent-encoded, not as '?'.
        Assert.Equal("z%C3%BCrich", short1.Headers!["correlation-id"].ToString());
        Assert.Equal(1, upstream.CallsFor(Uri.EscapeDataString("zürich-1")));
    }

    [Fact]
    public async Task A_command_that_keeps_failing_is_quarantined_after_max_deliver_instead_of_looping()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        await using var upstream = await StubUpstream.StartAsync(cts.Token);
        var (connection, js) = await ConnectAsync(cts.Token);
        await using var _ = connection;
        await using var node = await EffectNode.StartAsync(nats, [Effects.Charge(upstream.Url)], "worker-1", maxDeliver: 3);
        // A claim entry that is not a claim: every attempt to handle the command fails the same way.
        var kv = await new NatsKVContext(js).GetStoreAsync("RUNNER_EFFECTS", cts.Token);
        await kv.PutAsync(ClaimKeys.For("acme", "poison"), Encoding.UTF8.GetBytes("not a claim"), cancellationToken: cts.Token);

        await EffectStreams.PublishAsync(js, EffectStreams.Command("acme", "payment.charge", "poison", new { }), cancellationToken: cts.Token);
        await EffectStreams.PublishAsync(js, EffectStreams.Command("acme", "payment.charge", "healthy", new { }), cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => QuarantineRecords.List(node.Store, 10).Count == 1, s_timeout, "the poison command to be quarantined");

        var record = Assert.Single(QuarantineRecords.List(node.Store, 10));
        Assert.Equal(EffectWorker.ProcessingError, record.Reason);
        Assert.Contains("not a claim record", record.Detail, StringComparison.Ordinal);
        Assert.Equal(0, upstream.CallsFor("poison"));
        Assert.Equal(1, upstream.CallsFor("healthy"));
        await SagaHarness.WaitUntilAsync(async () =>
        {
            var consumer = await js.GetConsumerAsync("WORKFLOW_COMMANDS", EffectWorker.ConsumerName("runner", "payment.charge", null), cts.Token);
            return consumer.Info.NumAckPending == 0 && consumer.Info.NumPending == 0;
        }, s_timeout, "the poison command to be terminated");
    }

    /// <summary>
    /// NATS not answering is not the command's fault: a claim bucket gone for longer than
    /// max-deliver failures (its stream without a leader, a server restarting) is waited out, and
    /// every command runs once when it is back, none quarantined.
    /// </summary>
    [Fact]
    public async Task A_claim_bucket_that_does_not_answer_for_longer_than_max_deliver_failures_is_waited_out_and_quarantines_nothing()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        await using var upstream = await StubUpstream.StartAsync(cts.Token);
        var (connection, js) = await ConnectAsync(cts.Token);
        await using var _ = connection;
        const int maxDeliver = 2;
        await using var node = await EffectNode.StartAsync(nats, [Effects.Charge(upstream.Url)], "worker-1", maxDeliver: maxDeliver);
        const string bucket = "KV_RUNNER_EFFECTS";
        var config = (await js.GetStreamAsync(bucket, cancellationToken: cts.Token)).Info.Config;
        await js.DeleteStreamAsync(bucket, cts.Token);

        const int commands = 3;
        for (var i = 0; i < commands; i++)
        {
            await EffectStreams.PublishAsync(js, EffectStreams.Command("acme", "payment.charge", $"outage-{i}", new { i }), cancellationToken: cts.Token);
        }
        var consumer = EffectWorker.ConsumerName("runner", "payment.charge", null);
        await SagaHarness.WaitUntilAsync(async () =>
            await DeliveredAsync(js, consumer, cts.Token) >= (ulong)(commands * (maxDeliver + 2)),
            TimeSpan.FromSeconds(30), $"each command delivered more than {maxDeliver + 1} times");
        Assert.Empty(QuarantineRecords.List(node.Store, 10));
        Assert.Empty(upstream.Requests);

        await js.CreateStreamAsync(config, cts.Token);
        await SagaHarness.WaitUntilAsync(async () => await EffectStreams.CountAsync(js, "WORKFLOW_EVENTS", cts.Token) == commands, s_timeout, "a result per command");
        Assert.Empty(QuarantineRecords.List(node.Store, 10));
        for (var i = 0; i < commands; i++)
        {
            Assert.Equal(1, upstream.CallsFor($"outage-{i}"));
        }
    }

    [Fact]
    public async Task A_stopping_worker_lets_a_running_command_finish_publish_and_ack()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        await using var upstream = await StubUpstream.StartAsync(cts.Token);
        var arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        upstream.Respond("/charges", (_, _) =>
        {
            arrived.TrySetResult();
            return new StubResponse(201, """{"reference":"late"}""", TimeSpan.FromMilliseconds(700));
        });
        var (connection, js) = await ConnectAsync(cts.Token);
        await using var _ = connection;
        var node = await EffectNode.StartAsync(nats, [Effects.Charge(upstream.Url)], "worker-1", drain: TimeSpan.FromSeconds(20));

        await EffectStreams.PublishAsync(js, EffectStreams.Command("acme", "payment.charge", "draining", new { }), cancellationToken: cts.Token);
        await arrived.Task.WaitAsync(cts.Token);
        await node.Runtime.StopAsync();

        Assert.Equal(1, await EffectStreams.CountAsync(js, "WORKFLOW_EVENTS", cts.Token));
        var consumer = await js.GetConsumerAsync("WORKFLOW_COMMANDS", EffectWorker.ConsumerName("runner", "payment.charge", null), cts.Token);
        Assert.Equal(0, consumer.Info.NumAckPending);
        var claim = await new EffectClaimsReader(js).GetAsync("acme", "draining", cts.Token);
        Assert.Equal(ClaimRecord.Completed, claim!.State);
        await node.DisposeAsync();
    }

    [Fact]
    public async Task A_worker_serves_its_effects_pool_besides_commands_without_one()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        await using var upstream = await StubUpstream.StartAsync(cts.Token);
        var (connection, js) = await ConnectAsync(cts.Token);
        await using var _ = connection;
        await using var node = await EffectNode.StartAsync(nats, [Effects.Charge(upstream.Url) with { Pool = "gpu" }], "worker-1");

        await EffectStreams.PublishAsync(js, EffectStreams.Command("acme", "payment.charge", "pooled", new { }) with { Pool = "gpu" }, cancellationToken: cts.Token);
        await EffectStreams.PublishAsync(js, EffectStreams.Command("acme", "payment.charge", "plain", new { }), cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(async () => await EffectStreams.CountAsync(js, "WORKFLOW_EVENTS", cts.Token) == 2, s_timeout, "both results");

        Assert.Equal(["runner-effect-payment=charge", "runner-effect-payment=charge~gpu"], node.Runtime.Workers.Select(w => w.Consumer).Order(StringComparer.Ordinal));
        Assert.Equal(1, upstream.CallsFor("pooled"));
        Assert.Equal(1, upstream.CallsFor("plain"));
        Assert.Equal(1, node.Runtime.Workers.Single(w => w.Pool == "gpu").Executed);
    }

    private sealed class EffectClaimsReader(INatsJSContext js)
    {
        public async Task<ClaimRecord?> GetAsync(string tenant, string commandId, CancellationToken cancellationToken) =>
            await (await EffectClaims.OpenAsync(js, new EffectClaimOptions { Worker = "reader" }, TimeProvider.System, cancellationToken)).GetAsync(tenant, commandId, cancellationToken);
    }

    /// <summary>
    /// How many deliveries the worker's consumer has made; none while it does not exist yet: a node's
    /// workers start in the background and create their consumers after the node has started.
    /// </summary>
    private static async Task<ulong> DeliveredAsync(NATS.Client.JetStream.INatsJSContext js, string consumer, CancellationToken cancellationToken)
    {
        try
        {
            return (await js.GetConsumerAsync("WORKFLOW_COMMANDS", consumer, cancellationToken)).Info.Delivered.ConsumerSeq;
        }
        catch (NATS.Client.JetStream.NatsJSApiException ex) when (ex.Error.Code == 404)
        {
            return 0;
        }
    }
}
