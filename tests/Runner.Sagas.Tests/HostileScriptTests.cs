using Runner.Scripting;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

public sealed class HostileScriptTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    [Fact]
    public async Task Hostile_events_are_quarantined_within_limits_and_the_worker_keeps_processing_others()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Hostile(), o => o with { Partitions = 2 });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var hostile = new Dictionary<string, string>
        {
            ["loop"] = ScriptFailure.StatementLimit,
            ["catch-loop"] = ScriptFailure.StatementLimit,
            ["recurse"] = ScriptFailure.RecursionLimit,
            ["eval"] = ScriptFailure.ScriptError,
            ["function"] = ScriptFailure.ScriptError,
            ["array"] = ScriptFailure.MemoryLimit,
            ["string"] = ScriptFailure.MemoryLimit,
            ["redos"] = ScriptFailure.RegexTimeout,
            ["clr"] = ScriptFailure.ScriptError,
            ["import"] = ScriptFailure.ScriptError,
            ["pollute"] = ScriptFailure.ScriptError,
            ["throw"] = ScriptFailure.ScriptError,
            ["bad-output"] = ScriptFailure.OutputContract,
        };
        var i = 0;
        foreach (var kind in hostile.Keys)
        {
            // Each hostile event is followed by a good one for another instance on the same partitions.
            await h.PublishAsync($"aggregate.acme.hostile.bad-{kind}.x", SagaHarness.CloudEvent($"bad-{kind}", "x", new { kind }), cancellationToken: cts.Token);
            await h.PublishAsync($"aggregate.acme.hostile.good-{i}.x", SagaHarness.CloudEvent($"good-{i}", "x", new { kind = "fine" }), cancellationToken: cts.Token);
            i++;
        }
        await SagaHarness.WaitUntilAsync(() => h.Quarantine().Count == hostile.Count && h.Listener.Count == hostile.Count, TimeSpan.FromSeconds(45), "all events handled");

        var byKey = h.Quarantine().ToDictionary(q => q.Key!);
        foreach (var (kind, code) in hostile)
        {
            Assert.True(byKey.TryGetValue($"bad-{kind}", out var record), $"no quarantine record for {kind}");
            // A loop may hit the clock before the statement count; Jint stops a string bomb with
            // JavaScript's own RangeError (Invalid string length) before it allocates the memory.
            var alternative = (kind.Contains("loop", StringComparison.Ordinal) && record.Reason == ScriptFailure.Timeout)
                || (kind == "string" && record.Reason == ScriptFailure.ScriptError && record.Detail.Contains("Invalid string length", StringComparison.Ordinal));
            Assert.True(code == record.Reason || alternative,
                $"{kind}: expected {code}, got {record.Reason} ({record.Detail})");
            Assert.Equal("hostile", record.Saga);
            // The instance that failed is parked on that event, with no state applied.
            var parked = h.Instance("acme", "hostile", $"bad-{kind}")!;
            Assert.Equal((0L, $"bad-{kind}", record.Reason), (parked.Version, parked.Parked!.EventId, parked.Parked.Reason));
        }
        for (var j = 0; j < hostile.Count; j++)
        {
            var good = h.Instance("acme", "hostile", $"good-{j}")!;
            Assert.Equal("no", good.State.GetProperty("polluted").GetString());
        }
    }
}
