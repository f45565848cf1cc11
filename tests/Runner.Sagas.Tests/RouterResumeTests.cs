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
        await PublishAppliedAsync(h, before, keys: 4, cts.Token);
        var name = h.RouterConsumer("AGGREGATE_EVENTS");
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
        await PublishAppliedAsync(h, before, keys: 3, cts.Token);
        var created = (await h.Js.GetStreamAsync("AGGREGATE_EVENTS", cancellationToken: cts.Token)).Info.Created.ToUnixTimeMilliseconds();
        var former = h.RouterConsumer("AGGREGATE_EVENTS");
        await h.StopRuntimeAsync(closeStore: false);
        var released = await LeaseAsync(h, cts.Token);
        Assert.Equal(LeaseRecord.Released, released.State);
        Assert.Equal((ulong)before, released.Checkpoint);
        Assert.Equal(created, released.StreamCreatedMs);

        await h.Js.DeleteConsumerAsync("AGGREGATE_EVENTS", former, cts.Token);
        await h.PublishAsync("aggregate.acme.counter.k0.added", SagaHarness.CloudEvent("e-last", "added", new { n = 99 }), cancellationToken: cts.Token);
        await h.StartRuntimeAsync();
        await SagaHarness.WaitUntilAsync(() => h.Listener.Count == before + 1, TimeSpan.FromSeconds(40), "the event published while stopped applied");

        var name = h.RouterConsumer("AGGREGATE_EVENTS");
        Assert.NotEqual(former, name);
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
        await PublishAppliedAsync(h, before, keys: 2, cts.Token);
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

        var info = (await h.Js.GetConsumerAsync("AGGREGATE_EVENTS", h.RouterConsumer("AGGREGATE_EVENTS"), cts.Token)).Info;
        Assert.Equal(ConsumerConfigDeliverPolicy.All, info.Config.DeliverPolicy);
        Assert.True(info.Delivered.StreamSeq >= after, $"delivered up to {info.Delivered.StreamSeq}");
        // The lease now speaks of the new stream: its checkpoint is the new stream's, not the old one's kept by a maximum.
        var created = (await h.Js.GetStreamAsync("AGGREGATE_EVENTS", cancellationToken: cts.Token)).Info.Created.ToUnixTimeMilliseconds();
        await SagaHarness.WaitUntilAsync(async () => await LeaseAsync(h, cts.Token) is { Checkpoint: after } lease && lease.StreamCreatedMs == created,
            TimeSpan.FromSeconds(20), "the lease to record the new stream's progress");
    }

    /// <summary>
    /// A router that takes the lease over deletes the consumers of the stream's former holders (and the one name all
    /// routers shared before consumers had epochs): none of them can pull or ack beside it. Its acks acknowledge
    /// every message before them, so a former holder's ack in its consumer could otherwise cover events it never
    /// routed. What a former consumer had acked was routed: the new holder resumes after the furthest such ack floor,
    /// even past what the lease recorded (a holder reports its progress to the lease only now and then).
    /// </summary>
    [Fact]
    public async Task A_router_taking_the_lease_over_deletes_former_consumers_and_resumes_after_their_ack_floor()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Counter());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        const int before = 6;
        await PublishAppliedAsync(h, before, keys: 3, cts.Token);
        var former = h.RouterConsumer("AGGREGATE_EVENTS");
        await h.StopRuntimeAsync(closeStore: false);
        Assert.Equal((ulong)before, (await LeaseAsync(h, cts.Token)).Checkpoint);

        // Four more, to k9 alone (sequences 7 to 10). The former holder's consumer acks up to 8, beyond the 6 its lease
        // record says; the shared name of old is there too, at the stream's start.
        for (var i = 0; i < 4; i++)
        {
            await h.PublishAsync("aggregate.acme.counter.k9.added", SagaHarness.CloudEvent($"late-{i}", "added", new { n = i }), cancellationToken: cts.Token);
        }
        await h.Js.DeleteConsumerAsync("AGGREGATE_EVENTS", former, cts.Token);
        var formerConsumer = await h.Js.CreateOrUpdateConsumerAsync("AGGREGATE_EVENTS", new ConsumerConfig(former)
        {
            AckPolicy = ConsumerConfigAckPolicy.All,
            DeliverPolicy = ConsumerConfigDeliverPolicy.ByStartSequence,
            OptStartSeq = before + 1,
        }, cts.Token);
        NATS.Client.JetStream.INatsJSMsg<byte[]>? last = null;
        await foreach (var msg in formerConsumer.FetchAsync<byte[]>(new NATS.Client.JetStream.NatsJSFetchOpts { MaxMsgs = 2, Expires = TimeSpan.FromSeconds(5) }, cancellationToken: cts.Token))
        {
            last = msg;
        }
        await last!.AckAsync(cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(async () => (await h.Js.GetConsumerAsync("AGGREGATE_EVENTS", former, cts.Token)).Info.AckFloor.StreamSeq == before + 2,
            TimeSpan.FromSeconds(30), "the former consumer acked up to 8");
        var shared = h.Options.RouterConsumer("AGGREGATE_EVENTS");
        await h.Js.CreateOrUpdateConsumerAsync("AGGREGATE_EVENTS", new ConsumerConfig(shared) { AckPolicy = ConsumerConfigAckPolicy.Explicit }, cts.Token);

        await h.StartRuntimeAsync();
        await SagaHarness.WaitUntilAsync(() => h.Instance("acme", "counter", "k9") is not null, TimeSpan.FromSeconds(40), "k9's events past the former floor applied");

        var name = h.RouterConsumer("AGGREGATE_EVENTS");
        var info = (await h.Js.GetConsumerAsync("AGGREGATE_EVENTS", name, cts.Token)).Info;
        Assert.Equal((ulong)before + 3, info.Config.OptStartSeq);
        var names = new List<string>();
        await foreach (var consumer in h.Js.ListConsumerNamesAsync("AGGREGATE_EVENTS", cts.Token))
        {
            names.Add(consumer);
        }
        Assert.Equal([name], names);
        // Sequences 9 and 10 only (a consumer that starts at 9 delivers nothing before it): 7 and 8 were acked by the
        // former holder, so they count as routed. The listener hears of a commit after the store holds it and the inbox
        // has its ack, so the wait is for all three: everything routed, k9's partition drained and both commits heard of.
        await SagaHarness.WaitUntilAsync(async () =>
            (await h.Js.GetConsumerAsync("AGGREGATE_EVENTS", name, cts.Token)).Info.AckFloor.StreamSeq == before + 4
            && await h.PartitionDrainedAsync("acme", "counter", "k9", cts.Token)
            && h.Listener.Count >= before + 2, TimeSpan.FromSeconds(20), "sequences up to 10 routed and applied");
        Assert.Equal(["late-2", "late-3"], h.Listener.Notices.Skip(before).Select(n => n.EventId));
        Assert.Equal(2, h.Instance("acme", "counter", "k9")!.Version);
    }

    /// <summary>Publishes <paramref name="count"/> events over <paramref name="keys"/> counters and waits until all are applied.</summary>
    private static async Task PublishAppliedAsync(SagaHarness h, int count, int keys, CancellationToken cancellationToken)
    {
        for (var i = 0; i < count; i++)
        {
            await h.PublishAsync($"aggregate.acme.counter.k{i % keys}.added", SagaHarness.CloudEvent($"e-{i}", "added", new { n = i }), cancellationToken: cancellationToken);
        }
        await SagaHarness.WaitUntilAsync(() => h.Listener.Count == count, TimeSpan.FromSeconds(30), "first events applied");
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
