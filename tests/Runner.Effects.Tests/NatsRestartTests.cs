using NATS.Client.JetStream;
using Runner.Testing;
using Xunit;

namespace Runner.Effects.Tests;

/// <summary>The NATS server dies (SIGKILL) and comes back while effect workers run: nothing is lost, nothing runs twice.</summary>
public sealed class NatsRestartTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task Commands_around_a_nats_restart_each_run_once_and_get_one_result()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        await using var upstream = await StubUpstream.StartAsync(cts.Token);
        // Slow enough that the kill lands while calls are in flight.
        upstream.Respond("/charges", (_, _) => new StubResponse(201, """{"ok":true}""", TimeSpan.FromMilliseconds(150)));
        const int Commands = 60;
        {
            await using var setup = await nats.ConnectAsync();
            await EffectStreams.ResetAsync(new NatsJSContext(setup), cts.Token);
        }
        await using var node = await EffectNode.StartAsync(nats, [Effects.Charge(upstream.Url, concurrency: 8)], "worker-1");

        await PublishAsync(0, Commands / 2, cts.Token);
        await SagaHarness.WaitUntilAsync(() => upstream.Requests.Count >= 5, s_timeout, "the first calls");
        await nats.RestartAsync(TimeSpan.FromSeconds(1), cts.Token);
        await PublishAsync(Commands / 2, Commands, cts.Token);

        await using var connection = await nats.ConnectAsync();
        var js = new NatsJSContext(connection);
        await SagaHarness.WaitUntilAsync(async () => await EffectStreams.CountAsync(js, "WORKFLOW_EVENTS", cts.Token) >= Commands, s_timeout, "a result per command");
        await SagaHarness.WaitUntilAsync(async () =>
        {
            var info = await js.GetConsumerAsync("WORKFLOW_COMMANDS", Workers.EffectWorker.ConsumerName("runner", "payment.charge", null), cts.Token);
            return info.Info.NumAckPending == 0 && info.Info.NumPending == 0;
        }, s_timeout, "every command to be acked");

        for (var i = 0; i < Commands; i++)
        {
            Assert.Equal(1, upstream.CallsFor($"restart-{i}"));
        }
        var results = await EffectStreams.ReadAsync(js, "WORKFLOW_EVENTS", cts.Token);
        Assert.Equal(Commands, results.Count);
        Assert.Equal(Commands, results.Select(r => r.Body["id"]!.GetValue<string>()).Distinct().Count());
        Assert.All(results, r => Assert.Equal("succeeded", r.Body["data"]!["outcome"]!.GetValue<string>()));
    }

    /// <summary>Publishes with retries: the server may be coming back.</summary>
    private async Task PublishAsync(int from, int to, CancellationToken cancellationToken)
    {
        await using var connection = await nats.ConnectAsync();
        var js = new NatsJSContext(connection);
        for (var i = from; i < to; i++)
        {
            var command = EffectStreams.Command("acme", "payment.charge", $"restart-{i}", new { i });
            await SagaHarness.WaitUntilAsync(async () =>
            {
                try
                {
                    await EffectStreams.PublishAsync(js, command, cancellationToken: cancellationToken);
                    return true;
                }
                catch (Exception ex) when (ex is NATS.Client.Core.NatsException or TimeoutException)
                {
                    return false;
                }
            }, s_timeout, $"command {i} to be published");
        }
    }
}
