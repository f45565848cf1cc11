using System.Diagnostics;
using Runner.Testing;
using Xunit;
using Xunit.Abstractions;

namespace Runner.Host.Tests;

/// <summary>
/// Saga replicas as real processes sharing the partitions by leases: they split them disjointly
/// and evenly, and whatever happens to a replica — killed, its disk lost, a new one added, or
/// frozen past its lease and thawed — every event still yields exactly one transition that saw
/// the exact fold of its key's earlier events, as the commands on WORKFLOW_COMMANDS show.
/// </summary>
public sealed class ScaleOutTests(NatsServerFixture nats, ITestOutputHelper output) : IClassFixture<NatsServerFixture>
{
    private static readonly TimeSpan s_settle = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Three_replicas_own_the_sixteen_partitions_disjointly_and_balanced_within_one()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await using var replicas = await SagaReplicas.CreateAsync(nats, FoldLedger.Manifests, cts.Token);
        SagaReplica[] three = [replicas.Start("a"), replicas.Start("b"), replicas.Start("c")];

        // What each replica says it holds is what the bucket says: held by it, at the epoch it reports. The two are read one
        // after the other, and while the three settle a partition can move between the reads (a replica that saw a neighbour
        // below its share a moment late hands one more over), so wait for a moment when both reads agree and then check them.
        IReadOnlyList<ReplicaInfo>? infos = null;
        IReadOnlyList<LeaseView>? leases = null;
        bool Agree() => infos is not null && leases is not null && three.Select((r, i) => infos[i].Owned.All(partition =>
            leases.SingleOrDefault(l => l.Partition == partition) is { } lease
            && (lease.State, lease.Owner, lease.Epoch) == ("held", r.WorkerId, infos[i].Epochs[partition]))).All(x => x);
        await replicas.WaitUntilAsync("the three hold the partitions disjointly, balanced within one, as the bucket says", s_settle, async token =>
        {
            infos = await SagaReplicas.InfosAsync(three, token);
            if (infos is null || !SagaReplicas.Partitioned(infos))
            {
                return false;
            }
            leases = await replicas.LeasesAsync(token);
            return Agree();
        }, cts.Token);

        Assert.Equal(SagaReplicas.Partitions, leases!.Count);
        for (var i = 0; i < three.Length; i++)
        {
            foreach (var partition in infos![i].Owned)
            {
                var lease = leases.Single(l => l.Partition == partition);
                Assert.Equal(("held", three[i].WorkerId, infos[i].Epochs[partition]), (lease.State, lease.Owner, lease.Epoch));
            }
        }
    }

    [Fact]
    public async Task Replicas_killed_wiped_and_added_under_load_lose_nothing_and_apply_nothing_twice()
    {
        const int Keys = 200;
        const int Events = Keys * 5;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(150));
        await using var replicas = await SagaReplicas.CreateAsync(nats, FoldLedger.Manifests, cts.Token);
        var ledger = new FoldLedger(replicas.Js);
        var clock = Stopwatch.StartNew();
        SagaReplica[] first = [replicas.Start("r1"), replicas.Start("r2"), replicas.Start("r3")];
        var (r1, r2, r3) = (first[0], first[1], first[2]);
        await WaitPartitionedAsync(replicas, first, cts.Token);
        Log(clock, "r1, r2, r3 share the partitions");

        // About 18 s of events; each blow lands once the producer has got so far.
        var producer = ledger.PublishAsync(Events, Keys, burst: 50, pause: TimeSpan.FromMilliseconds(800), cts.Token);
        async Task PublishedAsync(int count)
        {
            var reached = ledger.WaitPublishedAsync(count, cts.Token);
            await Task.WhenAny(reached, producer);
            if (producer.IsFaulted)
            {
                await producer;
            }
            await reached;
        }

        await PublishedAsync(200);
        await r1.KillAsync(cts.Token);
        Log(clock, $"r1 killed at {ledger.Published} events");

        await PublishedAsync(450);
        await r2.KillAsync(cts.Token);
        r2.WipeData();
        r2.Start();
        Log(clock, $"r2 killed, wiped and started again at {ledger.Published} events");

        await PublishedAsync(700);
        var r4 = replicas.Start("r4");
        Log(clock, $"r4 started at {ledger.Published} events");

        await producer;
        Log(clock, $"{ledger.Published} events published");
        await ledger.WaitForCommandsAsync(replicas, TimeSpan.FromSeconds(90), cts.Token);
        Log(clock, "every command is out");
        await ledger.AssertExactFoldAsync(replicas, cts.Token);

        // The live three (r1 stays dead) end up sharing the partitions, and the wiped replica, back
        // under its worker id, took partitions again. (Whether it did so before the last command was
        // out depends on how fast it starts on a loaded box, not on what is under test.)
        await WaitPartitionedAsync(replicas, [r2, r3, r4], cts.Token);
        // Logged before /info says so, but written by the console logger's own thread: waited for, not read at once.
        await replicas.WaitUntilAsync("r2 logs that it acquired partitions", s_settle,
            _ => Task.FromResult(r2.CurrentOutput.Contains("acquired partition.", StringComparison.Ordinal)), cts.Token);
        Log(clock, "r2, r3, r4 share the partitions");
    }

    [Fact]
    public async Task A_replica_stopped_past_its_lease_is_fenced_and_changes_nothing_when_it_continues()
    {
        const int Keys = 40;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(150));
        await using var replicas = await SagaReplicas.CreateAsync(nats, FoldLedger.Manifests, cts.Token);
        var ledger = new FoldLedger(replicas.Js);
        var clock = Stopwatch.StartNew();
        var a = replicas.Start("a");
        await replicas.WaitUntilAsync("a holds all 16 partitions", s_settle,
            async token => await a.InfoAsync(token) is { Owned.Count: SagaReplicas.Partitions }, cts.Token);
        // Lag is reported for the consumers a replica reads now: all 16 while a holds them all ...
        IReadOnlySet<string>? lagSeries = null;
        await replicas.WaitUntilAsync("a reports the lag of all 16 partition consumers", s_settle,
            async token => (lagSeries = await a.LagSeriesAsync(token)) is { Count: SagaReplicas.Partitions }, cts.Token);
        var b = replicas.Start("b");
        var split = await WaitPartitionedAsync(replicas, [a, b], cts.Token);
        Log(clock, "a and b hold 8 partitions each");
        // ... and after handing 8 to b, none for those: a consumer it no longer reads keeps no old figure.
        lagSeries = await a.LagSeriesAsync(cts.Token);
        Assert.NotNull(lagSeries);
        var reads = split[0].Owned.Select(p => $"runner-inbox-{p}-e{split[0].Epochs[p]}").ToHashSet(StringComparer.Ordinal);
        Assert.Subset(reads, lagSeries.ToHashSet(StringComparer.Ordinal));

        // a freezes with work in hand, and stays frozen for two and a half leases while events flow.
        await ledger.PublishAsync(120, Keys, burst: 120, pause: TimeSpan.Zero, cts.Token);
        await a.Process.PauseAsync(cts.Token);
        Log(clock, $"a stopped at {ledger.Published} events");
        await ledger.PublishForAsync(SagaReplicas.Lease * 2.5, Keys, burst: 10, pause: TimeSpan.FromMilliseconds(500), cts.Token);
        await replicas.WaitUntilAsync("b holds all 16 partitions, each at epoch 2 or later", s_settle, async token =>
            await b.InfoAsync(token) is { Owned.Count: SagaReplicas.Partitions } info && info.Epochs.Values.All(e => e >= 2), cts.Token);
        Log(clock, $"b holds all 16 at {ledger.Published} events");

        // a runs on from where it stood: it must notice it lost its leases before it changes anything.
        await a.Process.ContinueAsync(cts.Token);
        Log(clock, "a continued");
        await ledger.PublishAsync(120, Keys, burst: 20, pause: TimeSpan.FromMilliseconds(100), cts.Token);
        await ledger.WaitForCommandsAsync(replicas, s_settle, cts.Token);
        Log(clock, $"every command is out ({ledger.Published} events)");
        await ledger.AssertExactFoldAsync(replicas, cts.Token);
        await replicas.WaitUntilAsync("a logs that it is fenced", s_settle,
            _ => Task.FromResult(a.Output.Contains("is fenced", StringComparison.Ordinal)), cts.Token);

        // a is a live replica again: the two share the partitions, and events go on folding exactly.
        await WaitPartitionedAsync(replicas, [a, b], cts.Token);
        Log(clock, "a and b hold 8 partitions each again");
        await ledger.PublishAsync(120, Keys, burst: 40, pause: TimeSpan.FromMilliseconds(100), cts.Token);
        await ledger.WaitForCommandsAsync(replicas, s_settle, cts.Token);
        Log(clock, $"every command is out ({ledger.Published} events)");
        await ledger.AssertExactFoldAsync(replicas, cts.Token);
    }

    private static async Task<IReadOnlyList<ReplicaInfo>> WaitPartitionedAsync(SagaReplicas replicas, IReadOnlyList<SagaReplica> these, CancellationToken cancellationToken)
    {
        IReadOnlyList<ReplicaInfo>? infos = null;
        await replicas.WaitUntilAsync($"{string.Join(", ", these.Select(r => r.Name))} hold the {SagaReplicas.Partitions} partitions disjointly, balanced within one", s_settle, async token =>
        {
            infos = await SagaReplicas.InfosAsync(these, token);
            return infos is not null && SagaReplicas.Partitioned(infos);
        }, cancellationToken);
        return infos!;
    }

    private void Log(Stopwatch clock, string what) => output.WriteLine($"{clock.Elapsed.TotalSeconds,6:F1} s  {what}");
}
