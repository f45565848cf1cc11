using NATS.Client.JetStream.Models;
using Runner.Sagas.Ownership;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

public sealed class RouterResumeTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    /// <summary>
    /// The router resumes from its consumer's ack floor. When the consumer is gone (deleted by an
    /// operator, or an attach that deleted it failed to create it again) that floor reads as 0:
    /// the router must resume where it already was, not route the whole trigger stream again.
    /// </summary>
    [Fact]
    public async Task A_router_whose_consumer_vanished_resumes_where_it_was_not_from_the_start()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Counter());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        const int before = 20;
        for (var i = 0; i < before; i++)
        {
            await h.PublishAsync($"aggregate.acme.counter.k{i % 4}.added", SagaHarness.CloudEvent($"e-{i}", "added", new { n = i }), cancellationToken: cts.Token);
        }
        await SagaHarness.WaitUntilAsync(() => h.Listener.Count == before, TimeSpan.FromSeconds(30), "first events applied");
        var name = h.Options.RouterConsumer("AGGREGATE_EVENTS");
        await SagaHarness.WaitUntilAsync(async () =>
            (await h.Js.GetConsumerAsync("AGGREGATE_EVENTS", name, cts.Token)).Info.AckFloor.StreamSeq == before, TimeSpan.FromSeconds(30), "router acked all");

        await h.Js.DeleteConsumerAsync("AGGREGATE_EVENTS", name, cts.Token);
        await h.PublishAsync("aggregate.acme.counter.k0.added", SagaHarness.CloudEvent("e-last", "added", new { n = 99 }), cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Listener.Count == before + 1, TimeSpan.FromSeconds(40), "the event after the delete applied");

        var info = (await h.Js.GetConsumerAsync("AGGREGATE_EVENTS", name, cts.Token)).Info;
        Assert.Equal(ConsumerConfigDeliverPolicy.ByStartSequence, info.Config.DeliverPolicy);
        Assert.Equal((ulong)before + 1, info.Config.OptStartSeq);
        Assert.Equal(before + 1, h.Instance("acme", "counter", "k0")!.Version + h.Instance("acme", "counter", "k1")!.Version
            + h.Instance("acme", "counter", "k2")!.Version + h.Instance("acme", "counter", "k3")!.Version);
    }

    /// <summary>
    /// A router that takes the stream's lease over (another replica, or this one after a restart)
    /// resumes after what the former holder routed, as its lease records, even when the consumer
    /// and its ack floor are gone: routing the stream again from the start would apply events
    /// older than the dedupe retention twice.
    /// </summary>
    [Fact]
    public async Task A_router_taking_the_lease_over_resumes_after_what_the_lease_says_was_routed_when_the_consumer_is_gone()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Counter());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        const int before = 12;
        for (var i = 0; i < before; i++)
        {
            await h.PublishAsync($"aggregate.acme.counter.k{i % 3}.added", SagaHarness.CloudEvent($"e-{i}", "added", new { n = i }), cancellationToken: cts.Token);
        }
        await SagaHarness.WaitUntilAsync(() => h.Listener.Count == before, TimeSpan.FromSeconds(30), "first events applied");
        var created = (await h.Js.GetStreamAsync("AGGREGATE_EVENTS", cancellationToken: cts.Token)).Info.Created.ToUnixTimeMilliseconds();
        await h.StopRuntimeAsync(closeStore: false);
        var released = await LeaseAsync(h, cts.Token);
        Assert.Equal(LeaseRecord.Released, released.State);
        Assert.Equal((ulong)before, released.Checkpoint);
        Assert.Equal(created, released.StreamCreatedMs);

        var name = h.Options.RouterConsumer("AGGREGATE_EVENTS");
        await h.Js.DeleteConsumerAsync("AGGREGATE_EVENTS", name, cts.Token);
        await h.PublishAsync("aggregate.acme.counter.k0.added", SagaHarness.CloudEvent("e-last", "added", new { n = 99 }), cancellationToken: cts.Token);
        await h.StartRuntimeAsync();
        await SagaHarness.WaitUntilAsync(() => h.Listener.Count == before + 1, TimeSpan.FromSeconds(40), "the event published while stopped applied");

        var info = (await h.Js.GetConsumerAsync("AGGREGATE_EVENTS", name, cts.Token)).Info;
        Assert.Equal(ConsumerConfigDeliverPolicy.ByStartSequence, info.Config.DeliverPolicy);
        Assert.Equal((ulong)before + 1, info.Config.OptStartSeq);
    }

    /// <summary>
    /// A trigger stream deleted and created again starts its sequences over: the lease's record of
    /// what was routed belongs to the old stream and must not make the router skip the new one's.
    /// (Its first sequences still meet the inbox's duplicate window: docs/operations.md says so.)
    /// </summary>
    [Fact]
    public async Task A_trigger_stream_created_again_is_routed_from_its_start_whatever_the_lease_recorded()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Counter());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        const int before = 10;
        for (var i = 0; i < before; i++)
        {
            await h.PublishAsync($"aggregate.acme.counter.k{i % 2}.added", SagaHarness.CloudEvent($"e-{i}", "added", new { n = i }), cancellationToken: cts.Token);
        }
        await SagaHarness.WaitUntilAsync(() => h.Listener.Count == before, TimeSpan.FromSeconds(30), "first events applied");
        await h.StopRuntimeAsync(closeStore: false);
        Assert.Equal((ulong)before, (await LeaseAsync(h, cts.Token)).Checkpoint);

        var config = (await h.Js.GetStreamAsync("AGGREGATE_EVENTS", cancellationToken: cts.Token)).Info.Config;
        await h.Js.DeleteStreamAsync("AGGREGATE_EVENTS", cts.Token);
        await h.Js.CreateStreamAsync(config, cts.Token);
        // More than the old stream held: the ones past its last sequence are new to the inbox too.
        const int after = before + 3;
        for (var i = 0; i < after; i++)
        {
            await h.PublishAsync("aggregate.acme.counter.k9.added", SagaHarness.CloudEvent($"new-{i}", "added", new { n = i }), cancellationToken: cts.Token);
        }
        await h.StartRuntimeAsync();
        await SagaHarness.WaitUntilAsync(() => h.Instance("acme", "counter", "k9")?.Version >= after - before, TimeSpan.FromSeconds(40), "the new stream's later events applied");

        var info = (await h.Js.GetConsumerAsync("AGGREGATE_EVENTS", h.Options.RouterConsumer("AGGREGATE_EVENTS"), cts.Token)).Info;
        Assert.Equal(ConsumerConfigDeliverPolicy.All, info.Config.DeliverPolicy);
        Assert.True(info.Delivered.StreamSeq >= after, $"delivered up to {info.Delivered.StreamSeq}");
        // The lease now speaks of the new stream: its checkpoint is the new stream's, not the old one's kept by a maximum.
        var created = (await h.Js.GetStreamAsync("AGGREGATE_EVENTS", cancellationToken: cts.Token)).Info.Created.ToUnixTimeMilliseconds();
        await SagaHarness.WaitUntilAsync(async () => await LeaseAsync(h, cts.Token) is { Checkpoint: after } lease && lease.StreamCreatedMs == created,
            TimeSpan.FromSeconds(20), "the lease to record the new stream's progress");
    }

    private static async Task<LeaseRecord> LeaseAsync(SagaHarness h, CancellationToken cancellationToken)
    {
        var bucket = await OwnershipBucket.OpenExistingAsync(h.Js, h.Options.OwnershipBucket, cancellationToken)
            ?? throw new InvalidOperationException("no ownership bucket");
        var lease = await bucket.GetLeaseAsync(OwnershipBucket.RouterKey("AGGREGATE_EVENTS"), cancellationToken)
            ?? throw new InvalidOperationException("no router lease");
        return lease.Record;
    }
}
