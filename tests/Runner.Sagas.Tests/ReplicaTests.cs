using System.Collections.Concurrent;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>
/// Several saga replicas on one real nats-server, each with its own LMDB file: partitions are
/// leased, balanced, handed over and restored, and every fold stays exact.
/// </summary>
public sealed class ReplicaTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Replicas_share_the_partitions_disjointly_and_balanced_within_one_as_they_come_and_go()
    {
        await using var set = await ReplicaSet.CreateAsync(nats.Url, TestSagas.Fold(), o => o with { Partitions = 16 });
        await set.StartAsync("a");
        await set.WaitBalancedAsync(["a"], s_wait, "a to hold all 16");
        await set.StartAsync("b");
        await set.StartAsync("c");
        await set.WaitBalancedAsync(["a", "b", "c"], s_wait, "16 over a, b, c (6, 5, 5)");

        await set["c"].Runtime!.DrainAsync(CancellationToken.None);
        await set["c"].StopAsync();
        await set.WaitBalancedAsync(["a", "b"], s_wait, "16 over a and b after c left");
        await set.StartAsync("d");
        await set.WaitBalancedAsync(["a", "b", "d"], s_wait, "16 over a, b, d");
        var epochs = set.Replicas.Where(r => r.Runtime is not null).SelectMany(r => r.Runtime!.PartitionLeases).Select(l => l.Epoch).ToList();
        Assert.Contains(epochs, e => e >= 2);
    }

    [Fact]
    public async Task Scaling_one_to_three_to_one_under_load_keeps_every_fold_exact()
    {
        await using var set = await ReplicaSet.CreateAsync(nats.Url, TestSagas.Fold());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var folds = new Folds();
        await set.StartAsync("a");
        var producer = folds.PublishRoundsAsync(set, keys: 40, rounds: 12, TimeSpan.FromMilliseconds(250), cts.Token);
        await Task.Delay(500, cts.Token);
        await set.StartAsync("b");
        await set.StartAsync("c");
        await set.WaitBalancedAsync(["a", "b", "c"], s_wait, "three replicas balanced under load");
        foreach (var name in new[] { "b", "c" })
        {
            await set[name].Runtime!.DrainAsync(cts.Token);
            await set[name].StopAsync();
        }
        await producer;
        await set.WaitBalancedAsync(["a"], s_wait, "a to hold all again");
        await folds.WaitForCommandsAsync(set, folds.Count, s_wait, cts.Token);
        folds.Verify(await set.CommandsAsync(cts.Token));
    }

    [Fact]
    public async Task A_drain_that_meets_a_round_taking_a_lease_hands_that_lease_over_too()
    {
        await using var set = await ReplicaSet.CreateAsync(nats.Url, TestSagas.Fold());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await set.StartAsync("a");
        await set.WaitBalancedAsync(["a"], s_wait, "a to hold all");
        // b's round stops just before it takes its first partition, until the test lets it go on.
        var entered = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var hooked = await ReplicaSet.CreateOnAsync(set, o => o with
        {
            BeforeLeaseAcquire = async (key, ct) =>
            {
                if (key.StartsWith(Ownership.OwnershipBucket.PartitionPrefix, StringComparison.Ordinal))
                {
                    entered.TrySetResult(key);
                    await go.Task.WaitAsync(ct);
                }
            },
        });
        var b = await hooked.StartAsync("b");
        var key = await entered.Task.WaitAsync(s_wait, cts.Token);

        b.Runtime!.StopIntake();
        var drain = b.Runtime.DrainAsync(cts.Token);
        // The drain waits for the round in flight: what that round takes is handed over with the rest.
        await Task.WhenAny(drain, Task.Delay(TimeSpan.FromSeconds(1), cts.Token));
        Assert.False(drain.IsCompleted, "the drain ended while a round of its replica was still taking a lease");
        go.SetResult();
        await drain;

        Assert.Empty(b.Runtime.OwnedPartitions);
        var bucket = await Ownership.OwnershipBucket.OpenExistingAsync(set.Js, set.Options.OwnershipBucket, cts.Token);
        var lease = await bucket!.GetLeaseAsync(key, cts.Token);
        Assert.NotEqual(("held", "b"), (lease!.Value.Record.State, lease.Value.Record.Owner));
        await set.WaitBalancedAsync(["a"], s_wait, "a to hold all again");
    }

    [Fact]
    public async Task A_replica_settles_once_what_it_took_at_its_start_is_restored_and_stays_settled_as_partitions_move()
    {
        await using var set = await ReplicaSet.CreateAsync(nats.Url, TestSagas.Fold(), o => o with { Partitions = 4 });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        // a's first round stops before it takes its first partition, until the test lets it go on.
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var hooked = await ReplicaSet.CreateOnAsync(set, o => o with
        {
            BeforeLeaseAcquire = async (key, ct) =>
            {
                if (key.StartsWith(Ownership.OwnershipBucket.PartitionPrefix, StringComparison.Ordinal))
                {
                    entered.TrySetResult();
                    await go.Task.WaitAsync(ct);
                }
            },
        });
        var a = await hooked.StartAsync("a");
        await entered.Task.WaitAsync(s_wait, cts.Token);
        await Task.Delay(200, cts.Token);
        Assert.False(a.Runtime!.Settled, "settled while its first round had not taken a partition yet");

        go.SetResult();
        await SagaHarness.WaitUntilAsync(() => a.Runtime.Settled, s_wait, "a to settle");
        // Settled means held and started: every partition, each with its worker.
        Assert.Equal([0, 1, 2, 3], a.Runtime.OwnedPartitions);
        Assert.All(a.Runtime.DescribeRuns(), run => Assert.Contains("prepared RanToCompletion", run, StringComparison.Ordinal));

        // A second replica takes half: the first stays settled while its partitions move.
        var b = await hooked.StartAsync("b");
        await hooked.WaitBalancedAsync(["a", "b"], s_wait, "a and b to share the partitions");
        Assert.True(a.Runtime.Settled);
        // b settles too, once what its first round took (possibly partitions a had just released) is prepared.
        await SagaHarness.WaitUntilAsync(() => b.Runtime!.Settled, s_wait, "b to settle");
        Assert.True(a.Runtime.Settled);
    }

    [Fact]
    public async Task A_replica_that_lost_its_disk_restores_from_the_snapshot_and_replays_the_rest()
    {
        await using var set = await ReplicaSet.CreateAsync(nats.Url, TestSagas.Fold(), o => o with { SnapshotInterval = TimeSpan.FromHours(1) });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var folds = new Folds();
        var a = await set.StartAsync("a");
        await folds.PublishRoundsAsync(set, keys: 20, rounds: 3, TimeSpan.Zero, cts.Token);
        await folds.WaitForCommandsAsync(set, folds.Count, s_wait, cts.Token);
        // A drain hands every partition over with a snapshot at its checkpoint.
        await a.Runtime!.DrainAsync(cts.Token);
        await a.StopAsync();
        // Events arrive while no replica runs: they are in the inbox, after the snapshots.
        await folds.PublishRoundsAsync(set, keys: 20, rounds: 2, TimeSpan.Zero, cts.Token);
        a.Wipe();

        a = await set.StartAsync("a");
        await folds.WaitForCommandsAsync(set, folds.Count, s_wait, cts.Token);
        folds.Verify(await set.CommandsAsync(cts.Token));
        for (var k = 0; k < 20; k++)
        {
            var key = "k" + k;
            var record = await WaitForInstanceAsync(a, key, 5);
            Assert.Equal(5, record.State.GetProperty("order").GetArrayLength());
        }
    }

    [Fact]
    public async Task A_crashed_replica_partitions_and_routers_move_after_its_lease_with_an_empty_volume_restoring()
    {
        await using var set = await ReplicaSet.CreateAsync(nats.Url, TestSagas.Fold(), o => o with { SnapshotInterval = TimeSpan.FromMilliseconds(200) });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var folds = new Folds();
        var a = await set.StartAsync("a");
        await folds.PublishRoundsAsync(set, keys: 16, rounds: 3, TimeSpan.Zero, cts.Token);
        await folds.WaitForCommandsAsync(set, folds.Count, s_wait, cts.Token);
        await SagaHarness.WaitUntilAsync(() => a.Runtime!.PartitionLeases.All(l => l.Record.Snapshots.Count > 0), s_wait, "snapshots of every partition");
        // b starts with an empty volume while a still holds everything; a then dies without a word.
        await set.StartAsync("b");
        await a.CrashAsync();
        var crashed = DateTime.UtcNow;
        await folds.PublishRoundsAsync(set, keys: 16, rounds: 2, TimeSpan.Zero, cts.Token);
        await folds.WaitForCommandsAsync(set, folds.Count, s_wait, cts.Token);
        var moved = DateTime.UtcNow - crashed;
        folds.Verify(await set.CommandsAsync(cts.Token));
        Assert.Equal(set.Options.Partitions, set["b"].Runtime!.OwnedPartitions.Count);
        Assert.Equal(2, set["b"].Runtime!.RoutedStreams.Count);
        // Failover is the lease (2 s) plus restore and replay; far less than the wait allowed.
        Assert.InRange(moved, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(15));
    }

    [Theory]
    [InlineData("missing")]
    [InlineData("truncated")]
    [InlineData("older")]
    public async Task An_unusable_newest_snapshot_falls_back_to_the_older_one_and_the_fold_stays_exact(string fault)
    {
        await using var set = await ReplicaSet.CreateAsync(nats.Url, TestSagas.Fold(), o => o with { Partitions = 2, SnapshotInterval = TimeSpan.FromHours(1) });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var folds = new Folds();
        var a = await SnapshotTwiceAsync(set, folds, cts.Token);
        var leases = await ReadLeasesAsync(set, cts.Token);
        await a.StopAsync();
        a.Wipe();

        var objects = await Runner.Sagas.Snapshots.SnapshotStore.OpenAsync(set.Js, set.Options.SnapshotBucket, 1, cts.Token);
        var inboxCreated = (await set.Js.GetStreamAsync(set.Options.JetStream.Streams.Inbox, cancellationToken: cts.Token)).Info.Created;
        foreach (var lease in leases)
        {
            Assert.Equal(2, lease.Snapshots.Count);
            var newest = lease.Snapshots[0].Name;
            switch (fault)
            {
                case "missing":
                    await objects.DeleteAsync(newest, cts.Token);
                    break;
                case "truncated":
                    var bytes = (await objects.GetAsync(newest, cts.Token))!;
                    await objects.PutAsync(newest, bytes[..(bytes.Length / 2)], inboxCreated, cts.Token);
                    break;
                default:
                    // A valid image, but of the older snapshot (another sequence and epoch than the record says).
                    await objects.PutAsync(newest, (await objects.GetAsync(lease.Snapshots[1].Name, cts.Token))!, inboxCreated, cts.Token);
                    break;
            }
        }
        await FifthRoundOnBAsync(set, folds, cts.Token);
    }

    [Fact]
    public async Task Timers_set_before_a_partition_moves_fire_once_on_its_new_owner()
    {
        await using var set = await ReplicaSet.CreateAsync(nats.Url, TestSagas.Fold());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var folds = new Folds();
        await set.StartAsync("a");
        for (var k = 0; k < 16; k++)
        {
            // Due in 15 s: b must start and half of the partitions move to it before they come due, with room
            // for a test process starved for a moment.
            await folds.PublishAsync(set, "t" + k, cts.Token, type: "arm", extra: 15_000);
        }
        await folds.WaitForCommandsAsync(set, 16, s_wait, cts.Token);
        await set.StartAsync("b");
        await set.WaitBalancedAsync(["a", "b"], s_wait, "half of the partitions moved to b");
        await folds.WaitForCommandsAsync(set, 32, s_wait, cts.Token);
        // A replica's listener hears of a commit after its command went to the relay: waited for, not read at once.
        await SagaHarness.WaitUntilAsync(() => set.Replicas.Sum(r => r.Listener.Notices.Count(n => n.EventType == "timer.fired")) >= 16,
            s_wait, "the 16 timer transitions heard of");
        await Task.Delay(1500, cts.Token); // a second firing would have come by now
        var commands = await set.CommandsAsync(cts.Token);
        folds.Verify(commands);
        var rang = commands.Where(c => c.Payload.TryGetProperty("rang", out _)).ToList();
        Assert.Equal(16, rang.Count);
        Assert.Equal(16, rang.Select(c => c.CorrelationId).Distinct().Count());
        Assert.True(set["b"].Listener.Notices.Any(n => n.EventType == "timer.fired"), "some timers fired on the new owner");
    }

    [Fact]
    public async Task Two_replicas_starting_together_never_hold_a_partition_at_the_same_epoch()
    {
        await using var set = await ReplicaSet.CreateAsync(nats.Url, TestSagas.Fold(), o => o with { Partitions = 16 });
        var held = new ConcurrentDictionary<(int Partition, long Epoch), ConcurrentDictionary<string, bool>>();
        using var sampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                foreach (var replica in set.Replicas)
                {
                    foreach (var lease in replica.Runtime?.PartitionLeases ?? [])
                    {
                        held.GetOrAdd((lease.Partition!.Value.Value, lease.Epoch), _ => new())[replica.Name] = true;
                    }
                }
                await Task.Delay(5, CancellationToken.None);
            }
        });
        await Task.WhenAll(set.StartAsync("a"), set.StartAsync("b"), set.StartAsync("c"));
        await set.WaitBalancedAsync(["a", "b", "c"], s_wait, "balanced after racing");
        await sampling.CancelAsync();
        await sampler;
        Assert.All(held, h => Assert.Single(h.Value));
        Assert.Equal(16, held.Keys.Select(k => k.Partition).Distinct().Count());
    }

    private static async Task<Core.Transitions.SagaInstanceRecord> WaitForInstanceAsync(Replica replica, string key, int version)
    {
        Core.Transitions.SagaInstanceRecord? record = null;
        await SagaHarness.WaitUntilAsync(() => (record = replica.Instance("acme", "fold", key))?.Version == version, s_wait, $"{key} at version {version} on {replica.Name}");
        return record!;
    }

    [Theory]
    [InlineData("deleted", "as stored")]
    [InlineData("unreadable", "as stored")]
    // Written before snapshots were stamped: judged by when they were stored.
    [InlineData("deleted", "unstamped")]
    public async Task A_lost_lease_record_is_recovered_from_the_snapshot_store_and_the_fold_stays_exact(string fault, string snapshots)
    {
        await using var set = await ReplicaSet.CreateAsync(nats.Url, TestSagas.Fold(), o => o with { Partitions = 2, SnapshotInterval = TimeSpan.FromHours(1) });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var folds = new Folds();
        var a = await SnapshotTwiceAsync(set, folds, cts.Token);
        Assert.All(await ReadLeasesAsync(set, cts.Token), lease => Assert.True(lease.PurgedBelow > 1));
        await a.StopAsync();
        a.Wipe();
        var inbox = Runner.Sagas.Snapshots.SnapshotStore.InboxStamp((await set.Js.GetStreamAsync(set.Options.JetStream.Streams.Inbox, cancellationToken: cts.Token)).Info.Created);
        Assert.Equal(4, await RewriteSnapshotMetaAsync(set, meta =>
        {
            Assert.Equal(inbox, meta.Metadata![Runner.Sagas.Snapshots.SnapshotStore.InboxKey]);
            if (snapshots == "unstamped")
            {
                meta.Metadata = null;
            }
        }, cts.Token));

        // The records are lost: an operator deleted them, or something wrote what cannot be read.
        await LoseLeaseRecordsAsync(set, fault, cts.Token);
        // All five deposits on b: the first two are no longer in the inbox, only in the snapshots.
        await FifthRoundOnBAsync(set, folds, cts.Token);
        // Both snapshots referenced again, as the lost record kept them: the older is the restore's fallback.
        Assert.All(await ReadLeasesAsync(set, cts.Token), lease => Assert.Equal(2, lease.Snapshots.Count));
    }

    [Theory]
    [InlineData("as stored")]
    // Their meta entries written again once the new inbox exists: by the time they were stored, they look newer than it.
    [InlineData("touched after the inbox was made again")]
    // Written before snapshots were stamped: judged by when they were stored.
    [InlineData("unstamped")]
    public async Task Snapshots_of_an_inbox_since_deleted_are_not_taken_for_a_lost_record(string snapshots)
    {
        await using var set = await ReplicaSet.CreateAsync(nats.Url, TestSagas.Fold(), o => o with { Partitions = 2, SnapshotInterval = TimeSpan.FromHours(1) });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var folds = new Folds();
        var a = await set.StartAsync("a");
        await folds.PublishRoundsAsync(set, keys: 6, rounds: 3, TimeSpan.Zero, cts.Token);
        await folds.WaitForCommandsAsync(set, folds.Count, s_wait, cts.Token);
        await a.Runtime!.DrainAsync(cts.Token); // snapshots at inbox sequences up to 18
        await a.StopAsync();
        a.Wipe();

        if (snapshots == "unstamped")
        {
            Assert.Equal(2, await RewriteSnapshotMetaAsync(set, meta => meta.Metadata = null, cts.Token));
        }

        // Started over: the inbox and the partitions' records deleted, the snapshot store left as it was.
        var inbox = await set.Js.GetStreamAsync(set.Options.JetStream.Streams.Inbox, cancellationToken: cts.Token);
        await set.Js.DeleteStreamAsync(inbox.Info.Config.Name!, cts.Token);
        await LoseLeaseRecordsAsync(set, "deleted", cts.Token);
        var again = await set.Js.CreateStreamAsync(inbox.Info.Config, cts.Token);
        // The new inbox holds more than the old one did before anything runs (messages its owner will quarantine):
        // by their sequences alone, the old snapshots would fit it.
        for (var i = 0; i < 20; i++)
        {
            for (var p = 0; p < set.Options.Partitions; p++)
            {
                var ack = await set.Js.PublishAsync(Core.Subjects.Subjects.Inbox(new Core.Ids.PartitionId(p)), "not an inbox message"u8.ToArray(),
                    serializer: NATS.Client.Core.NatsRawSerializer<byte[]>.Default, cancellationToken: cts.Token);
                Assert.Null(ack.Error);
            }
        }
        if (snapshots == "touched after the inbox was made again")
        {
            Assert.Equal(2, await RewriteSnapshotMetaAsync(set, _ => { }, cts.Token));
            var objects = await Runner.Sagas.Snapshots.SnapshotStore.OpenAsync(set.Js, set.Options.SnapshotBucket, 1, cts.Token);
            for (var p = 0; p < set.Options.Partitions; p++)
            {
                foreach (var name in await objects.NamesAsync(new Core.Ids.PartitionId(p), cts.Token))
                {
                    Assert.True((await objects.InfoAsync(name, cts.Token))!.StoredAt > again.Info.Created);
                }
            }
        }
        var b = await set.StartAsync("b");
        await folds.PublishRoundsAsync(set, keys: 6, rounds: 1, TimeSpan.Zero, cts.Token);

        // A snapshot of the old inbox taken for this one would bring back its three rounds and skip this one's first messages.
        for (var k = 0; k < 6; k++)
        {
            var record = await WaitForInstanceAsync(b, "k" + k, 1);
            Assert.Equal(1, record.State.GetProperty("order").GetArrayLength());
        }
        Assert.All(await ReadLeasesAsync(set, cts.Token), lease => Assert.Empty(lease.Snapshots));
    }

    /// <summary>Replica "a" folds two rounds, snapshots every partition (a drain), takes them back, folds two more and snapshots again: two snapshots kept, the inbox purged below the first.</summary>
    private static async Task<Replica> SnapshotTwiceAsync(ReplicaSet set, Folds folds, CancellationToken cancellationToken)
    {
        var a = await set.StartAsync("a");
        await folds.PublishRoundsAsync(set, keys: 6, rounds: 2, TimeSpan.Zero, cancellationToken);
        await folds.WaitForCommandsAsync(set, folds.Count, s_wait, cancellationToken);
        await a.Runtime!.DrainAsync(cancellationToken); // first snapshots
        await a.Runtime.ResumeAsync(cancellationToken);
        await SagaHarness.WaitUntilAsync(() => a.Runtime.OwnedPartitions.Count == set.Options.Partitions, s_wait, "a holds every partition again");
        await folds.PublishRoundsAsync(set, keys: 6, rounds: 2, TimeSpan.Zero, cancellationToken);
        await folds.WaitForCommandsAsync(set, folds.Count, s_wait, cancellationToken);
        await a.Runtime.DrainAsync(cancellationToken); // second snapshots
        return a;
    }

    /// <summary>A fifth round published, replica "b" started on an empty volume: every command exact, and each key's fold holds all five deposits.</summary>
    private static async Task FifthRoundOnBAsync(ReplicaSet set, Folds folds, CancellationToken cancellationToken)
    {
        await folds.PublishRoundsAsync(set, keys: 6, rounds: 1, TimeSpan.Zero, cancellationToken);
        await set.StartAsync("b");
        await folds.WaitForCommandsAsync(set, folds.Count, s_wait, cancellationToken);
        folds.Verify(await set.CommandsAsync(cancellationToken));
        for (var k = 0; k < 6; k++)
        {
            var record = await WaitForInstanceAsync(set["b"], "k" + k, 5);
            Assert.Equal(5, record.State.GetProperty("order").GetArrayLength());
        }
    }

    /// <summary>
    /// Every snapshot object's meta entry written again as <paramref name="change"/> leaves it, as
    /// the object store writes it (a roll-up of the entry's subject): what an older Runner would
    /// have stored, or a tool that touched the entries. The entry's stored time (what the object
    /// store reports as its modification time) becomes now. Returns how many objects were rewritten.
    /// </summary>
    private static async Task<int> RewriteSnapshotMetaAsync(ReplicaSet set, Action<NATS.Client.ObjectStore.Models.ObjectMetadata> change, CancellationToken cancellationToken)
    {
        var bucket = set.Options.SnapshotBucket;
        var store = await new NATS.Client.ObjectStore.NatsObjContext(set.Js).GetObjectStoreAsync(bucket, cancellationToken);
        var metaPrefix = $"$O.{bucket}.M.";
        var stream = await set.Js.GetStreamAsync($"OBJ_{bucket}", new NATS.Client.JetStream.Models.StreamInfoRequest { SubjectsFilter = metaPrefix + ">" }, cancellationToken);
        var rewritten = 0;
        foreach (var subject in stream.Info.State.Subjects?.Keys ?? Enumerable.Empty<string>())
        {
            var name = Runner.Sagas.Snapshots.SnapshotStore.NameOfMetaSubject(subject, metaPrefix)!;
            var meta = await store.GetInfoAsync(name, showDeleted: true, cancellationToken: cancellationToken);
            if (meta.Deleted)
            {
                continue;
            }
            change(meta);
            var ack = await set.Js.PublishAsync(subject, System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(meta),
                serializer: NATS.Client.Core.NatsRawSerializer<byte[]>.Default,
                headers: new NATS.Client.Core.NatsHeaders { ["Nats-Rollup"] = "sub" }, cancellationToken: cancellationToken);
            Assert.Null(ack.Error);
            var read = await store.GetInfoAsync(name, cancellationToken: cancellationToken);
            Assert.Equal(meta.Metadata?.GetValueOrDefault(Runner.Sagas.Snapshots.SnapshotStore.InboxKey), read.Metadata?.GetValueOrDefault(Runner.Sagas.Snapshots.SnapshotStore.InboxKey));
            rewritten++;
        }
        return rewritten;
    }

    /// <summary>Every partition's lease record deleted, or overwritten with what cannot be read.</summary>
    private static async Task LoseLeaseRecordsAsync(ReplicaSet set, string how, CancellationToken cancellationToken)
    {
        var kv = await new NATS.Client.KeyValueStore.NatsKVContext(set.Js).GetStoreAsync(set.Options.OwnershipBucket, cancellationToken);
        for (var p = 0; p < set.Options.Partitions; p++)
        {
            var key = Ownership.OwnershipBucket.PartitionKey(new Core.Ids.PartitionId(p));
            if (how == "deleted")
            {
                await kv.DeleteAsync(key, cancellationToken: cancellationToken);
            }
            else
            {
                await kv.PutAsync(key, "{ not a lease"u8.ToArray(), serializer: NATS.Client.Core.NatsRawSerializer<byte[]>.Default, cancellationToken: cancellationToken);
            }
        }
    }

    private static async Task<List<Ownership.LeaseRecord>> ReadLeasesAsync(ReplicaSet set, CancellationToken cancellationToken)
    {
        var kv = await new NATS.Client.KeyValueStore.NatsKVContext(set.Js).GetStoreAsync(set.Options.OwnershipBucket, cancellationToken);
        var leases = new List<Ownership.LeaseRecord>();
        for (var p = 0; p < set.Options.Partitions; p++)
        {
            var entry = await kv.GetEntryAsync<byte[]>(Ownership.OwnershipBucket.PartitionKey(new Core.Ids.PartitionId(p)),
                serializer: NATS.Client.Core.NatsRawSerializer<byte[]>.Default, cancellationToken: cancellationToken);
            leases.Add(Ownership.OwnershipBucket.Parse(entry.Value, Ownership.OwnershipJsonContext.Default.LeaseRecord)!);
        }
        return leases;
    }
}
