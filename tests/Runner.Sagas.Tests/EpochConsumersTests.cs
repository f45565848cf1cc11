using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using Runner.Sagas.Ownership;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>Which consumers a new lease holder (router or partition) retires: those of earlier epochs, and the name without epoch.</summary>
public sealed class EpochConsumersTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    [Fact]
    public async Task Earlier_epochs_and_the_name_without_epoch_are_former_and_a_later_epoch_or_another_name_is_not()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var connection = new NatsConnection(new NatsOpts { Url = nats.Url });
        var js = new NatsJSContext(connection);
        var id = Guid.NewGuid().ToString("N")[..8];
        var stream = $"EPC_{id}";
        await js.CreateStreamAsync(new StreamConfig(stream, [$"epc.{id}.>"]), cts.Token);
        foreach (var name in new[] { "x", "x-e1", "x-e2", "x-e3", "x-e12", "xy-e1", "x-eabc" })
        {
            await js.CreateOrUpdateConsumerAsync(stream, new ConsumerConfig(name), cts.Token);
        }

        var former = await EpochConsumers.FormerAsync(js, stream, "x", 3, cts.Token);

        Assert.Equal(["x", "x-e1", "x-e2"], former.Order(StringComparer.Ordinal));
    }
}
