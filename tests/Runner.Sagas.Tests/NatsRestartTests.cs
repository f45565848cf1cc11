using Runner.Core.Keys;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

public sealed class NatsRestartTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    [Fact]
    public async Task A_nats_restart_mid_flow_loses_nothing_and_duplicates_nothing()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Counter());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        for (var i = 0; i < 200; i++)
        {
            await h.PublishAsync($"aggregate.acme.counter.n{i % 10}.added", SagaHarness.CloudEvent($"n-{i}", "added", new { n = i }), cancellationToken: cts.Token);
        }
        await nats.RestartAsync(TimeSpan.FromSeconds(1), cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Connection.ConnectionState == NATS.Client.Core.NatsConnectionState.Open, TimeSpan.FromSeconds(30), "client reconnect");
        for (var i = 200; i < 400; i++)
        {
            await PublishWithRetryAsync(h, i, cts.Token);
        }
        await SagaHarness.WaitUntilAsync(() => h.Listener.Count >= 400 && h.Count(KeySpace.Outbox) == 0, TimeSpan.FromSeconds(90), "400 transitions after restart");
        Assert.Equal(400, h.Listener.Count);
        for (var k = 0; k < 10; k++)
        {
            var order = h.Instance("acme", "counter", $"n{k}")!.State.GetProperty("order").EnumerateArray().Select(e => e.GetInt32()).ToList();
            Assert.Equal(Enumerable.Range(0, 40).Select(j => j * 10 + k), order);
        }
        var commands = await h.CommandsAsync(cts.Token);
        Assert.Equal(400, commands.Count);
        Assert.Equal(400, commands.Select(c => c.Command.CommandId).Distinct().Count());
    }

    private static async Task PublishWithRetryAsync(SagaHarness h, int i, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                // The msg id makes a retried publish land once.
                await h.PublishAsync($"aggregate.acme.counter.n{i % 10}.added", SagaHarness.CloudEvent($"n-{i}", "added", new { n = i }), msgId: $"n-{i}", cancellationToken: cancellationToken);
                return;
            }
            catch (NATS.Client.Core.NatsException) when (attempt < 50)
            {
                await Task.Delay(100, cancellationToken);
            }
        }
    }
}
