using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.KeyValueStore;
using Runner.Host.Tests.Operations;
using Runner.Testing;
using Xunit;

namespace Runner.Host.Tests;

/// <summary>A partition lease as the ownership bucket holds it.</summary>
internal sealed record LeaseView(int Partition, string State, string? Owner, long Epoch, ulong Revision);

/// <summary>
/// Saga replicas (<c>RUNNER_MODE=saga</c>) on one emptied nats-server, sharing one manifest
/// directory and the scale-out settings; and, for a failing test, what it needs to say why: the
/// stream counts, the lease records and the tail of every replica's output.
/// </summary>
internal sealed class SagaReplicas : IAsyncDisposable
{
    public const int Partitions = 16;
    public const string OwnershipBucket = "RUNNER_PARTITIONS";
    public static readonly TimeSpan Lease = TimeSpan.FromSeconds(3);

    private static readonly string[] s_streams = ["AGGREGATE_EVENTS", "RUNNER_INBOX", "WORKFLOW_COMMANDS"];

    private readonly TempDirectory _dir;
    private readonly NatsConnection _connection;
    private readonly Dictionary<string, string> _shared;
    private readonly List<SagaReplica> _replicas = [];

    private SagaReplicas(TempDirectory dir, NatsConnection connection, Dictionary<string, string> shared)
    {
        _dir = dir;
        _connection = connection;
        _shared = shared;
        Js = new NatsJSContext(connection);
    }

    public INatsJSContext Js { get; }

    public static async Task<SagaReplicas> CreateAsync(NatsServerFixture nats, IReadOnlyDictionary<string, string> manifests, CancellationToken cancellationToken)
    {
        var dir = new TempDirectory("runner-scaleout");
        Directory.CreateDirectory(dir.File("manifests"));
        foreach (var (name, text) in manifests)
        {
            await File.WriteAllTextAsync(dir.File("manifests/" + name), text, cancellationToken);
        }
        var connection = await nats.ConnectAsync();
        // Streams, buckets and the deployment record of an earlier test would leak into this one.
        await RunnerNode.ResetServerAsync(new NatsJSContext(connection), cancellationToken);
        var shared = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["RUNNER_NATS_URL"] = nats.Url,
            ["RUNNER_MANIFESTS"] = dir.File("manifests"),
            ["RUNNER_MODE"] = "saga",
            ["RUNNER_PARTITIONS"] = Partitions.ToString(CultureInfo.InvariantCulture),
            ["RUNNER_PARTITION_LEASE"] = $"{Lease.TotalSeconds.ToString(CultureInfo.InvariantCulture)}s",
            ["RUNNER_SNAPSHOT_INTERVAL"] = "1s",
            ["RUNNER_ACK_WAIT"] = "2s",
        };
        return new SagaReplicas(dir, connection, shared);
    }

    /// <summary>Starts a new replica with its own worker id, data directory and port.</summary>
    public SagaReplica Start(string name)
    {
        var replica = new SagaReplica(name, _dir.File(name), _shared);
        _replicas.Add(replica);
        replica.Start();
        return replica;
    }

    /// <summary>The replicas' <c>/info</c>, in their order; null when any of them does not answer.</summary>
    public static async Task<IReadOnlyList<ReplicaInfo>?> InfosAsync(IEnumerable<SagaReplica> replicas, CancellationToken cancellationToken)
    {
        var infos = await Task.WhenAll(replicas.Select(r => r.InfoAsync(cancellationToken)));
        return infos.Any(i => i is null) ? null : [.. infos.OfType<ReplicaInfo>()];
    }

    /// <summary>Every partition held by exactly one of them, and no count more than one above another.</summary>
    public static bool Partitioned(IReadOnlyList<ReplicaInfo> infos)
    {
        var held = infos.SelectMany(i => i.Owned).Order().ToList();
        var counts = infos.Select(i => i.Owned.Count).ToList();
        return held.SequenceEqual(Enumerable.Range(0, Partitions)) && counts.Max() - counts.Min() <= 1;
    }

    /// <summary>Polls <paramref name="condition"/> until true; past <paramref name="within"/>, fails naming it with the diagnostics.</summary>
    public async Task WaitUntilAsync(string what, TimeSpan within, Func<CancellationToken, Task<bool>> condition, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(within);
        try
        {
            while (!await condition(deadline.Token))
            {
                if (_replicas.FirstOrDefault(r => r.ExitedByItself) is { } exited)
                {
                    Assert.Fail($"replica {exited} exited by itself ({exited.Process.ExitCode}) while waiting until {what}\n{await DescribeAsync()}");
                }
                await Task.Delay(TimeSpan.FromMilliseconds(200), deadline.Token);
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            Assert.Fail($"{(cancellationToken.IsCancellationRequested ? "the test ran out of time" : $"gave up after {within.TotalSeconds} s")} waiting until {what}\n{await DescribeAsync()}");
        }
    }

    /// <summary>Every partition lease in the ownership bucket.</summary>
    public async Task<IReadOnlyList<LeaseView>> LeasesAsync(CancellationToken cancellationToken)
    {
        var kv = await new NatsKVContext(Js).GetStoreAsync(OwnershipBucket, cancellationToken);
        var leases = new List<LeaseView>();
        for (var p = 0; p < Partitions; p++)
        {
            var key = $"partition.{p:D5}";
            try
            {
                var entry = await kv.GetEntryAsync<string>(key, cancellationToken: cancellationToken);
                var record = JsonNode.Parse(entry.Value!)!;
                leases.Add(new LeaseView(p, record["state"]!.GetValue<string>(), record["owner"]?.GetValue<string>(), record["epoch"]!.GetValue<long>(), entry.Revision));
            }
            catch (NatsKVKeyNotFoundException)
            {
                // not taken yet
            }
        }
        return leases;
    }

    /// <summary>Stream counts, lease records, and the tail of every replica's output.</summary>
    public async Task<string> DescribeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var text = new StringBuilder("streams:");
        try
        {
            foreach (var stream in s_streams)
            {
                text.Append(' ').Append(stream).Append('=').Append(await RunnerNode.MessagesAsync(Js, stream, timeout.Token));
            }
            text.AppendLine().AppendLine("leases:");
            var kv = await new NatsKVContext(Js).GetStoreAsync(OwnershipBucket, timeout.Token);
            await foreach (var key in kv.GetKeysAsync(cancellationToken: timeout.Token))
            {
                var entry = await kv.GetEntryAsync<string>(key, cancellationToken: timeout.Token);
                text.Append("  ").Append(key).Append(" rev ").Append(entry.Revision).Append(": ").AppendLine(Summary(entry.Value));
            }
        }
        catch (Exception ex) when (ex is NatsException or OperationCanceledException)
        {
            text.AppendLine().Append("(could not read NATS: ").Append(ex.Message).AppendLine(")");
        }
        foreach (var replica in _replicas)
        {
            var state = replica.Running ? "running" : replica.ExitedByItself ? $"exited {replica.Process.ExitCode}" : "killed";
            text.AppendLine().Append("===== ").Append(replica).Append(", ").Append(state).AppendLine(", last output:").AppendLine(replica.Tail());
        }
        return text.ToString();
    }

    /// <summary>A lease or member record with its lists shortened: snapshot sequences, and each version's start and hash prefix.</summary>
    private static string Summary(string? json)
    {
        if (json is null || JsonNode.Parse(json) is not JsonObject record)
        {
            return json ?? "(empty)";
        }
        if (record["snapshots"] is JsonArray snapshots)
        {
            record["snapshots"] = string.Join(",", snapshots.Select(s => s?["seq"]?.ToJsonString()));
        }
        if (record["versions"] is JsonArray versions)
        {
            record["versions"] = string.Join(",", versions.Select(v => $"{v?["from"]}:{v?["manifest"]?.GetValue<string>()[..12]}"));
        }
        return record.ToJsonString();
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var replica in _replicas)
        {
            replica.Dispose();
        }
        await _connection.DisposeAsync();
        _dir.Dispose();
    }
}
