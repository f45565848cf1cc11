using NATS.Client.JetStream.Models;
using Runner.Core.Keys;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

public sealed class AtomicityTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    [Fact]
    public async Task Failure_inside_the_commit_writes_nothing_acks_nothing_and_the_retry_applies_once()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Counter(), o => o with { Partitions = 1 });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var failures = 0;
        var failing = true;
        h.Store!.Writer.FaultInjector = (batch, index) =>
        {
            // Fail a transition batch after its state was written but before the checkpoint.
            if (Volatile.Read(ref failing) && batch.Ops.Any(o => o.Space == KeySpace.Outbox) && index == batch.Count - 2)
            {
                Interlocked.Increment(ref failures);
                throw new InvalidOperationException("injected failure inside the commit");
            }
        };
        await h.PublishAsync("aggregate.acme.counter.a1.added", SagaHarness.CloudEvent("a-1", "added", new { n = 1 }), cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => Volatile.Read(ref failures) >= 2, TimeSpan.FromSeconds(30), "commit attempts to fail");

        Assert.Null(h.Instance("acme", "counter", "a1"));
        Assert.Equal(0, h.Count(KeySpace.Outbox));
        Assert.Equal(0, h.Count(KeySpace.Checkpoint));
        Assert.Equal(0, h.Count(KeySpace.Dedupe));
        Assert.Equal(0, h.Count(KeySpace.Schedule));
        ConsumerInfo? consumer = null;
        await SagaHarness.WaitUntilAsync(async () => (consumer = await h.PartitionConsumerInfoAsync(0, cts.Token)) is not null, TimeSpan.FromSeconds(30), "the partition's consumer");
        Assert.Equal(0UL, consumer!.AckFloor.StreamSeq);
        Assert.Equal(0, h.Listener.Count);

        Volatile.Write(ref failing, false);
        await SagaHarness.WaitUntilAsync(() => h.Instance("acme", "counter", "a1") is not null && h.Count(KeySpace.Outbox) == 0, TimeSpan.FromSeconds(30), "retry to commit");
        Assert.Equal(1, h.Instance("acme", "counter", "a1")!.Version);
        Assert.Single(await h.CommandsAsync(cts.Token));
        await SagaHarness.WaitUntilAsync(async () =>
        {
            var c = await h.PartitionConsumerInfoAsync(0, cts.Token);
            // The listener hears of a commit after its ack: wait for both.
            return c?.AckFloor.StreamSeq == 1 && h.Listener.Count >= 1;
        }, TimeSpan.FromSeconds(30), "ack after commit");
        Assert.Equal(1, h.Listener.Count);
    }
}
