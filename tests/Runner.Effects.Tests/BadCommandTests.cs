using System.Text;
using NATS.Client.JetStream;
using Runner.Core.Manifests;
using Runner.Effects.Workers;
using Runner.Sagas.Quarantine;
using Runner.Testing;
using Xunit;

namespace Runner.Effects.Tests;

/// <summary>Commands that cannot run never crash-loop a worker: each is quarantined or answered with a failed result.</summary>
public sealed class BadCommandTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Malformed_and_inconsistent_commands_are_quarantined_and_the_next_good_one_runs()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        await using var upstream = await StubUpstream.StartAsync(cts.Token);
        await using var connection = await nats.ConnectAsync();
        var js = new NatsJSContext(connection);
        await EffectStreams.ResetAsync(js, cts.Token);
        await using var node = await EffectNode.StartAsync(nats, [Effects.Charge(upstream.Url)], "worker-1");

        await js.PublishAsync("workflow.cmd.acme.payment.charge", Encoding.UTF8.GetBytes("{not json"), cancellationToken: cts.Token);
        await js.PublishAsync("workflow.cmd.acme.payment.charge", Encoding.UTF8.GetBytes("""{"command_id":"x"}"""), cancellationToken: cts.Token);
        var wrongTenant = EffectStreams.Command("globex", "payment.charge", "wrong-tenant", new { });
        await js.PublishAsync("workflow.cmd.acme.payment.charge", System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(wrongTenant, Runner.Core.CoreJsonContext.Default.CommandMessage), cancellationToken: cts.Token);
        await EffectStreams.PublishAsync(js, EffectStreams.Command("acme", "payment.charge", "good-1", new { amount = 1 }), cancellationToken: cts.Token);

        await SagaHarness.WaitUntilAsync(async () => await EffectStreams.CountAsync(js, "WORKFLOW_EVENTS", cts.Token) == 1, s_timeout, "the good command's result");
        await SagaHarness.WaitUntilAsync(() => QuarantineRecords.List(node.Store, 100).Count == 3, s_timeout, "three quarantine records");

        var records = QuarantineRecords.List(node.Store, 100);
        Assert.All(records, r =>
        {
            Assert.Equal(EffectWorker.InvalidCommand, r.Reason);
            Assert.Equal("effect", r.Stage);
            Assert.Equal("WORKFLOW_COMMANDS", r.Stream);
        });
        Assert.Contains(records, r => r.Payload == "{not json" && r.Detail.Contains("not a command", StringComparison.Ordinal));
        Assert.Contains(records, r => r.Payload == """{"command_id":"x"}""" && r.Detail.Contains("missing required properties", StringComparison.Ordinal));
        Assert.Contains(records, r => r.Detail.Contains("does not match the subject's tenant", StringComparison.Ordinal));
        Assert.Equal(1, upstream.CallsFor("good-1"));
        Assert.Single(upstream.Requests);

        // Terminated, not left to be redelivered: nothing stays pending on the consumer.
        await SagaHarness.WaitUntilAsync(async () =>
        {
            var consumer = await js.GetConsumerAsync("WORKFLOW_COMMANDS", EffectWorker.ConsumerName("runner", "payment.charge", null), cts.Token);
            return consumer.Info.NumAckPending == 0 && consumer.Info.NumPending == 0;
        }, s_timeout, "every command to be acked or terminated");
        Assert.Equal(3, QuarantineRecords.List(node.Store, 100).Count);
    }

    [Fact]
    public async Task A_command_for_an_effect_no_longer_declared_gets_a_failed_unknown_effect_result()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        await using var upstream = await StubUpstream.StartAsync(cts.Token);
        await using var connection = await nats.ConnectAsync();
        var js = new NatsJSContext(connection);
        await EffectStreams.ResetAsync(js, cts.Token);
        await using var node = await EffectNode.StartAsync(nats, [Effects.Charge(upstream.Url)], "worker-1");
        node.Runtime.Swap([]);

        await EffectStreams.PublishAsync(js, EffectStreams.Command("acme", "payment.charge", "orphan", new { }), cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(async () => await EffectStreams.CountAsync(js, "WORKFLOW_EVENTS", cts.Token) == 1, s_timeout, "a failed result");

        var result = Assert.Single(await EffectStreams.ReadAsync(js, "WORKFLOW_EVENTS", cts.Token));
        Assert.Equal("workflow.evt.acme.payment.charge.failed", result.Subject);
        Assert.Equal("unknown_effect", result.Body["data"]!["error"]!["code"]!.GetValue<string>());
        Assert.Empty(upstream.Requests);
    }
}
