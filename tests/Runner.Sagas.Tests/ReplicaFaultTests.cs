using NATS.Client.ObjectStore;
using Runner.Sagas.Manifests;
using Runner.Sagas.Ownership;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>Replicas meeting faults: NATS restarting mid hand-over, a manifest version that is not stored, a wrong partition count.</summary>
public sealed class ReplicaFaultTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(40);

    [Fact]
    public async Task NATS_restarting_during_a_hand_over_loses_nothing_and_ends_balanced()
    {
        await using var set = await ReplicaSet.CreateAsync(nats.Url, TestSagas.Fold());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var folds = new Folds();
        await set.StartAsync("a");
        await folds.PublishRoundsAsync(set, keys: 24, rounds: 3, TimeSpan.Zero, cts.Token);
        await folds.WaitForCommandsAsync(set, folds.Count, s_wait, cts.Token);
        await set.StartAsync("b");
        // a starts handing half of its partitions to b; the server goes away in the middle of it.
        await SagaHarness.WaitUntilAsync(() => set["b"].Runtime!.OwnedPartitions.Count > 0, s_wait, "the hand-over to begin");
        await nats.RestartAsync(TimeSpan.FromSeconds(1), cts.Token);
        await folds.PublishRoundsAsync(set, keys: 24, rounds: 2, TimeSpan.Zero, cts.Token);
        await SagaHarness.WaitUntilAsync(() => set.Balanced(["a", "b"]), s_wait, "a and b balanced after the restart");
        await folds.WaitForCommandsAsync(set, folds.Count, s_wait, cts.Token);
        folds.Verify(await set.CommandsAsync(cts.Token));
    }

    [Fact]
    public async Task A_partition_whose_recorded_version_is_not_stored_waits_for_it_and_then_replays_with_it()
    {
        await using var set = await ReplicaSet.CreateAsync(nats.Url, TestSagas.Fold("v1"), o => o with { Partitions = 2, SnapshotInterval = TimeSpan.FromHours(1) });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var folds = new Folds();
        var a = await set.StartAsync("a");
        await folds.PublishRoundsAsync(set, keys: 4, rounds: 2, TimeSpan.Zero, cts.Token);
        await folds.WaitForCommandsAsync(set, folds.Count, s_wait, cts.Token);
        var v1 = a.Runtime!.Manifests.Hash;
        // a dies without a hand-over; events it never ran arrive; v1 is lost from the version store.
        await a.CrashAsync();
        await folds.PublishRoundsAsync(set, keys: 4, rounds: 1, TimeSpan.Zero, cts.Token);
        var versions = await new NatsObjContext(set.Js).GetObjectStoreAsync(set.Options.ManifestBucket, cts.Token);
        await versions.DeleteAsync(v1, cts.Token);

        // b runs v2 and cannot know what a ran the retained inbox with: it waits, applying nothing.
        var v2Dir = set.Dir.File("manifests-v2");
        Directory.CreateDirectory(v2Dir);
        foreach (var (name, text) in TestSagas.Fold("v2"))
        {
            await File.WriteAllTextAsync(Path.Combine(v2Dir, name), text, cts.Token);
        }
        var b = await set.StartAsync("b", v2Dir);
        await SagaHarness.WaitUntilAsync(() => b.Runtime!.OwnedPartitions.Count == 2, s_wait, "b to take both partitions after a's lease");
        await Task.Delay(1500, cts.Token);
        Assert.Equal(8, (await set.CommandsAsync(cts.Token)).Count);
        Assert.Equal(0, b.Listener.Count);

        // Once v1 is stored again (any replica running it stores it), b replays what a ran with v1;
        // what a never ran (routed only after a died) runs with b's own v2.
        var v1Set = ManifestLoader.Load(set.ManifestDir, set.Options.JetStream.Streams).Set!;
        Assert.Equal(v1, v1Set.Hash);
        await new ManifestVersions(versions, set.Dir.File("v1-store"), set.Options.JetStream.Streams).AddAsync(v1Set, cts.Token);
        await folds.WaitForCommandsAsync(set, folds.Count, s_wait, cts.Token);
        await folds.PublishRoundsAsync(set, keys: 4, rounds: 1, TimeSpan.Zero, cts.Token);
        await folds.WaitForCommandsAsync(set, folds.Count, s_wait, cts.Token);
        var commands = await set.CommandsAsync(cts.Token);
        folds.Verify(commands);
        var marks = commands.Select(c => c.Payload.GetProperty("mark").GetString()).ToList();
        Assert.Equal(Enumerable.Repeat("v1", 8).Concat(Enumerable.Repeat("v2", 8)), marks);
        for (var k = 0; k < 4; k++)
        {
            var key = "k" + k;
            await SagaHarness.WaitUntilAsync(() => Instance(b, key)?.Version == 4, s_wait, $"{key} at version 4 on b");
            Assert.Equal(["v1", "v1", "v2", "v2"], Instance(b, key)!.State.GetProperty("marks").EnumerateArray().Select(m => m.GetString()));
        }
    }

    private static Core.Transitions.SagaInstanceRecord? Instance(Replica replica, string key)
    {
        var instance = new Core.Ids.InstanceId(new Core.Ids.TenantId("acme"), new Core.Ids.SagaName("fold"), new Core.Ids.CorrelationKey(key));
        var partition = Core.Ids.Partitioner.PartitionOf(instance, replica.Runtime!.Options.Partitions);
        var raw = replica.Store!.Read(r => r.Get(Core.Keys.KeySpace.Saga, Core.Keys.StoreKeys.Instance(partition, instance)));
        return raw is null ? null : System.Text.Json.JsonSerializer.Deserialize(raw, Core.CoreJsonContext.Default.SagaInstanceRecord);
    }

    [Fact]
    public async Task A_replica_with_another_partition_count_is_refused_at_start()
    {
        await using var set = await ReplicaSet.CreateAsync(nats.Url, TestSagas.Fold(), o => o with { Partitions = 16 });
        await set.StartAsync("a");
        await using var other = await ReplicaSet.CreateOnAsync(set, o => o with { Partitions = 8 });
        var error = await Assert.ThrowsAsync<DeploymentMismatchException>(() => other.StartAsync("b"));
        Assert.Contains("RUNNER_PARTITIONS is 8", error.Message, StringComparison.Ordinal);
        Assert.Contains("created with 16 partitions", error.Message, StringComparison.Ordinal);
    }
}
