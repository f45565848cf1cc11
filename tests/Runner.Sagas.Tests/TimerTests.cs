using System.Text;
using System.Text.Json;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Core;
using Runner.Core.Events;
using Runner.Core.Keys;
using Runner.Core.Transitions;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

public sealed class TimerTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Deadline_timer_calls_compensate_which_emits_its_compensation_command()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Timed(), o => o with { Partitions = 2 });
        using var cts = new CancellationTokenSource(s_wait);
        await Timers.SetAsync(h, "d1", "set-d1", [new { name = "deadline", after_ms = 300, deadline = true }], cancellationToken: cts.Token);

        await SagaHarness.WaitUntilAsync(() => h.Instance("acme", "timed", "d1")?.Done == true, s_wait, "the deadline to finish the instance");
        var instance = h.Instance("acme", "timed", "d1")!;
        var compensated = instance.State.GetProperty("compensated");
        var due = compensated.GetProperty("due").GetInt64();
        Assert.Equal("timer.fired", compensated.GetProperty("type").GetString());
        Assert.Equal("deadline", compensated.GetProperty("name").GetString());
        Assert.Equal(due, compensated.GetProperty("now").GetInt64());
        Assert.Equal(instance.CreatedAtMs + 300, due);
        Assert.Empty(Timers.FiredOf(instance)); // on_event never saw the timer
        Assert.Equal(["set", "timer.fired"], Timers.SeenOf(instance));
        Assert.Equal(2, instance.Version);
        Assert.Null(instance.Timers);
        Assert.Equal(0, h.Count(KeySpace.Schedule));

        List<(string Subject, CommandMessage Command, NatsHeaders? Headers)> commands = [];
        await SagaHarness.WaitUntilAsync(async () => (commands = await h.CommandsAsync(cts.Token)).Count == 1, s_wait, "the compensation command");
        var (subject, command, _) = commands[0];
        Assert.Equal("workflow.cmd.acme.order.cancel", subject);
        Assert.Equal("order.cancel", command.Effect);
        Assert.Equal("d1", command.CorrelationId);
        Assert.Equal($"timer:acme:timed:d1:deadline:{due}:1", command.CausationId);
    }

    [Fact]
    public async Task Cancelled_schedule_never_fires_into_the_saga_even_when_its_event_was_already_published()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Timed(), o => o with { Partitions = 2 });
        using var cts = new CancellationTokenSource(s_wait);
        await Timers.SetAsync(h, "c1", "set-c1", [new { name = "a", after_ms = 6000 }, new { name = "b", after_ms = 6500 }], cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Instance("acme", "timed", "c1")?.Version == 1, s_wait, "the timers to be set");
        var dueA = h.Instance("acme", "timed", "c1")!.Timers!["a"];
        await Timers.SetAsync(h, "c1", "cancel-c1", cancel: ["a"], cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Instance("acme", "timed", "c1")?.Version == 2, s_wait, "the cancel");
        Assert.Equal(["b"], h.Instance("acme", "timed", "c1")!.Timers!.Keys);

        // A scheduler that published 'a' just before the cancel committed: the event is on the stream anyway.
        var raced = new ScheduleRecord { Tenant = "acme", Saga = "timed", Key = "c1", Name = "a", DueMs = dueA, Generation = 1, CausationId = "set-c1" };
        await h.PublishRawAsync("workflow.evt.acme.timer.timed", TimerEvents.Body(raced), msgId: "raced-a", cancellationToken: cts.Token);

        await SagaHarness.WaitUntilAsync(() => Timers.FiredOf(h.Instance("acme", "timed", "c1")).Count == 1, s_wait, "timer b, due after a");
        await SagaHarness.WaitUntilAsync(() => h.Count(KeySpace.Dedupe) == 4, s_wait, "the raced timer's marker");
        var instance = h.Instance("acme", "timed", "c1")!;
        Assert.Equal("b", Assert.Single(Timers.FiredOf(instance)).Name);
        Assert.Equal(["set", "set", "timer.fired"], Timers.SeenOf(instance));
        Assert.Equal(3, instance.Version);
        var outcomes = h.Store!.Read(r => r.Scan(KeySpace.Dedupe, [], 10))
            .Select(kv => JsonSerializer.Deserialize(kv.Value, CoreJsonContext.Default.DedupeRecord)!.Outcome).Order().ToList();
        Assert.Equal([DedupeRecord.Applied, DedupeRecord.Applied, DedupeRecord.Applied, DedupeRecord.IgnoredStaleTimer], outcomes);
        // Only the raced copy of 'a' exists: the scheduler itself never published it.
        var events = await Timers.EventsAsync(h, cts.Token);
        Assert.Equal([$"timer:acme:timed:c1:a:{dueA}:1", $"timer:acme:timed:c1:b:{instance.State.GetProperty("fired")[0].GetProperty("due").GetInt64()}:1"],
            events.Select(Timers.Id).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Replaced_schedule_fires_once_at_its_new_time()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Timed(), o => o with { Partitions = 2 });
        using var cts = new CancellationTokenSource(s_wait);
        await Timers.SetAsync(h, "r1", "set-r1", [new { name = "a", after_ms = 6000 }], cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Instance("acme", "timed", "r1")?.Version == 1, s_wait, "the first timer");
        var oldDue = h.Instance("acme", "timed", "r1")!.Timers!["a"];
        await Timers.SetAsync(h, "r1", "reset-r1", [new { name = "a", after_ms = 7000 }], cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Instance("acme", "timed", "r1")?.Version == 2, s_wait, "the replacement");
        var newDue = h.Instance("acme", "timed", "r1")!.Timers!["a"];
        Assert.True(newDue > oldDue, $"the replacement is due later ({newDue} vs {oldDue})");
        Assert.Equal(1, h.Count(KeySpace.Schedule));

        await SagaHarness.WaitUntilAsync(() => h.Instance("acme", "timed", "r1")?.Version == 3 && h.Count(KeySpace.Schedule) == 0, s_wait, "the replaced timer");
        var instance = h.Instance("acme", "timed", "r1")!;
        var fired = Assert.Single(Timers.FiredOf(instance));
        Assert.Equal(new Timers.Fired("a", newDue, newDue, $"timer:acme:timed:r1:a:{newDue}:2"), fired);
        Assert.Null(instance.Timers);
        Assert.Equal([$"timer:acme:timed:r1:a:{newDue}:2"], (await Timers.EventsAsync(h, cts.Token)).Select(Timers.Id));
    }

    [Fact]
    public async Task Timer_event_has_the_documented_subject_id_headers_time_and_data()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Timed(), o => o with { Partitions = 2 });
        using var cts = new CancellationTokenSource(s_wait);
        const string TraceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        await Timers.SetAsync(h, "s1", "set-s1", [new { name = "ping", after_ms = 100, payload = new { x = 1, word = "caf\u00e9" } }],
            headers: new NatsHeaders { ["traceparent"] = TraceParent }, cancellationToken: cts.Token);

        await SagaHarness.WaitUntilAsync(() => Timers.FiredOf(h.Instance("acme", "timed", "s1")).Count == 1, s_wait, "the timer");
        var instance = h.Instance("acme", "timed", "s1")!;
        var due = instance.CreatedAtMs + 100;
        var id = $"timer:acme:timed:s1:ping:{due}:1";
        Assert.Equal(new Timers.Fired("ping", due, due, id), Timers.FiredOf(instance)[0]);

        var (subject, body, headers) = Assert.Single(await Timers.EventsAsync(h, cts.Token));
        Assert.Equal("workflow.evt.acme.timer.timed", subject);
        Assert.Equal(id, headers!["Nats-Msg-Id"].ToString());
        Assert.Equal("acme", headers["tenant-id"].ToString());
        Assert.Equal("s1", headers["correlation-id"].ToString());
        Assert.Equal("set-s1", headers["causation-id"].ToString());
        Assert.Equal(TraceParent, headers["traceparent"].ToString());
        Assert.Equal(
            ["specversion", "id", "source", "type", "time", "tenant", "data"],
            body.EnumerateObject().Select(p => p.Name));
        Assert.Equal("1.0", body.GetProperty("specversion").GetString());
        Assert.Equal(id, body.GetProperty("id").GetString());
        Assert.Equal("runner/scheduler", body.GetProperty("source").GetString());
        Assert.Equal("timer.fired", body.GetProperty("type").GetString());
        Assert.Equal(CloudEventEncoder.FormatTime(DateTimeOffset.FromUnixTimeMilliseconds(due)), body.GetProperty("time").GetString());
        Assert.Equal("acme", body.GetProperty("tenant").GetString());
        Assert.Equal(
            $$$"""{"saga":"timed","key":"s1","name":"ping","due_ms":{{{due}}},"gen":1,"deadline":false,"payload":{"x":1,"word":"caf\u00E9"}}""",
            body.GetProperty("data").GetRawText());
    }

    [Fact]
    public async Task Timers_of_keys_that_differ_only_in_non_ascii_characters_both_fire_with_percent_encoded_msg_ids()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Timed(), o => o with { Partitions = 1 });
        using var cts = new CancellationTokenSource(s_wait);
        string[] keys = ["\u6CE8\u6587", "\u9867\u5BA2"];
        foreach (var key in keys)
        {
            await Timers.SetAsync(h, key, "set-" + key, [new { name = "t", after_ms = 100 }], cancellationToken: cts.Token);
        }

        await SagaHarness.WaitUntilAsync(() => keys.All(k => Timers.FiredOf(h.Instance("acme", "timed", k)).Count == 1), s_wait, "both timers");
        var events = await Timers.EventsAsync(h, cts.Token);
        Assert.Equal(2, events.Count);
        foreach (var evt in events)
        {
            var id = Timers.Id(evt);
            Assert.Equal(EventHeaders.Encode(id), evt.Headers!["Nats-Msg-Id"].ToString());
            Assert.DoesNotContain('?', evt.Headers["Nats-Msg-Id"].ToString());
            Assert.Equal(id, EventHeaders.Decode(evt.Headers["Nats-Msg-Id"].ToString()));
        }
        Assert.Equal(keys.Order(StringComparer.Ordinal), events.Select(e => e.Body.GetProperty("data").GetProperty("key").GetString()!).Order(StringComparer.Ordinal));
    }
}
