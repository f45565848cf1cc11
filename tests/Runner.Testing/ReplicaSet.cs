using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using Runner.Core;
using Runner.Core.Transitions;
using Runner.Sagas;
using Runner.Sagas.Manifests;
using Runner.Storage;

namespace Runner.Testing;

/// <summary>
/// Several saga replicas in one test process, each with its own NATS connection, its own LMDB
/// file and worker id, on one real nats-server (or cluster) and one manifest directory.
/// </summary>
internal sealed class ReplicaSet : IAsyncDisposable
{
    private readonly string _url;
    private readonly ILoggerFactory _loggers;
    // Concurrent: a test may sample the replicas from another thread while it starts them; Values is then a snapshot.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Replica> _replicas = new(StringComparer.Ordinal);

    private ReplicaSet(string url, TempDirectory dir, string manifestDir, SagaRuntimeOptions options, NatsConnection connection, ILoggerFactory loggers)
    {
        _url = url;
        Dir = dir;
        ManifestDir = manifestDir;
        Options = options;
        Connection = connection;
        Js = new NatsJSContext(connection);
        _loggers = loggers;
    }

    public TempDirectory Dir { get; }

    public string ManifestDir { get; }

    public SagaRuntimeOptions Options { get; }

    /// <summary>The test's own connection (publishing, reading streams).</summary>
    public NatsConnection Connection { get; }

    public INatsJSContext Js { get; }

    public IReadOnlyCollection<Replica> Replicas => [.. _replicas.Values];

    public Replica this[string name] => _replicas[name];

    /// <summary>Every stream of the server is deleted first, so each test starts from an empty server.</summary>
    public static Task<ReplicaSet> CreateAsync(string url, IReadOnlyDictionary<string, string> manifestFiles, Func<SagaRuntimeOptions, SagaRuntimeOptions>? configure = null) =>
        CreateAsync(url, manifestFiles, configure, reset: true);

    /// <summary>Replicas with other options on the same server and streams as <paramref name="existing"/> (nothing is deleted).</summary>
    public static Task<ReplicaSet> CreateOnAsync(ReplicaSet existing, Func<SagaRuntimeOptions, SagaRuntimeOptions> configure) =>
        CreateAsync(existing._url, System.IO.Directory.GetFiles(existing.ManifestDir).ToDictionary(f => Path.GetFileName(f), File.ReadAllText), o => configure(existing.Options), reset: false);

    private static async Task<ReplicaSet> CreateAsync(string url, IReadOnlyDictionary<string, string> manifestFiles, Func<SagaRuntimeOptions, SagaRuntimeOptions>? configure, bool reset)
    {
        var dir = new TempDirectory("runner-replicas");
        var manifestDir = dir.File("manifests");
        Directory.CreateDirectory(manifestDir);
        foreach (var (name, content) in manifestFiles)
        {
            await File.WriteAllTextAsync(Path.Combine(manifestDir, name), content);
        }
        // No warm-up (WarmUpTests and the host's tests run it): it would only delay every replica's first lease.
        var options = new SagaRuntimeOptions { Partitions = 8, PartitionLease = TimeSpan.FromSeconds(2), SnapshotInterval = TimeSpan.FromMilliseconds(500), WarmUp = false };
        options = configure?.Invoke(options) ?? options;
        var connection = new NatsConnection(new NatsOpts { Url = url, Name = "runner-tests" });
        await connection.ConnectAsync();
        var set = new ReplicaSet(url, dir, manifestDir, options, connection, FileLog.FromEnvironment() ?? NullLoggerFactory.Instance);
        var names = new List<string>();
        await foreach (var name in set.Js.ListStreamNamesAsync())
        {
            names.Add(name);
        }
        foreach (var name in reset ? names : [])
        {
            await set.Js.DeleteStreamAsync(name);
        }
        return set;
    }

    /// <summary>Starts (or starts again, on the same store unless wiped) the replica named <paramref name="name"/>.</summary>
    public async Task<Replica> StartAsync(string name, string? manifestDir = null)
    {
        var replica = _replicas.GetOrAdd(name, n => new Replica(n, Dir.File("replica-" + n)));
        var loaded = ManifestLoader.Load(manifestDir ?? ManifestDir, Options.JetStream.Streams);
        if (!loaded.Succeeded)
        {
            throw new InvalidOperationException("test manifests invalid: " + string.Join("; ", loaded.Errors));
        }
        await replica.StartAsync(_url, loaded.Set!, Options with { WorkerId = name, VersionDirectory = Path.Combine(replica.Directory, "versions") }, FileLog.Named(_loggers, name));
        return replica;
    }

    /// <summary>Partition → the replicas whose runtime holds it now.</summary>
    public Dictionary<int, List<string>> Owners()
    {
        var owners = new Dictionary<int, List<string>>();
        foreach (var replica in _replicas.Values.Where(r => r.Runtime is not null))
        {
            foreach (var partition in replica.Runtime!.OwnedPartitions)
            {
                if (!owners.TryGetValue(partition, out var list))
                {
                    owners[partition] = list = [];
                }
                list.Add(replica.Name);
            }
        }
        return owners;
    }

    /// <summary>Waits for <see cref="Balanced"/>; on timeout says who holds what and how each replica sees the bucket.</summary>
    public async Task WaitBalancedAsync(IReadOnlyCollection<string> running, TimeSpan timeout, string what)
    {
        try
        {
            await SagaHarness.WaitUntilAsync(() => Balanced(running), timeout, what);
        }
        catch (TimeoutException ex)
        {
            var owners = string.Join(" ", Owners().OrderBy(o => o.Key).Select(o => $"{o.Key}:{string.Join("+", o.Value)}"));
            var views = _replicas.Values.Where(r => r.Runtime?.Coordinator is not null).Select(r => r.Runtime!.Coordinator!.Describe() + Environment.NewLine + string.Join(Environment.NewLine, r.Runtime.DescribeRuns().Select(l => "  run " + l)));
            throw new TimeoutException($"{ex.Message}{Environment.NewLine}owners: {owners}{Environment.NewLine}{string.Join(Environment.NewLine, views)}", ex);
        }
    }

    /// <summary>True when every partition is held by exactly one running replica and counts differ by at most one.</summary>
    public bool Balanced(IReadOnlyCollection<string> running)
    {
        var owners = Owners();
        if (owners.Count != Options.Partitions || owners.Values.Any(o => o.Count != 1))
        {
            return false;
        }
        var counts = running.Select(r => owners.Values.Count(o => o[0] == r)).ToList();
        return counts.All(c => c > 0) && counts.Max() - counts.Min() <= 1 && owners.Values.All(o => running.Contains(o[0]));
    }

    public async Task PublishAsync(string subject, string id, object data, CancellationToken cancellationToken, string type = "added")
    {
        var evt = new JsonObject
        {
            ["specversion"] = "1.0",
            ["id"] = id,
            ["source"] = "tests",
            ["type"] = type,
            ["data"] = JsonSerializer.SerializeToNode(data),
        };
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                var ack = await Js.PublishAsync(subject, Encoding.UTF8.GetBytes(evt.ToJsonString()), opts: new NatsJSPubOpts { MsgId = id }, cancellationToken: cancellationToken);
                Runner.Messaging.PubAcks.EnsureStored(ack);
                return;
            }
            catch (NatsException) when (attempt < 100)
            {
                await Task.Delay(100, cancellationToken); // a server restarting or electing a leader; the msg id makes the retry land once
            }
        }
    }

    /// <summary>Every command on WORKFLOW_COMMANDS, in stream order.</summary>
    public async Task<List<CommandMessage>> CommandsAsync(CancellationToken cancellationToken)
    {
        var stream = await Js.GetStreamAsync(Options.JetStream.Streams.WorkflowCommands, cancellationToken: cancellationToken);
        var total = stream.Info.State.Messages;
        var result = new List<CommandMessage>();
        if (total == 0)
        {
            return result;
        }
        var consumer = await Js.CreateOrderedConsumerAsync(Options.JetStream.Streams.WorkflowCommands, cancellationToken: cancellationToken);
        await foreach (var msg in consumer.ConsumeAsync<byte[]>(cancellationToken: cancellationToken))
        {
            result.Add(JsonSerializer.Deserialize(msg.Data!, CoreJsonContext.Default.CommandMessage)!);
            if (result.Count >= total)
            {
                break;
            }
        }
        return result;
    }

    public async Task<ulong> MessagesAsync(string stream, CancellationToken cancellationToken) =>
        (ulong)(await Js.GetStreamAsync(stream, cancellationToken: cancellationToken)).Info.State.Messages;

    /// <summary>"p:seq" for each partition's last inbox message, for a failure's message.</summary>
    public async Task<string> InboxLastAsync(CancellationToken cancellationToken)
    {
        var stream = await Js.GetStreamAsync(Options.JetStream.Streams.Inbox, cancellationToken: cancellationToken);
        var parts = new List<string>();
        for (var p = 0; p < Options.Partitions; p++)
        {
            parts.Add($"{p}:{await Messaging.StreamSequences.LastOnSubjectAsync(stream, Core.Subjects.Subjects.Inbox(new Core.Ids.PartitionId(p)), cancellationToken)}");
        }
        return string.Join(" ", parts);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var replica in _replicas.Values)
        {
            await replica.DisposeAsync();
        }
        await Connection.DisposeAsync();
        Dir.Dispose();
    }
}

/// <summary>One saga replica: a runtime on its own connection and store.</summary>
internal sealed class Replica(string name, string directory) : IAsyncDisposable
{
    private NatsConnection? _connection;

    public string Name { get; } = name;

    public string Directory { get; } = directory;

    public LmdbStore? Store { get; private set; }

    public SagaRuntime? Runtime { get; private set; }

    public RecordingListener Listener { get; } = new();

    public string StorePath => Path.Combine(Directory, "lmdb");

    /// <summary>The instance as this replica's store holds it (null when absent).</summary>
    public SagaInstanceRecord? Instance(string tenant, string saga, string key)
    {
        var instance = new Runner.Core.Ids.InstanceId(new Runner.Core.Ids.TenantId(tenant), new Runner.Core.Ids.SagaName(saga), new Runner.Core.Ids.CorrelationKey(key));
        var partition = Runner.Core.Ids.Partitioner.PartitionOf(instance, Runtime!.Options.Partitions);
        var raw = Store!.Read(r => r.Get(Runner.Core.Keys.KeySpace.Saga, Runner.Core.Keys.StoreKeys.Instance(partition, instance)));
        return raw is null ? null : JsonSerializer.Deserialize(raw, CoreJsonContext.Default.SagaInstanceRecord);
    }

    internal async Task StartAsync(string url, ManifestSet manifests, SagaRuntimeOptions options, ILoggerFactory loggers)
    {
        _connection = new NatsConnection(new NatsOpts { Url = url, Name = "replica-" + Name });
        await _connection.ConnectAsync();
        Store = new LmdbStore(new LmdbOptions { Path = StorePath }, NullLogger<LmdbStore>.Instance);
        Runtime = new SagaRuntime(new NatsJSContext(_connection), Store, manifests, options, loggers, TimeProvider.System, Listener);
        await Runtime.StartAsync(CancellationToken.None);
    }

    /// <summary>A clean stop: loops end, what is still held is released.</summary>
    public async Task StopAsync()
    {
        if (Runtime is not null)
        {
            await Runtime.StopAsync();
            Runtime = null;
        }
        await CloseAsync();
    }

    /// <summary>Like a crash as far as the others can tell: the connection drops first, so nothing is released and the leases run out.</summary>
    public async Task CrashAsync()
    {
        if (_connection is not null)
        {
            await _connection.DisposeAsync();
        }
        if (Runtime is not null)
        {
            await Runtime.StopAsync();
            Runtime = null;
        }
        await CloseAsync();
    }

    /// <summary>Loses the replica's disk.</summary>
    public void Wipe()
    {
        if (Store is not null)
        {
            throw new InvalidOperationException("stop the replica first");
        }
        if (System.IO.Directory.Exists(Directory))
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
    }

    private async Task CloseAsync()
    {
        Store?.Dispose();
        Store = null;
        if (_connection is not null)
        {
            await _connection.DisposeAsync();
            _connection = null;
        }
    }

    public async ValueTask DisposeAsync() => await StopAsync();
}
