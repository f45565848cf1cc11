using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>Two saga replicas on a three-server NATS cluster with R3 streams and buckets, one server killed mid-load.</summary>
public sealed class ReplicaClusterTests(NatsClusterFixture cluster) : IClassFixture<NatsClusterFixture>
{
    [Fact]
    public async Task One_of_three_servers_killed_mid_load_loses_nothing_and_applies_nothing_twice()
    {
        await using var set = await ReplicaSet.CreateAsync(cluster.Url, TestSagas.Fold(),
            o => o with { JetStream = o.JetStream with { Replicas = 3 }, SnapshotInterval = TimeSpan.FromSeconds(1) });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var folds = new Folds();
        await set.StartAsync("a");
        await set.StartAsync("b");
        await set.WaitBalancedAsync(["a", "b"], TimeSpan.FromSeconds(30), "a and b balanced");
        var producer = folds.PublishRoundsAsync(set, keys: 24, rounds: 10, TimeSpan.FromMilliseconds(300), cts.Token);
        await Task.Delay(1200, cts.Token);
        // The inbox's leader is the hardest one to lose.
        var inbox = await set.Js.GetStreamAsync(set.Options.JetStream.Streams.Inbox, cancellationToken: cts.Token);
        var victim = cluster.NodeOf(inbox.Info.Cluster!.Leader!);
        await cluster.KillAsync(victim, cts.Token);
        await producer;
        // Back in the cluster; catching its many consumers up can take long under load, and the
        // other two servers carry the work meanwhile.
        await cluster.StartAsync(victim, cts.Token, caughtUp: false);
        await folds.WaitForCommandsAsync(set, folds.Count, TimeSpan.FromSeconds(60), cts.Token);
        await folds.VerifyAsync(set, cts.Token);
        await set.WaitBalancedAsync(["a", "b"], TimeSpan.FromSeconds(30), "a and b balanced at the end");
        if (Messaging.NatsServerVersions.ReplaysPurgeAsCompaction(set.Js.Connection.ServerInfo?.Version))
        {
            // The restarted server would have replayed a purge as a compaction of its copy (ClusterFixtureTests), and
            // a consumer it led would have skipped what that dropped: nothing was purged, every routed event is kept.
            var kept = await set.Js.GetStreamAsync(set.Options.JetStream.Streams.Inbox, cancellationToken: cts.Token);
            Assert.Equal(1UL, kept.Info.State.FirstSeq);
            Assert.Equal(kept.Info.State.LastSeq, (ulong)kept.Info.State.Messages);
        }
    }
}
