using System.Text.Json;
using NATS.Client.Core;
using Runner.Core.Events;
using Runner.Core.Keys;
using Runner.Core.Transitions;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

public sealed class PipelineTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Event_commits_a_transition_and_its_command_reaches_WORKFLOW_COMMANDS_with_headers()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Counter());
        using var cts = new CancellationTokenSource(s_wait);
        var headers = new NatsHeaders { ["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", ["tracestate"] = "vendor=x", ["correlation-id"] = "req-9" };
        await h.PublishAsync("aggregate.acme.counter.k1.added", SagaHarness.CloudEvent("e-1", "added", new { n = 1 }), headers, cancellationToken: cts.Token);

        // The listener first: the outbox is empty before the commit too.
        await SagaHarness.WaitUntilAsync(() => h.Listener.Count == 1 && h.Count(KeySpace.Outbox) == 0, s_wait, "transition and relay");
        var instance = h.Instance("acme", "counter", "k1")!;
        Assert.Equal(1, instance.Version);
        Assert.Equal(1, instance.State.GetProperty("count").GetInt32());
        Assert.Equal(1, h.Count(KeySpace.Schedule));

        List<(string Subject, CommandMessage Command, NatsHeaders? Headers)> commands = [];
        await SagaHarness.WaitUntilAsync(async () => (commands = await h.CommandsAsync(cts.Token)).Count == 1, s_wait, "command on WORKFLOW_COMMANDS");
        var (subject, command, commandHeaders) = commands[0];
        Assert.Equal("workflow.cmd.acme.ledger.add", subject);
        Assert.Equal("acme", command.Tenant);
        Assert.Equal("counter", command.Saga);
        Assert.Equal("k1", command.CorrelationId);
        Assert.Equal("e-1", command.CausationId);
        Assert.Equal(1, command.Payload.GetProperty("n").GetInt32());
        Assert.Equal(h.Listener.Notices.Single().CommandIds.Single(), command.CommandId);
        Assert.Equal(command.CommandId, commandHeaders!["Nats-Msg-Id"].ToString());
        Assert.Equal("acme", commandHeaders["tenant-id"].ToString());
        Assert.Equal("k1", commandHeaders["correlation-id"].ToString());
        Assert.Equal("e-1", commandHeaders["causation-id"].ToString());
        Assert.Equal(headers["traceparent"].ToString(), commandHeaders["traceparent"].ToString());
        // The trace goes on: the inbox message keeps the trigger's traceparent and tracestate.
        var inbox = Assert.Single(await h.MessagesAsync(h.Options.JetStream.Streams.Inbox, cts.Token));
        Assert.Equal(headers["traceparent"].ToString(), inbox.Headers!["traceparent"].ToString());
        Assert.Equal("vendor=x", inbox.Headers["tracestate"].ToString());
    }

    [Theory]
    [InlineData(null)]
    [InlineData("not-a-traceparent")]
    [InlineData("00-00000000000000000000000000000000-b7ad6b7169203331-01")]
    [InlineData("00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01")]
    public async Task An_event_without_a_readable_traceparent_starts_a_trace_that_its_command_carries(string? inbound)
    {
        // No span is recorded here (nothing listens): the router still starts a trace, so every later hop has a trace id.
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Counter());
        using var cts = new CancellationTokenSource(s_wait);
        foreach (var key in new[] { "t1", "t2" })
        {
            var headers = new NatsHeaders { ["tracestate"] = "vendor=x" };
            if (inbound is not null)
            {
                headers["traceparent"] = inbound;
            }
            await h.PublishAsync($"aggregate.acme.counter.{key}.added", SagaHarness.CloudEvent($"e-{key}", "added", new { n = 1 }), headers, cancellationToken: cts.Token);
        }

        List<(string Subject, CommandMessage Command, NatsHeaders? Headers)> commands = [];
        await SagaHarness.WaitUntilAsync(async () => (commands = await h.CommandsAsync(cts.Token)).Count == 2, s_wait, "both commands");
        var traces = commands.Select(c => c.Headers!["traceparent"].ToString()).ToList();
        Assert.All(traces, t =>
        {
            Assert.True(System.Diagnostics.ActivityContext.TryParse(t, null, out var context), $"'{t}' is not a W3C traceparent");
            Assert.Equal(System.Diagnostics.ActivityTraceFlags.Recorded, context.TraceFlags);
        });
        Assert.NotEqual(traces[0][3..35], traces[1][3..35]);
        // The inbox messages carry the traces started for them, and not the triggers' tracestate, which belongs to none of them.
        var inbox = await h.MessagesAsync(h.Options.JetStream.Streams.Inbox, cts.Token);
        Assert.Equal(traces.Order(), inbox.Select(m => m.Headers!["traceparent"].ToString()).Order());
        Assert.All(inbox, m => Assert.False(m.Headers!.ContainsKey("tracestate")));
    }

    [Fact]
    public async Task Command_without_a_pool_takes_the_pool_its_effect_manifest_declares()
    {
        var files = TestSagas.Counter();
        files["effects.yaml"] = TestSagas.LedgerEffect + "\npool: eu-west\n";
        await using var h = await SagaHarness.StartAsync(nats, files);
        using var cts = new CancellationTokenSource(s_wait);
        await h.PublishAsync("aggregate.acme.counter.p1.added", SagaHarness.CloudEvent("p-1", "added", new { n = 1 }), cancellationToken: cts.Token);
        List<(string Subject, CommandMessage Command, NatsHeaders? Headers)> commands = [];
        await SagaHarness.WaitUntilAsync(async () => (commands = await h.CommandsAsync(cts.Token)).Count == 1, s_wait, "command");
        Assert.Equal("workflow.cmd.acme.ledger.add.eu-west", commands[0].Subject);
    }

    [Fact]
    public async Task Same_event_published_twice_with_different_msg_ids_yields_one_transition()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Counter());
        using var cts = new CancellationTokenSource(s_wait);
        var evt = SagaHarness.CloudEvent("dup-1", "added", new { n = 7 });
        await h.PublishAsync("aggregate.acme.counter.k2.added", evt, msgId: "producer-a", cancellationToken: cts.Token);
        await h.PublishAsync("aggregate.acme.counter.k2.added", evt, msgId: "producer-b", cancellationToken: cts.Token);
        await h.PublishAsync("aggregate.acme.counter.k2.added", SagaHarness.CloudEvent("after-1", "added", new { n = 8 }), cancellationToken: cts.Token);

        await SagaHarness.WaitUntilAsync(() => h.Instance("acme", "counter", "k2")?.Version == 2, s_wait, "both distinct events");
        // The listener hears of a commit after the relay may have drained its outbox: wait for both.
        await SagaHarness.WaitUntilAsync(() => h.Listener.Count >= 2 && h.Count(KeySpace.Outbox) == 0, s_wait, "relay drained");
        var instance = h.Instance("acme", "counter", "k2")!;
        Assert.Equal([7, 8], instance.State.GetProperty("order").EnumerateArray().Select(e => e.GetInt32()));
        var commands = await h.CommandsAsync(cts.Token);
        Assert.Equal(2, commands.Count);
        Assert.Equal(2, h.Listener.Count);
    }

    [Fact]
    public async Task Inbox_redelivered_from_the_start_is_not_applied_again()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Counter());
        using var cts = new CancellationTokenSource(s_wait);
        for (var i = 0; i < 20; i++)
        {
            await h.PublishAsync($"aggregate.acme.counter.r{i % 4}.added", SagaHarness.CloudEvent($"r-{i}", "added", new { n = i }), cancellationToken: cts.Token);
        }
        await SagaHarness.WaitUntilAsync(() => h.Listener.Count == 20 && h.Count(KeySpace.Outbox) == 0, s_wait, "20 transitions");
        var versions = Enumerable.Range(0, 4).Select(k => h.Instance("acme", "counter", $"r{k}")!.Version).ToList();

        // Lose every partition consumer (and with it every ack): the server redelivers the whole inbox.
        await h.StopRuntimeAsync(closeStore: false);
        await foreach (var name in h.Js.ListConsumerNamesAsync(h.Options.JetStream.Streams.Inbox, cts.Token))
        {
            await h.Js.DeleteConsumerAsync(h.Options.JetStream.Streams.Inbox, name, cts.Token);
        }
        await h.StartRuntimeAsync();
        await SagaHarness.WaitUntilAsync(async () =>
        {
            var consumers = 0;
            var pending = 0UL;
            await foreach (var c in h.Js.ListConsumersAsync(h.Options.JetStream.Streams.Inbox, cts.Token))
            {
                consumers++;
                pending += c.Info.NumPending + (ulong)c.Info.NumAckPending;
            }
            // until every worker has re-created its consumer
            return consumers == h.Options.Partitions && pending == 0;
        }, s_wait, "redelivered inbox acknowledged");

        Assert.Equal(20, h.Listener.Count);
        Assert.Equal(versions, Enumerable.Range(0, 4).Select(k => h.Instance("acme", "counter", $"r{k}")!.Version));
        Assert.Equal(20, (await h.CommandsAsync(cts.Token)).Count);
    }

    [Fact]
    public async Task Applied_inbox_messages_are_purged_and_a_restart_still_resumes_correctly()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Counter(), o => o with { Partitions = 2, SnapshotInterval = TimeSpan.Zero });
        using var cts = new CancellationTokenSource(s_wait);
        for (var i = 0; i < 30; i++)
        {
            await h.PublishAsync($"aggregate.acme.counter.q{i % 5}.added", SagaHarness.CloudEvent($"q-{i}", "added", new { n = i }), cancellationToken: cts.Token);
        }
        await SagaHarness.WaitUntilAsync(() => h.Listener.Count == 30, s_wait, "30 transitions");
        await SagaHarness.WaitUntilAsync(() => SnapshotsCoverCheckpoints(h), s_wait, "a snapshot of each partition at its checkpoint");
        for (var i = 30; i < 40; i++)
        {
            await h.PublishAsync($"aggregate.acme.counter.q{i % 5}.added", SagaHarness.CloudEvent($"q-{i}", "added", new { n = i }), cancellationToken: cts.Token);
        }
        await SagaHarness.WaitUntilAsync(() => h.Listener.Count == 40, s_wait, "40 transitions");
        // The inbox is the partitions' log: it is purged below the older of the two snapshots each
        // partition keeps, so it shrinks but keeps what a restore from either snapshot replays.
        await SagaHarness.WaitUntilAsync(async () =>
            (await h.Js.GetStreamAsync(h.Options.JetStream.Streams.Inbox, cancellationToken: cts.Token)).Info.State.FirstSeq > 1, s_wait, "inbox purged");
        var left = (await h.Js.GetStreamAsync(h.Options.JetStream.Streams.Inbox, cancellationToken: cts.Token)).Info.State.Messages;
        Assert.InRange(left, 1L, 39L);

        await h.StopRuntimeAsync(closeStore: false);
        await h.StartRuntimeAsync();
        for (var i = 40; i < 50; i++)
        {
            await h.PublishAsync($"aggregate.acme.counter.q{i % 5}.added", SagaHarness.CloudEvent($"q-{i}", "added", new { n = i }), cancellationToken: cts.Token);
        }
        await SagaHarness.WaitUntilAsync(() => h.Listener.Count == 50, s_wait, "10 more transitions after restart");
        for (var k = 0; k < 5; k++)
        {
            var order = h.Instance("acme", "counter", $"q{k}")!.State.GetProperty("order").EnumerateArray().Select(e => e.GetInt32());
            Assert.Equal(Enumerable.Range(0, 10).Select(j => (j * 5) + k), order);
        }
    }

    private static bool SnapshotsCoverCheckpoints(SagaHarness h) =>
        h.Runtime!.PartitionLeases.Count == h.Options.Partitions
        && h.Runtime.PartitionLeases.All(l => l.Record.Snapshots.Count > 0 && l.Record.Snapshots[0].Sequence == ((Runner.Sagas.Ownership.IOwnershipHost)h.Runtime).Checkpoint(l.Partition!.Value));

    [Fact]
    public async Task Expired_dedupe_markers_are_swept_and_fresh_ones_kept()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Counter(),
            // 5 s: the copy of the fresh event below must reach the inbox within a retention of it to be dropped, with
            // room for a test process starved for a moment on the way.
            o => o with { DedupeRetention = TimeSpan.FromSeconds(5), DedupeSweepInterval = TimeSpan.FromMilliseconds(100) });
        using var cts = new CancellationTokenSource(s_wait);
        for (var i = 0; i < 10; i++)
        {
            await h.PublishAsync($"aggregate.acme.counter.s{i % 3}.added", SagaHarness.CloudEvent($"s-{i}", "added", new { n = i }), cancellationToken: cts.Token);
        }
        await SagaHarness.WaitUntilAsync(() => h.Listener.Count == 10, s_wait, "10 transitions");
        Assert.Equal(10, h.Count(KeySpace.Dedupe));

        // Retention runs in the inbox's own time: markers expire once a message stored a retention
        // later has been applied to their partition (s0, s3, s6, s9 share one).
        await Task.Delay(TimeSpan.FromSeconds(5.2), cts.Token);
        await h.PublishAsync("aggregate.acme.counter.s0.added", SagaHarness.CloudEvent("s-new", "added", new { n = 99 }), cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Listener.Count == 11, s_wait, "a new event");
        var s0Partition = Core.Ids.Partitioner.PartitionOf(new Core.Ids.InstanceId(new Core.Ids.TenantId("acme"), new Core.Ids.SagaName("counter"), new Core.Ids.CorrelationKey("s0")), h.Options.Partitions);
        var old = Enumerable.Range(0, 10).Count(i => Core.Ids.Partitioner.PartitionOf(new Core.Ids.InstanceId(new Core.Ids.TenantId("acme"), new Core.Ids.SagaName("counter"), new Core.Ids.CorrelationKey($"s{i % 3}")), h.Options.Partitions) == s0Partition);
        await SagaHarness.WaitUntilAsync(() => h.Count(KeySpace.Dedupe) == 11 - old, s_wait, "the markers of s0's partition older than the retention swept");
        Assert.Equal(5, h.Instance("acme", "counter", "s0")!.Version);

        // A copy of an expired event is applied again (as the retention promises); a fresh one is dropped.
        await h.PublishAsync("aggregate.acme.counter.s0.added", SagaHarness.CloudEvent("s-new", "added", new { n = 99 }), msgId: "copy-of-s-new", cancellationToken: cts.Token);
        await h.PublishAsync("aggregate.acme.counter.s0.added", SagaHarness.CloudEvent("s-0", "added", new { n = 0 }), msgId: "copy-of-s-0", cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Instance("acme", "counter", "s0")!.Version == 6, s_wait, "the expired copy applied");
        await SagaHarness.WaitUntilAsync(() => h.Listener.Count == 12, s_wait, "12 transitions");
        Assert.Equal([0, 3, 6, 9, 99, 0], h.Instance("acme", "counter", "s0")!.State.GetProperty("order").EnumerateArray().Select(e => e.GetInt32()));
    }

    [Fact]
    public async Task Completed_instance_records_and_ignores_later_events()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Counter());
        using var cts = new CancellationTokenSource(s_wait);
        await h.PublishAsync("aggregate.acme.counter.d1.added", SagaHarness.CloudEvent("d-1", "added", new { n = 1 }), cancellationToken: cts.Token);
        await h.PublishAsync("aggregate.acme.counter.d1.finish", SagaHarness.CloudEvent("d-2", "finish", null), cancellationToken: cts.Token);
        await h.PublishAsync("aggregate.acme.counter.d1.added", SagaHarness.CloudEvent("d-3", "added", new { n = 3 }), cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Count(KeySpace.Dedupe) == 3, s_wait, "three events seen");

        var instance = h.Instance("acme", "counter", "d1")!;
        Assert.True(instance.Done);
        Assert.Equal(2, instance.Version);
        Assert.Null(instance.Timers);
        Assert.Equal(0, h.Count(KeySpace.Schedule));
        var outcomes = h.Store!.Read(r => r.Scan(KeySpace.Dedupe, [], 10))
            .Select(kv => JsonSerializer.Deserialize(kv.Value, Core.CoreJsonContext.Default.DedupeRecord)!.Outcome).Order().ToList();
        Assert.Equal([DedupeRecord.Applied, DedupeRecord.Applied, DedupeRecord.IgnoredCompleted], outcomes);
    }

    [Fact]
    public async Task Binary_mode_event_with_tenant_from_subject_is_routed()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Counter());
        using var cts = new CancellationTokenSource(s_wait);
        var headers = new NatsHeaders
        {
            ["ce-specversion"] = "1.0",
            ["ce-id"] = "bin-1",
            ["ce-type"] = "added",
            ["ce-source"] = "binary-producer",
            ["content-type"] = "application/json",
        };
        await h.PublishRawAsync("aggregate.globex.counter.b1.added", """{"n":42}"""u8.ToArray(), headers, cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Instance("globex", "counter", "b1") is not null, s_wait, "binary-mode event");
        Assert.Equal(42, h.Instance("globex", "counter", "b1")!.State.GetProperty("order")[0].GetInt32());
    }

    [Fact]
    public async Task Outbox_items_left_by_a_crash_are_published_at_start_and_deleted()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Counter(), start: false);
        using var cts = new CancellationTokenSource(s_wait);
        using (var store = new Storage.LmdbStore(new Storage.LmdbOptions { Path = h.StorePath }, Microsoft.Extensions.Logging.Abstractions.NullLogger<Storage.LmdbStore>.Instance))
        {
            var batch = new Storage.WriteBatch();
            for (var i = 0; i < 50; i++)
            {
                var command = new CommandMessage
                {
                    CommandId = $"left-{i}",
                    Tenant = "acme",
                    Effect = "ledger.add",
                    Saga = "counter",
                    CorrelationId = "k",
                    CausationId = "e",
                    Payload = JsonDocument.Parse("{}").RootElement,
                    CreatedAt = CloudEventEncoder.FormatTime(DateTimeOffset.UnixEpoch),
                };
                batch.Put(KeySpace.Outbox, StoreKeys.Outbox(new Core.Ids.PartitionId(i % 8), (ulong)i + 1, 0), JsonSerializer.SerializeToUtf8Bytes(command, Core.CoreJsonContext.Default.CommandMessage));
            }
            await store.Writer.CommitAsync(batch, cts.Token);
        }
        await h.StartRuntimeAsync();
        await SagaHarness.WaitUntilAsync(() => h.Count(KeySpace.Outbox) == 0, s_wait, "outbox drained");
        var commands = await h.CommandsAsync(cts.Token);
        Assert.Equal(Enumerable.Range(0, 50).Select(i => $"left-{i}").Order(), commands.Select(c => c.Command.CommandId).Order());
    }
}
