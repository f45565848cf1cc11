using System.Diagnostics;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Client.KeyValueStore;
using NATS.Net;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>
/// The three-node cluster fixture is a real cluster: R3 streams and buckets keep taking writes
/// and answering reads with one server dead, and the server rejoins and catches up when started.
/// </summary>
public sealed class ClusterFixtureTests(NatsClusterFixture cluster) : IClassFixture<NatsClusterFixture>
{
    // Losing a stream leader takes a raft election (seconds in 2.9) plus a client reconnect.
    private static readonly TimeSpan s_failover = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Stream_and_bucket_survive_one_of_three_servers_killed()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(55));
        var ct = cts.Token;
        var id = Guid.NewGuid().ToString("N")[..8];
        await using var nats = await cluster.ConnectAsync();
        var js = nats.CreateJetStreamContext();
        var stream = await js.CreateStreamAsync(new StreamConfig($"CFT_{id}", [$"cft.{id}.>"]) { NumReplicas = 3 }, ct);
        var store = await js.CreateKeyValueStoreContext().CreateStoreAsync(new NatsKVConfig($"CFT_{id}") { NumberOfReplicas = 3 }, ct);
        Assert.Equal(3, stream.Info.Config.NumReplicas);
        (await js.PublishAsync($"cft.{id}.e", "before", opts: new NatsJSPubOpts { MsgId = "before" }, cancellationToken: ct)).EnsureSuccess();
        await store.PutAsync("k", "before", cancellationToken: ct);

        // The stream's leader is the hardest one to lose: the stream must elect a new one.
        await stream.RefreshAsync(ct);
        var victim = cluster.NodeOf(stream.Info.Cluster!.Leader!);
        await cluster.KillAsync(victim, ct);

        var ack = await EventuallyAsync(
            async token => await js.PublishAsync($"cft.{id}.e", "during", opts: new NatsJSPubOpts { MsgId = "during" }, cancellationToken: token),
            "a publish to the stream with its leader dead", ct);
        Assert.Null(ack.Error);
        Assert.Equal(2ul, ack.Seq);
        await EventuallyAsync(async token => await store.PutAsync("k", "during", cancellationToken: token), "a put to the bucket with a server dead", ct);
        var entry = await EventuallyAsync(async token => await store.GetEntryAsync<string>("k", cancellationToken: token), "a get from the bucket with a server dead", ct);
        Assert.Equal("during", entry.Value);

        await cluster.StartAsync(victim, ct);

        await SagaHarness.WaitUntilAsync(
            async () =>
            {
                await stream.RefreshAsync(ct);
                var replicas = stream.Info.Cluster?.Replicas ?? [];
                return stream.Info.Cluster?.Leader is not null && replicas.Count == 2 && replicas.All(r => r.Current && !r.Offline);
            },
            s_failover,
            "the stream's three replicas to be current after the restart");
        (await js.PublishAsync($"cft.{id}.e", "after", opts: new NatsJSPubOpts { MsgId = "after" }, cancellationToken: ct)).EnsureSuccess();
        await stream.RefreshAsync(ct);
        Assert.Equal(3, stream.Info.State.Messages);
        Assert.Equal("during", (await store.GetEntryAsync<string>("k", cancellationToken: ct)).Value);
    }

    [Fact]
    public async Task A_purge_by_subject_survives_a_restart_exactly_when_the_version_check_says_so()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(55));
        var ct = cts.Token;
        var id = Guid.NewGuid().ToString("N")[..8];
        var name = $"CFP_{id}";
        await using var nats = await cluster.ConnectAsync();
        var js = nats.CreateJetStreamContext();
        var stream = await js.CreateStreamAsync(new StreamConfig(name, [$"cfp.{id}.>"]) { NumReplicas = 3 }, ct);
        foreach (var subject in new[] { "a", "b", "a", "b", "a", "b" })
        {
            (await js.PublishAsync($"cfp.{id}.{subject}", subject, cancellationToken: ct)).EnsureSuccess();
        }
        // As a partition's inbox is purged: one subject, below a sequence (1 and 3 go; 2, 4, 5, 6 stay). Then more
        // comes: a restarted server applies again, as it reads its log back, what later entries of the log say was
        // committed, and that now takes in the purge.
        var purged = await js.PurgeStreamAsync(name, new StreamPurgeRequest { Filter = $"cfp.{id}.a", Seq = 5 }, ct);
        Assert.Equal(2, (long)purged.Purged);
        for (var i = 0; i < 3; i++)
        {
            (await js.PublishAsync($"cfp.{id}.b", "after", cancellationToken: ct)).EnsureSuccess();
        }
        await stream.RefreshAsync(ct);
        var victim = cluster.NodeOf(stream.Info.Cluster!.Leader!);
        Assert.Equal(7, (long)stream.Info.State.Messages);

        await cluster.KillAsync(victim, ct);
        await cluster.StartAsync(victim, ct);
        var copy = await cluster.LocalStreamAsync(victim, name, ct);

        // A server the check names replays the purge as "every message up to the stream's last sequence then" (6),
        // the other subject's too, and keeps 7, 8 and 9 of the seven; any other keeps all seven.
        var compacts = Messaging.NatsServerVersions.ReplaysPurgeAsCompaction(nats.ServerInfo!.Version);
        Assert.Equal(compacts ? 3ul : 7ul, copy?.Messages);
    }

    /// <summary>
    /// What a snapshot's inbox stamp rests on: a replicated stream's creation time is one value,
    /// on every server's copy and through a leader's restart, so a stamp taken from one answer
    /// matches what any later answer says.
    /// </summary>
    [Fact]
    public async Task A_replicated_stream_keeps_one_creation_time_on_every_server_and_through_its_leader_restarting()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(55));
        var ct = cts.Token;
        var id = Guid.NewGuid().ToString("N")[..8];
        var name = $"CFC_{id}";
        await using var nats = await cluster.ConnectAsync();
        var js = nats.CreateJetStreamContext();
        var stream = await js.CreateStreamAsync(new StreamConfig(name, [$"cfc.{id}.>"]) { NumReplicas = 3 }, ct);
        var created = Snapshots.SnapshotStore.InboxStamp(stream.Info.Created);
        (await js.PublishAsync($"cfc.{id}.a", "x", cancellationToken: ct)).EnsureSuccess();
        await stream.RefreshAsync(ct);
        var victim = cluster.NodeOf(stream.Info.Cluster!.Leader!);

        await cluster.KillAsync(victim, ct);
        var after = await EventuallyAsync(async token => await js.GetStreamAsync(name, cancellationToken: token), "stream info from a new leader", ct);
        Assert.NotEqual(victim, cluster.NodeOf(after.Info.Cluster!.Leader!));
        Assert.Equal(created, Snapshots.SnapshotStore.InboxStamp(after.Info.Created));
        await cluster.StartAsync(victim, ct);

        for (var node = 0; node < 3; node++)
        {
            var n = node;
            var copy = await EventuallyAsync(async token => await cluster.LocalStreamAsync(n, name, token) ?? throw new NatsException($"no copy on node {n} yet"), $"the copy on node {n}", ct);
            Assert.Equal(created, Snapshots.SnapshotStore.InboxStamp(copy.Created));
        }
    }

    private static async Task<T> EventuallyAsync<T>(Func<CancellationToken, Task<T>> attempt, string what, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(s_failover);
        var clock = Stopwatch.StartNew();
        Exception? last = null;
        try
        {
            while (true)
            {
                try
                {
                    return await attempt(deadline.Token);
                }
                catch (NatsException e)
                {
                    last = e;
                }
                await Task.Delay(100, deadline.Token);
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"no {what} within {clock.Elapsed.TotalSeconds:0.0}s", last);
        }
    }
}
