using Runner.Core.Keys;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

public sealed class OrderingTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    [Fact]
    public async Task Thousand_events_for_fifty_keys_are_seen_by_each_instance_in_publish_order()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Counter(), o => o with { Partitions = 8, JetStream = o.JetStream with { Batch = 64 } });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        const int events = 1000;
        const int keys = 50;
        for (var i = 0; i < events; i++)
        {
            await h.PublishAsync($"aggregate.acme.counter.key-{i % keys}.added", SagaHarness.CloudEvent($"o-{i}", "added", new { n = i }), cancellationToken: cts.Token);
        }
        await SagaHarness.WaitUntilAsync(() => h.Listener.Count == events, TimeSpan.FromSeconds(60), "1000 transitions");

        var partitions = new HashSet<int>();
        for (var k = 0; k < keys; k++)
        {
            var instance = h.Instance("acme", "counter", $"key-{k}")!;
            var seen = instance.State.GetProperty("order").EnumerateArray().Select(e => e.GetInt32()).ToList();
            Assert.Equal(Enumerable.Range(0, events / keys).Select(j => j * keys + k), seen);
            Assert.Equal(events / keys, instance.Version);
        }
        foreach (var notice in h.Listener.Notices)
        {
            partitions.Add(notice.Partition.Value);
        }
        Assert.True(partitions.Count >= 6, $"keys should spread over partitions, saw {partitions.Count}");
        await SagaHarness.WaitUntilAsync(() => h.Count(KeySpace.Outbox) == 0, TimeSpan.FromSeconds(30), "relay drained");
        Assert.Equal(events, (await h.CommandsAsync(cts.Token)).Select(c => c.Command.CommandId).Distinct().Count());
    }
}
