using Runner.Sagas.Quarantine;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>
/// What the router does when an inbox publish fails: an inbox that does not answer (no leader,
/// NATS restarting) is waited out however long it lasts, while a message the inbox refuses for
/// good is quarantined after <c>RUNNER_MAX_DELIVER</c> refusals and the stream goes on.
/// </summary>
public sealed class RouterRetryTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private const int MaxDeliver = 2;

    [Fact]
    public async Task An_inbox_that_does_not_answer_for_longer_than_max_deliver_attempts_is_waited_out_and_quarantines_nothing()
    {
        var logs = new ReviewLogs();
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Counter(),
            o => o with { JetStream = o.JetStream with { MaxDeliver = MaxDeliver } }, loggers: logs);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var inbox = h.Options.JetStream.Streams.Inbox;
        var config = (await h.Js.GetStreamAsync(inbox, cancellationToken: cts.Token)).Info.Config;

        // No inbox stream: every publish to it meets "no responders", as while its leader is elected.
        await h.Js.DeleteStreamAsync(inbox, cts.Token);
        const int events = 8;
        for (var i = 0; i < events; i++)
        {
            await h.PublishAsync($"aggregate.acme.counter.k{i % 3}.added", SagaHarness.CloudEvent($"e-{i}", "added", new { n = i }), cancellationToken: cts.Token);
        }
        await SagaHarness.WaitUntilAsync(() => RouterFailures(logs) > 2 * MaxDeliver, TimeSpan.FromSeconds(40),
            $"the router failed more than {2 * MaxDeliver} times");
        Assert.Empty(h.Quarantine());
        Assert.Equal(0, h.Listener.Count);

        await h.Js.CreateStreamAsync(config, cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Listener.Count == events, TimeSpan.FromSeconds(40), "every event applied once the inbox is back");
        Assert.Empty(h.Quarantine());
        Assert.Equal(events, Enumerable.Range(0, 3).Sum(k => h.Instance("acme", "counter", $"k{k}")!.Version));
    }

    [Fact]
    public async Task A_message_the_inbox_refuses_for_good_is_quarantined_after_max_deliver_refusals_and_the_next_is_routed()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Counter(),
            o => o with { JetStream = o.JetStream with { MaxDeliver = MaxDeliver } });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var inbox = h.Options.JetStream.Streams.Inbox;
        var config = (await h.Js.GetStreamAsync(inbox, cancellationToken: cts.Token)).Info.Config;
        await h.Js.UpdateStreamAsync(config with { MaxMsgSize = 4096 }, cts.Token);

        var big = await h.PublishAsync("aggregate.acme.counter.k0.added",
            SagaHarness.CloudEvent("e-big", "added", new { n = 0, pad = new string('x', 8192) }), cancellationToken: cts.Token);
        await h.PublishAsync("aggregate.acme.counter.k1.added", SagaHarness.CloudEvent("e-small", "added", new { n = 1 }), cancellationToken: cts.Token);

        // The refused message's later batch mates may reach the inbox before its last refusal
        // (they are published together): wait for both outcomes, in whichever order they come.
        await SagaHarness.WaitUntilAsync(() => h.Listener.Count == 1 && h.Quarantine().Count == 1, TimeSpan.FromSeconds(30),
            "the refused event quarantined and the one after it applied");
        var record = Assert.Single(h.Quarantine());
        Assert.Equal(QuarantineRecords.MaxDeliverExceeded, record.Reason);
        Assert.Equal("AGGREGATE_EVENTS", record.Stream);
        Assert.Equal(big, record.Sequence);
        Assert.Contains($"refused the publish {MaxDeliver} times", record.Detail, StringComparison.Ordinal);
        Assert.Null(h.Instance("acme", "counter", "k0"));
        Assert.Equal(1, h.Instance("acme", "counter", "k1")!.Version);
    }

    private static int RouterFailures(ReviewLogs logs) =>
        logs.Lines.Count(l => l.Contains("router publish for AGGREGATE_EVENTS#", StringComparison.Ordinal));
}
