using Runner.Core.Keys;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>The saga runtime's drain and resume, on a real nats-server and LMDB.</summary>
public sealed class DrainTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Drain_returns_with_due_timers_fired_the_outbox_empty_and_future_timers_kept_and_resume_goes_on()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Timed(), o => o with { Partitions = 2 });
        using var cts = new CancellationTokenSource(s_wait);
        var ct = cts.Token;
        await Timers.SetAsync(h, "t1", "set-t1", [new { name = "soon", after_ms = 0 }, new { name = "later", after_ms = 600_000 }], cancellationToken: ct);
        await SagaHarness.WaitUntilAsync(() => h.Instance("acme", "timed", "t1")?.Version >= 1, s_wait, "the timers to be set");

        await h.Runtime!.DrainAsync(ct);

        Assert.Equal(0, h.Count(KeySpace.Outbox));
        // The due timer went out; the one ten minutes away stays stored for whoever runs the partition next.
        Assert.Contains(await Timers.EventsAsync(h, ct), e => e.Body.GetProperty("data").GetProperty("name").GetString() == "soon");
        Assert.Equal(1, h.Count(KeySpace.Schedule));
        Assert.Empty(h.Runtime.OwnedPartitions);

        await h.Runtime.ResumeAsync(ct);
        await SagaHarness.WaitUntilAsync(() => h.Runtime.OwnedPartitions.Order().SequenceEqual([0, 1]), s_wait, "the partitions to be run again");
        await Timers.SetAsync(h, "t1", "set-t1-again", cancel: ["later"], cancellationToken: ct);
        await SagaHarness.WaitUntilAsync(() => Timers.SeenOf(h.Instance("acme", "timed", "t1")).Count(s => s == "set") == 2, s_wait, "the event after resume");
        await SagaHarness.WaitUntilAsync(() => Timers.FiredOf(h.Instance("acme", "timed", "t1")).Any(f => f.Name == "soon"), s_wait, "the fired timer to reach the saga");
        await SagaHarness.WaitUntilAsync(() => h.Count(KeySpace.Schedule) == 0, s_wait, "the cancelled timer to be gone");
    }

    [Fact]
    public async Task A_resume_before_the_drain_hands_anything_over_leaves_no_partition_held_idle()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Timed(), o => o with { Partitions = 2 });
        using var cts = new CancellationTokenSource(s_wait);
        var ct = cts.Token;
        await SagaHarness.WaitUntilAsync(() => h.Runtime!.OwnedPartitions.Count == 2, s_wait, "both partitions to be run");

        // The drain's first, synchronous step (what /admin/drain does before it answers), then a resume
        // before the drain's hand-over has started: the stopped runs must not stay held with nobody reading.
        h.Runtime!.StopIntake();
        await h.Runtime.ResumeAsync(ct);

        await Timers.SetAsync(h, "t9", "set-after-resume", [new { name = "soon", after_ms = 0 }], cancellationToken: ct);
        await SagaHarness.WaitUntilAsync(() => Timers.FiredOf(h.Instance("acme", "timed", "t9")).Any(f => f.Name == "soon"), s_wait,
            "an event and its timer after the resume");
        Assert.Equal([0, 1], h.Runtime.OwnedPartitions.Order());
    }
}
