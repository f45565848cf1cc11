using System.Text;
using System.Text.Json;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Core;
using Runner.Core.Events;
using Runner.Testing;
using Xunit;

namespace Runner.Effects.Tests.Slices;

/// <summary>Slice commands through real effect workers on a real nats-server.</summary>
public sealed class SliceWorkerTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task A_slice_command_publishes_its_lineage_with_end_to_end_headers_and_its_result()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        await using var script = new SliceScript();
        await using var connection = await nats.ConnectAsync();
        var js = new NatsJSContext(connection);
        await EffectStreams.ResetAsync(js, cts.Token);
        await using var node = await EffectNode.StartAsync(nats, [script.Effect()], "worker-a", slices: script.Provider(cts.Token));

        var command = EffectStreams.Command("acme", "slice.launch", "launch-1", script.Payload("ok", "run-1"), correlation: "pipe-7");
        await EffectStreams.PublishAsync(js, command, traceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(async () => await EffectStreams.CountAsync(js, "WORKFLOW_EVENTS", cts.Token) >= 1, s_timeout, "the slice's result");

        var result = Assert.Single(await EffectStreams.ReadAsync(js, "WORKFLOW_EVENTS", cts.Token));
        Assert.Equal("workflow.evt.acme.slice.launch.succeeded", result.Subject);
        Assert.Equal(2, result.Body["data"]!["result"]!["output"]!["rows_out"]!.GetValue<int>());
        var lineage = await EffectStreams.ReadAsync(js, "LINEAGE", cts.Token);
        Assert.Equal(["START", "COMPLETE"], lineage.Select(l => l.Body["eventType"]!.GetValue<string>()));
        Assert.All(lineage, l =>
        {
            Assert.Equal("lineage.acme.acme.orders.normalize", l.Subject);
            Assert.Equal("acme", l.Headers![EventHeaders.TenantId].ToString());
            Assert.Equal("pipe-7", l.Headers[EventHeaders.CorrelationId].ToString());
            Assert.Equal("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", l.Headers[EventHeaders.TraceParent].ToString());
        });
        Assert.Equal("run-1:START", lineage[0].Headers!["Nats-Msg-Id"].ToString());
    }

    [Fact]
    public async Task A_slice_command_delivered_to_two_workers_is_launched_once()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        await using var script = new SliceScript();
        await using var connection = await nats.ConnectAsync();
        var js = new NatsJSContext(connection);
        await EffectStreams.ResetAsync(js, cts.Token);
        var effects = new[] { script.Effect() };
        // 5 s leases: a stall of the loaded test process while the slow slice runs must not make its worker give the run up.
        await using var a = await EffectNode.StartAsync(nats, effects, "worker-a", lease: TimeSpan.FromSeconds(5), ackWait: TimeSpan.FromSeconds(2), slices: script.Provider(cts.Token));
        await using var b = await EffectNode.StartAsync(nats, effects, "worker-b", lease: TimeSpan.FromSeconds(5), ackWait: TimeSpan.FromSeconds(2), slices: script.Provider(cts.Token));

        // The same command stored twice (as a redelivery after a lost ack would bring it back):
        // while one worker runs the slow slice, the other finds the claim held.
        var command = EffectStreams.Command("acme", "slice.launch", "launch-twice", script.Payload("slow", "run-twice"));
        var body = JsonSerializer.SerializeToUtf8Bytes(command, CoreJsonContext.Default.CommandMessage);
        foreach (var copy in new[] { "copy-1", "copy-2" })
        {
            var ack = await js.PublishAsync("workflow.cmd.acme.slice.launch", body, opts: new NatsJSPubOpts { MsgId = copy }, cancellationToken: cts.Token);
            ack.EnsureSuccess();
        }
        await SagaHarness.WaitUntilAsync(() => a.Republished + b.Republished >= 1 && a.Executed + b.Executed >= 1, s_timeout, "one run and one answer from the stored result");

        Assert.Equal(1, script.Launches);
        Assert.Equal(1, a.Executed + b.Executed);
        Assert.Equal(1, await EffectStreams.CountAsync(js, "WORKFLOW_EVENTS", cts.Token));
    }
}
