using Microsoft.Extensions.Logging.Abstractions;
using NATS.Client.JetStream.Models;
using Runner.Core.Events;
using Runner.Core.Keys;
using Runner.Messaging;
using Runner.Sagas.Routing;
using Runner.Storage;
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

    /// <summary>
    /// The inbox refuses a key's first event and would store its second: an inbox whose leader changes between the two
    /// publishes, or a connection lost after the first was written, does the same. The second must not be stored
    /// before the first, or the first, routed again, would land behind it. Here the first is larger than the inbox
    /// takes until it "comes back" (its size limit raised again). The two come in one batch, or in two: the router
    /// publishes a batch's first pass while the batch before it is still in flight, and the later batch goes back
    /// without the key's event stored.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_later_event_of_a_key_is_not_stored_while_the_inbox_refuses_an_earlier_one(bool inTheBatchInFlight)
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Counter(), start: false);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var streams = h.Options.JetStream.Streams;
        var config = (await h.Js.GetStreamAsync(streams.Inbox, cancellationToken: cts.Token)).Info.Config;
        await h.Js.UpdateStreamAsync(config with { MaxMsgSize = 4096 }, cts.Token);

        await h.PublishAsync("aggregate.acme.counter.k9.added", SagaHarness.CloudEvent("e-0", "added", new { n = 0 }), cancellationToken: cts.Token);
        await h.PublishAsync("aggregate.acme.counter.k0.added", SagaHarness.CloudEvent("e-1", "added", new { n = 1, pad = new string('x', 8192) }), cancellationToken: cts.Token);
        await h.PublishAsync("aggregate.acme.counter.k0.added", SagaHarness.CloudEvent("e-2", "added", new { n = 2 }), cancellationToken: cts.Token);
        await h.PublishAsync("aggregate.acme.counter.k1.added", SagaHarness.CloudEvent("e-3", "added", new { n = 3 }), cancellationToken: cts.Token);

        // Routed by a router of the test's own (the runtime is not started yet).
        await using var batcher = new MessageBatcher(h.Js, streams.AggregateEvents,
            new ConsumerConfig("ordering-test") { AckPolicy = ConsumerConfigAckPolicy.Explicit, MaxDeliver = -1 },
            _ => ValueTask.FromResult(1UL), 10, NullLogger.Instance, TimeProvider.System, cts.Token);
        var batch = new List<JetStreamMessage>();
        while (batch.Count < 4)
        {
            batch.AddRange(await batcher.ReadBatchAsync(10, cts.Token));
        }
        using (var store = new LmdbStore(new LmdbOptions { Path = h.Dir.File("router-lmdb") }, NullLogger<LmdbStore>.Instance))
        {
            var router = new Router(h.Js, store, () => h.Manifests, h.Options, streams.AggregateEvents, NullLogger<Router>.Instance, TimeProvider.System);
            if (inTheBatchInFlight)
            {
                // As the router's loop does it: the second batch's first pass goes out before the first batch is settled.
                var first = await router.PublishAsync(batch[..2], cts.Token);
                var second = await router.PublishAsync(batch[2..], cts.Token);
                Assert.False(await router.FinishAsync(first, cts.Token));
                await router.GiveBackAsync(second, cts.Token);
            }
            else
            {
                Assert.False(await router.RouteBatchAsync(batch, cts.Token));
            }
        }
        var keys = (await h.MessagesAsync(streams.Inbox, cts.Token)).Select(m => m.Headers![EventHeaders.Key].ToString()).ToList();
        Assert.Contains("k9", keys);
        Assert.DoesNotContain("k0", keys);

        // The inbox takes the large event again: the runtime routes the stream from its start, and k0 sees its events in order.
        await h.Js.UpdateStreamAsync(config, cts.Token);
        await h.StartRuntimeAsync();
        await SagaHarness.WaitUntilAsync(() => h.Listener.Count == 4, TimeSpan.FromSeconds(30), "the four events applied");
        var k0 = h.Instance("acme", "counter", "k0")!;
        Assert.Equal([1, 2], k0.State.GetProperty("order").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(1, h.Instance("acme", "counter", "k1")!.Version);
        Assert.Equal(1, h.Instance("acme", "counter", "k9")!.Version);
        Assert.Empty(h.Quarantine());
    }
}
