using Runner.Core.Keys;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>Timer cases a review found: a timer set again at the same due time, and a saga with a broad result trigger.</summary>
public sealed class TimerReviewTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_timer_set_again_at_the_same_due_time_after_it_fired_fires_again()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Timed(), o => o with { Partitions = 1 });
        using var cts = new CancellationTokenSource(s_wait);
        var at = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 500;
        await Timers.SetAsync(h, "z1", "set-z1", [new { name = "a", at }], cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => Timers.FiredOf(h.Instance("acme", "timed", "z1")).Count == 1, s_wait, "the first fire");

        await Timers.SetAsync(h, "z1", "set-z1-again", [new { name = "a", at }], cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => Timers.FiredOf(h.Instance("acme", "timed", "z1")).Count == 2, s_wait, "the second fire");

        var instance = h.Instance("acme", "timed", "z1")!;
        Assert.All(Timers.FiredOf(instance), f => Assert.Equal(at, f.Due));
        Assert.Equal(2, Timers.FiredOf(instance).Select(f => f.Id).Distinct().Count());
        Assert.Null(instance.Timers);
        await SagaHarness.WaitUntilAsync(() => h.Count(KeySpace.Schedule) == 0, s_wait, "no schedule left");
    }

    [Fact]
    public async Task A_sagas_own_timer_reaches_it_through_a_broad_result_trigger_with_another_key()
    {
        var files = TestSagas.Timed();
        files["timed.yaml"] = """
            kind: saga
            name: timed
            script: timed.js
            triggers:
              - stream: AGGREGATE_EVENTS
                subject: "aggregate.*.timed.*.>"
                correlation: "subject[3]"
              - stream: WORKFLOW_EVENTS
                subject: "workflow.evt.*.>"
                correlation: "$.data.correlation_id"
            limits: { timeout_ms: 500, max_statements: 100000, memory_mb: 16, recursion: 64 }
            """;
        await using var h = await SagaHarness.StartAsync(nats, files, o => o with { Partitions = 1 });
        using var cts = new CancellationTokenSource(s_wait);

        await Timers.SetAsync(h, "w1", "set-w1", [new { name = "a", after_ms = 100 }], cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => Timers.FiredOf(h.Instance("acme", "timed", "w1")).Count == 1, s_wait, "the timer");

        Assert.Empty(h.Quarantine());
        Assert.Null(h.Instance("acme", "timed", "w1")!.Timers);
    }
}
