using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Runner.Core;
using Runner.Core.Ids;
using Runner.Core.Keys;
using Runner.Core.Transitions;
using Runner.Sagas.Instances;
using Runner.Sagas.Partitions;
using Runner.Sagas.Quarantine;
using Runner.Storage;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>Each instance's history, kept in the transition's own commit, and retention of done instances and quarantine records.</summary>
public sealed class InstanceHistoryTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Each_transition_keeps_a_history_step_and_only_the_newest_are_kept()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Counter(), o => o with { HistoryLimit = 3 });
        using var cts = new CancellationTokenSource(s_wait);
        for (var i = 1; i <= 5; i++)
        {
            await h.PublishAsync("aggregate.acme.counter.h1.added", SagaHarness.CloudEvent($"h-{i}", "added", new { n = i * 10 }),
                new NATS.Client.Core.NatsHeaders { ["X-Zeta"] = "z", ["x-alpha"] = $"a{i}" }, cancellationToken: cts.Token);
        }
        await SagaHarness.WaitUntilAsync(() => h.Listener.Count == 5, s_wait, "five transitions");

        var steps = History(h.Store!, h.Options, "acme", "counter", "h1");
        Assert.Equal([3L, 4L, 5L], steps.Select(s => s.Version));
        var notices = h.Listener.Notices.ToDictionary(n => n.Version);
        var instance = h.Instance("acme", "counter", "h1")!;
        foreach (var step in steps)
        {
            var i = (int)step.Version;
            Assert.Equal($"h-{i}", step.EventId);
            Assert.Equal("added", step.Type);
            Assert.Equal("AGGREGATE_EVENTS", step.Stream);
            Assert.Equal(h.Manifests.Hash, step.ManifestHash);
            Assert.Equal("on_event", step.Handler);
            Assert.Equal(notices[i].CommandIds, step.Commands.Select(c => c.Id));
            Assert.Equal("ledger.add", step.Commands.Single().Effect);
            Assert.Equal(i, step.Commands.Single().Payload.GetProperty("total").GetInt32());
            Assert.Equal("reminder", step.Schedules.Single().Name);
            Assert.Equal(i * 10, step.Event.GetProperty("data").GetProperty("n").GetInt32());
            // The event's headers as the script saw them: the producer's, names lower-cased; none of the runner's routing
            // headers or the server's that the inbox message carries.
            var headers = step.Event.GetProperty("headers").EnumerateObject().ToList();
            Assert.Equal($"a{i}", headers.Single(p => p.Name == "x-alpha").Value.GetString());
            Assert.Equal("z", headers.Single(p => p.Name == "x-zeta").Value.GetString());
            Assert.DoesNotContain(headers, p => p.Name.StartsWith("runner-", StringComparison.Ordinal) || p.Name.StartsWith("nats-", StringComparison.Ordinal));
            Assert.Equal(i, step.State.GetProperty("count").GetInt32());
            Assert.Equal(HistoryWriter.StateHash(step.State.GetRawText()), step.StateHash);
            Assert.False(step.Done);
        }
        Assert.Equal(instance.State.GetRawText(), steps[^1].State.GetRawText());
        Assert.True(steps.Zip(steps.Skip(1)).All(p => p.First.InboxSequence < p.Second.InboxSequence));
    }

    [Fact]
    public async Task A_done_instance_past_its_retention_is_gone_for_its_next_event_even_before_any_sweep()
    {
        // No sweep runs in this test (a sweep an hour away): the worker alone decides.
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Counter(),
            o => o with { DoneRetention = TimeSpan.FromSeconds(2), DedupeSweepInterval = TimeSpan.FromHours(1) });
        using var cts = new CancellationTokenSource(s_wait);
        await h.PublishAsync("aggregate.acme.counter.r1.added", SagaHarness.CloudEvent("r-1", "added", new { n = 1 }), cancellationToken: cts.Token);
        await h.PublishAsync("aggregate.acme.counter.r1.finish", SagaHarness.CloudEvent("r-2", "finish", null), cancellationToken: cts.Token);
        await h.PublishAsync("aggregate.acme.counter.r1.added", SagaHarness.CloudEvent("r-3", "added", new { n = 3 }), cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Count(KeySpace.Dedupe) == 3, s_wait, "three events seen");
        var done = h.Instance("acme", "counter", "r1")!;
        Assert.True(done.Done);
        Assert.True(done.ClosedAtInboxMs > 0);
        Assert.Equal(2, History(h.Store!, h.Options, "acme", "counter", "r1").Count);

        // A retention later (in the inbox's time) the key starts a new instance; the old history goes with the old one.
        await Task.Delay(TimeSpan.FromSeconds(2.2), cts.Token);
        await h.PublishAsync("aggregate.acme.counter.r1.added", SagaHarness.CloudEvent("r-4", "added", new { n = 4 }), cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Instance("acme", "counter", "r1") is { Done: false }, s_wait, "a new instance under r1");
        var reborn = h.Instance("acme", "counter", "r1")!;
        Assert.Equal(1, reborn.Version);
        Assert.Equal([4], reborn.State.GetProperty("order").EnumerateArray().Select(e => e.GetInt32()));
        var steps = History(h.Store!, h.Options, "acme", "counter", "r1");
        Assert.Equal("r-4", Assert.Single(steps).EventId);
    }

    [Fact]
    public async Task The_sweeper_removes_done_instances_past_retention_with_their_history_and_nothing_else()
    {
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Counter(),
            o => o with { DoneRetention = TimeSpan.FromSeconds(2), DedupeSweepInterval = TimeSpan.FromMilliseconds(100) });
        using var cts = new CancellationTokenSource(s_wait);
        // Three keys of one partition: old-done finishes now, running stays open, new-done finishes after the wait.
        var keys = KeysOfOnePartition(h.Options.Partitions, 3);
        var (oldDone, running, newDone) = (keys[0], keys[1], keys[2]);
        await h.PublishAsync($"aggregate.acme.counter.{oldDone}.added", SagaHarness.CloudEvent("s-1", "added", new { n = 1 }), cancellationToken: cts.Token);
        await h.PublishAsync($"aggregate.acme.counter.{oldDone}.finish", SagaHarness.CloudEvent("s-2", "finish", null), cancellationToken: cts.Token);
        await h.PublishAsync($"aggregate.acme.counter.{running}.added", SagaHarness.CloudEvent("s-3", "added", new { n = 3 }), cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Listener.Count == 3, s_wait, "three transitions");
        await Task.Delay(TimeSpan.FromSeconds(2.2), cts.Token);
        await h.PublishAsync($"aggregate.acme.counter.{newDone}.added", SagaHarness.CloudEvent("s-4", "added", new { n = 4 }), cancellationToken: cts.Token);
        await h.PublishAsync($"aggregate.acme.counter.{newDone}.finish", SagaHarness.CloudEvent("s-5", "finish", null), cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Listener.Count == 5, s_wait, "five transitions");

        await SagaHarness.WaitUntilAsync(() => h.Instance("acme", "counter", oldDone) is null, s_wait, "the old done instance swept");
        Assert.Empty(History(h.Store!, h.Options, "acme", "counter", oldDone));
        Assert.Equal(1, h.Instance("acme", "counter", running)!.Version);
        Assert.Single(History(h.Store!, h.Options, "acme", "counter", running));
        Assert.True(h.Instance("acme", "counter", newDone)!.Done);
        Assert.Equal(2, History(h.Store!, h.Options, "acme", "counter", newDone).Count);
        Assert.Equal(2, h.Count(KeySpace.Saga));
        Assert.Equal(3, h.Count(KeySpace.History));
    }

    [Fact]
    public async Task A_conditional_delete_keeps_an_instance_written_since_the_sweeper_read_it()
    {
        using var dir = new TempDirectory();
        using var store = new LmdbStore(new LmdbOptions { Path = dir.File("lmdb") }, NullLogger<LmdbStore>.Instance);
        var id = new InstanceId(new TenantId("acme"), new SagaName("counter"), new CorrelationKey("c1"));
        var p = new PartitionId(3);
        var key = StoreKeys.Instance(p, id);
        var read = "{\"done\":true}"u8.ToArray();
        var put = new WriteBatch();
        put.Put(KeySpace.Saga, key, read);
        put.Put(KeySpace.History, StoreKeys.History(p, id, 1), "{}"u8.ToArray());
        await store.Writer.CommitAsync(put, CancellationToken.None);

        // The worker writes a new instance under the key after the sweeper read the old one.
        var rewrite = new WriteBatch();
        rewrite.Put(KeySpace.Saga, key, "{\"done\":false}"u8.ToArray());
        await store.Writer.CommitAsync(rewrite, CancellationToken.None);
        var sweep = new WriteBatch();
        sweep.DeleteIfUnchanged(KeySpace.Saga, key, read, KeySpace.History, StoreKeys.HistoryPrefix(p, id));
        await store.Writer.CommitAsync(sweep, CancellationToken.None);
        Assert.Equal("{\"done\":false}", System.Text.Encoding.UTF8.GetString(store.Read(r => r.Get(KeySpace.Saga, key))!));
        Assert.Equal(1, store.Read(r => r.Count(KeySpace.History)));

        // Unchanged since it was read: it goes, with its history.
        var current = store.Read(r => r.Get(KeySpace.Saga, key))!;
        sweep = new WriteBatch();
        sweep.DeleteIfUnchanged(KeySpace.Saga, key, current, KeySpace.History, StoreKeys.HistoryPrefix(p, id));
        await store.Writer.CommitAsync(sweep, CancellationToken.None);
        Assert.Null(store.Read(r => r.Get(KeySpace.Saga, key)));
        Assert.Equal(0, store.Read(r => r.Count(KeySpace.History)));
    }

    [Fact]
    public async Task Quarantine_records_older_than_their_retention_are_swept_and_younger_ones_kept()
    {
        using var dir = new TempDirectory();
        using var store = new LmdbStore(new LmdbOptions { Path = dir.File("lmdb") }, NullLogger<LmdbStore>.Instance);
        var clock = new SetClock(DateTimeOffset.Parse("2026-11-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var batch = new WriteBatch();
        var command = new CommandMessage
        {
            CommandId = "c-1", Tenant = "acme", Effect = "ledger.add", Saga = "counter", CorrelationId = "k", CausationId = "e", CreatedAt = "2026-11-01T00:00:00Z",
            Payload = JsonDocument.Parse("{}").RootElement,
        };
        QuarantineRecords.AddCommand(batch, "WORKFLOW_COMMANDS", "workflow.cmd.acme.ledger.add", command, [], "old", 1, 1024, clock);
        clock.Now = clock.Now.AddDays(6);
        QuarantineRecords.AddCommand(batch, "WORKFLOW_COMMANDS", "workflow.cmd.acme.ledger.add", command with { CommandId = "c-2" }, [], "young", 1, 1024, clock);
        await store.Writer.CommitAsync(batch, CancellationToken.None);
        Assert.Equal(2, QuarantineRecords.List(store, 10).Count);

        clock.Now = clock.Now.AddDays(1).AddMinutes(1); // the first is 7 days and a minute old, the second a day
        var sweeper = new RetentionSweeper(store, new SagaRuntimeOptions { QuarantineRetention = TimeSpan.FromDays(7) }, NullLogger.Instance, clock, () => []);
        var swept = await sweeper.SweepOnceAsync(CancellationToken.None);
        Assert.Equal(1, swept.Quarantined);
        Assert.Equal("young", Assert.Single(QuarantineRecords.List(store, 10)).Detail);
    }

    [Fact]
    public async Task Any_replica_lists_and_shows_instances_each_partition_answered_by_its_owner()
    {
        await using var set = await ReplicaSet.CreateAsync(nats.Url, TestSagas.Fold(), o => o with { Partitions = 8 });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var folds = new Folds();
        await set.StartAsync("a");
        await set.StartAsync("b");
        await set.WaitBalancedAsync(["a", "b"], s_wait, "8 partitions over a and b");
        await folds.PublishRoundsAsync(set, keys: 12, rounds: 2, TimeSpan.Zero, cts.Token);
        await folds.WaitForCommandsAsync(set, folds.Count, s_wait, cts.Token);

        var list = await InstanceQueryClient.ListAsync(set.Connection, set.Options, new InstanceFilter { Saga = "fold" }, TimeSpan.FromSeconds(5), cts.Token);
        Assert.Empty(list.Missing);
        Assert.Equal(8, list.Answered.Count);
        Assert.Equal(Enumerable.Range(0, 12).Select(k => "k" + k).Order(StringComparer.Ordinal), list.Instances.Select(i => i.Key));
        Assert.All(list.Instances, i => Assert.Equal(("running", 2L), (i.Status, i.Version)));
        Assert.False(list.Truncated);

        var limited = await InstanceQueryClient.ListAsync(set.Connection, set.Options, new InstanceFilter { Saga = "fold", Limit = 5 }, TimeSpan.FromSeconds(5), cts.Token);
        Assert.Equal(5, limited.Instances.Count);
        Assert.True(limited.Truncated);
        var none = await InstanceQueryClient.ListAsync(set.Connection, set.Options, new InstanceFilter { Status = "done" }, TimeSpan.FromSeconds(5), cts.Token);
        Assert.Empty(none.Instances);
        await Assert.ThrowsAsync<InstanceQueryException>(() => InstanceQueryClient.ListAsync(set.Connection, set.Options, new InstanceFilter { Status = "sleeping" }, TimeSpan.FromSeconds(5), cts.Token));

        // Show answers from the owner, whichever replica holds the partition.
        var tenant = list.Instances[0].Tenant;
        foreach (var key in new[] { "k0", "k7" })
        {
            var show = await InstanceQueryClient.ShowAsync(set.Connection, set.Options, new InstanceShowRequest { Tenant = tenant, Saga = "fold", Key = key }, TimeSpan.FromSeconds(5), cts.Token);
            Assert.NotNull(show);
            Assert.True(show!.Found);
            var owner = Assert.Single(set.Owners()[show.Partition]);
            Assert.Equal(set[owner].Runtime!.PartitionLeases.Single(l => l.Partition!.Value.Value == show.Partition).Epoch, show.Epoch);
            Assert.Equal(2, show.History.Count);
            Assert.Equal(show.State!.Value.GetRawText(), show.History[^1].State.GetRawText());
            Assert.Equal(set[owner].Instance(tenant, "fold", key)!.State.GetRawText(), show.State!.Value.GetRawText());
        }
        var missing = await InstanceQueryClient.ShowAsync(set.Connection, set.Options, new InstanceShowRequest { Tenant = tenant, Saga = "fold", Key = "nobody" }, TimeSpan.FromSeconds(5), cts.Token);
        Assert.False(missing!.Found);
    }

    [Fact]
    public async Task History_comes_back_with_the_partition_on_an_empty_volume()
    {
        await using var set = await ReplicaSet.CreateAsync(nats.Url, TestSagas.Fold(), o => o with { Partitions = 4, SnapshotInterval = TimeSpan.FromHours(1) });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var folds = new Folds();
        var a = await set.StartAsync("a");
        await folds.PublishRoundsAsync(set, keys: 6, rounds: 2, TimeSpan.Zero, cts.Token);
        await folds.WaitForCommandsAsync(set, folds.Count, s_wait, cts.Token);
        await a.Runtime!.DrainAsync(cts.Token); // snapshots at each checkpoint
        await a.StopAsync();
        await folds.PublishRoundsAsync(set, keys: 6, rounds: 1, TimeSpan.Zero, cts.Token); // replayed after the snapshot
        var tenant = (await set.CommandsAsync(cts.Token))[0].Tenant;
        var before = await HistoryOfAsync(set, a, tenant, "k2");
        a.Wipe();

        a = await set.StartAsync("a");
        await folds.WaitForCommandsAsync(set, folds.Count, s_wait, cts.Token);
        await SagaHarness.WaitUntilAsync(() => a.Instance(tenant, "fold", "k2")?.Version == 3, s_wait, "k2 replayed to version 3");
        var after = History(a.Store!, set.Options, tenant, "fold", "k2");
        Assert.Equal([1L, 2L, 3L], after.Select(s => s.Version));
        Assert.Equal(before.Select(Json), after.Take(2).Select(Json));
    }

    private static async Task<List<HistoryStep>> HistoryOfAsync(ReplicaSet set, Replica replica, string tenant, string key)
    {
        await Task.Yield();
        using var store = new LmdbStore(new LmdbOptions { Path = replica.StorePath }, NullLogger<LmdbStore>.Instance);
        return History(store, set.Options, tenant, "fold", key);
    }

    private static string Json(HistoryStep step) => JsonSerializer.Serialize(step, CoreJsonContext.Default.HistoryStep);

    private static List<HistoryStep> History(LmdbStore store, SagaRuntimeOptions options, string tenant, string saga, string key)
    {
        var id = new InstanceId(new TenantId(tenant), new SagaName(saga), new CorrelationKey(key));
        var prefix = StoreKeys.HistoryPrefix(Partitioner.PartitionOf(id, options.Partitions), id);
        return store.Read(r => r.Scan(KeySpace.History, prefix, 1000))
            .Select(kv => JsonSerializer.Deserialize(kv.Value, CoreJsonContext.Default.HistoryStep)!).ToList();
    }

    private static List<string> KeysOfOnePartition(int partitions, int count)
    {
        PartitionId Of(string key) => Partitioner.PartitionOf(new InstanceId(new TenantId("acme"), new SagaName("counter"), new CorrelationKey(key)), partitions);
        var target = Of("x0");
        return [.. Enumerable.Range(0, 10_000).Select(i => "x" + i).Where(k => Of(k) == target).Take(count)];
    }

    private sealed class SetClock(DateTimeOffset now) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = now;

        public override DateTimeOffset GetUtcNow() => Now;
    }
}
