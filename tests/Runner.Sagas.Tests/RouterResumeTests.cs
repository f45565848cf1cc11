using NATS.Client.JetStream.Models;
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
}
