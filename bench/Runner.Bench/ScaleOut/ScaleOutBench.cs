using System.Diagnostics;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Messaging;
using Runner.Sagas;
using Runner.Sagas.Manifests;
using Runner.Testing;

namespace Runner.Bench.ScaleOut;

/// <summary>
/// <c>--scale-out</c>: saga replicas in this process, each with its own connection, LMDB store and
/// worker id, on one nats-server — (1) cooperative hand-over time per partition, (2) crash
/// failover, (3) restore of a 100,000-instance partition onto an empty volume and the replay after
/// it, (4) throughput with snapshots on and off. Each phase runs on fresh streams and buckets of
/// its own name prefix; every wait is bounded.
/// </summary>
internal sealed partial class ScaleOutBench : IAsyncDisposable
{
    /// <summary>Saga instances the replicas of (1) and (2) hold while partitions move.</summary>
    private const int StateInstances = 4_000;

    /// <summary>Events/s published while partitions move (about 25 per partition per second at 16).</summary>
    private const int TrickleRate = 400;

    private readonly BenchOptions _options;
    private readonly TextWriter _output;
    private readonly string _url;
    private readonly int? _natsPid;
    private readonly EventJournal _journal = new();
    private readonly TempDirectory _dir = new("runner-bench-scaleout");
    private readonly Dictionary<string, BenchReplica> _replicas = new(StringComparer.Ordinal);
    private readonly List<(string Figure, string Value, string Target, bool Met)> _verdicts = [];
    private readonly List<NatsConnection> _connections = [];
    private ManifestSet _manifests = null!;
    private INatsJSContext _js = null!;

    private ScaleOutBench(string url, BenchOptions options, int? natsPid, TextWriter output)
    {
        _url = url;
        _options = options;
        _natsPid = natsPid;
        _output = output;
    }

    /// <summary>Runs the phases asked for on a nats-server of its own; 0 when every target is met.</summary>
    public static async Task<int> RunAsync(BenchOptions options, TextWriter output, CancellationToken cancellationToken)
    {
        var jitAtStart = System.Runtime.JitInfo.GetCompiledMethodCount();
        var nats = new NatsServerFixture();
        await nats.InitializeAsync().WaitAsync(cancellationToken);
        try
        {
            var natsPid = CpuSnapshot.FindNatsServer(new Uri(nats.Url).Port);
            await using var bench = new ScaleOutBench(nats.Url, options, natsPid, output);
            await bench.InitAsync(cancellationToken);
            output.WriteLine(Text.Inv($"Runner.Bench --scale-out  phases={string.Join(",", options.ScaleOutPhases)} partitions={options.Partitions} durable={options.Durable} hand-over rounds={options.HandOverRounds} failover leases={string.Join("/", options.FailoverLeases)} s restore instances={options.RestoreInstances} events={options.Events} keys={options.Keys}"));
            output.WriteLine(Text.Inv($"  nats-server {nats.Url} (pid {natsPid?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "external"}), {Environment.ProcessorCount} cores, .NET {Environment.Version}, server GC {System.Runtime.GCSettings.IsServerGC}"));
            output.WriteLine(Text.Inv($"  machine load average at start: {File.ReadAllText("/proc/loadavg").Trim()} (other work on this machine skews every figure)"));
            output.WriteLine(MachineSpeed.Line("at start"));
            output.WriteLine(Text.Inv($"  process: fresh — --scale-out runs alone, nothing was measured before it in this process (JIT: {jitAtStart} methods at Main, {System.Runtime.JitInfo.GetCompiledMethodCount()} now); each figure says how warm the code it ran was"));
            if (options.ScaleOutPhases.Contains(1))
            {
                await bench.PhaseAsync("(1) hand-over", bench.HandOverAsync, cancellationToken);
            }
            if (options.ScaleOutPhases.Contains(2))
            {
                foreach (var lease in options.FailoverLeases)
                {
                    await bench.PhaseAsync(Text.Inv($"(2) failover, lease {lease} s"), ct => bench.FailoverAsync(TimeSpan.FromSeconds(lease), ct), cancellationToken);
                }
            }
            if (options.ScaleOutPhases.Contains(3))
            {
                await bench.PhaseAsync("(3) restore", bench.RestoreAsync, cancellationToken);
            }
            if (options.ScaleOutPhases.Contains(4))
            {
                await bench.PhaseAsync("(4) snapshot cost", bench.SnapshotCostAsync, cancellationToken);
            }
            var met = bench.PrintSummary();
            output.WriteLine(MachineSpeed.Line("at the end"));
            return met ? 0 : 1;
        }
        finally
        {
            await nats.DisposeAsync();
        }
    }

    /// <summary>Runs one phase; one that cannot reach the state it measures from is reported and the next one runs.</summary>
    private async Task PhaseAsync(string name, Func<CancellationToken, Task> phase, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            await phase(cancellationToken);
        }
        catch (ScaleOutStalledException ex)
        {
            _output.WriteLine(Text.Inv($"  {name} STALLED: {ex.Message}; the last ownership events of the phase (ms since it started: replica event partition):"));
            foreach (var line in _journal.Since(started).TakeLast(80).Chunk(8))
            {
                _output.WriteLine("    " + string.Join("  ", line.Select(e => Text.Inv($"{Ms(started, e.At):F0}:{e.Replica}:{e.Id}:{(e.Partition >= 0 ? e.Partition.ToString(System.Globalization.CultureInfo.InvariantCulture) : e.Key)}"))));
            }
            _verdicts.Add((name, "stalled", "-", false));
        }
    }

    private async Task InitAsync(CancellationToken cancellationToken)
    {
        var connection = await ConnectAsync("bench-scaleout", cancellationToken);
        _js = new NatsJSContext(connection);
        var manifestDir = _dir.File("manifests");
        Directory.CreateDirectory(manifestDir);
        await File.WriteAllTextAsync(Path.Combine(manifestDir, "bench.yaml"), RunnerBench.Manifest, cancellationToken);
        await File.WriteAllTextAsync(Path.Combine(manifestDir, "bench.js"), RunnerBench.Script, cancellationToken);
        await File.WriteAllTextAsync(Path.Combine(manifestDir, "effects.yaml"), RunnerBench.Effects, cancellationToken);
        var loaded = ManifestLoader.Load(manifestDir, new JetStreamSettings().Streams);
        if (!loaded.Succeeded)
        {
            throw new InvalidOperationException("bench manifest invalid: " + string.Join("; ", loaded.Errors));
        }
        _manifests = loaded.Set!;
    }

    private async Task<NatsConnection> ConnectAsync(string name, CancellationToken cancellationToken)
    {
        var connection = new NatsConnection(new NatsOpts
        {
            Url = _url,
            Name = name,
            SubPendingChannelCapacity = 1 << 18,
            SubPendingChannelFullMode = System.Threading.Channels.BoundedChannelFullMode.Wait,
        });
        _connections.Add(connection);
        await connection.ConnectAsync();
        cancellationToken.ThrowIfCancellationRequested();
        return connection;
    }

    /// <summary>The runtime options of a phase: its own consumer and bucket prefix.</summary>
    private SagaRuntimeOptions Options(string prefix) => new()
    {
        Partitions = _options.Partitions,
        JetStream = new JetStreamSettings { Batch = _options.Batch },
        ConsumerPrefix = prefix,
    };

    /// <summary>Deletes the Runner streams and the phase's buckets, so the phase starts from nothing.</summary>
    private async Task FreshAsync(SagaRuntimeOptions options, CancellationToken cancellationToken)
    {
        foreach (var config in StreamTopology.Configs(options.JetStream))
        {
            await Baseline.DeleteStreamAsync(_js, config.Name!, cancellationToken);
        }
        foreach (var stream in new[] { "KV_" + options.OwnershipBucket, "OBJ_" + options.SnapshotBucket, "OBJ_" + options.ManifestBucket })
        {
            await Baseline.DeleteStreamAsync(_js, stream, cancellationToken);
        }
    }

    private BenchReplica Replica(string phase, string name)
    {
        var replica = new BenchReplica(name, _dir.File(phase + "-" + name), _journal, _options.Durable);
        _replicas[phase + "-" + name] = replica;
        return replica;
    }

    private Func<string, CommitLog?> CommitsOf(params BenchReplica[] replicas) =>
        name => replicas.FirstOrDefault(r => string.Equals(r.Name, name, StringComparison.Ordinal))?.Commits;

    private static string Verdict(bool met) => met ? "met" : "NOT met";

    private void Judge(string figure, string value, string target, bool met)
    {
        _verdicts.Add((figure, value, target, met));
        _output.WriteLine(Text.Inv($"  → {figure}: {value}   target {target}: {Verdict(met)}"));
    }

    private static double Ms(long from, long to) => Stopwatch.GetElapsedTime(from, to).TotalMilliseconds;

    private bool PrintSummary()
    {
        _output.WriteLine();
        _output.WriteLine("summary (scale-out)");
        foreach (var (figure, value, target, met) in _verdicts)
        {
            _output.WriteLine(Text.Inv($"  {figure,-58} {value,-34} target {target}: {Verdict(met)}"));
        }
        _output.WriteLine(Text.Inv($"  warnings/errors logged by the replicas: {_journal.Warnings} (a crashed replica's failed writes included); machine load average now: {File.ReadAllText("/proc/loadavg").Trim()}"));
        return _verdicts.Count > 0 && _verdicts.All(v => v.Met);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var replica in _replicas.Values)
        {
            await replica.DisposeAsync();
        }
        foreach (var connection in _connections)
        {
            await connection.DisposeAsync();
        }
        _dir.Dispose();
    }
}

/// <summary>A phase could not reach the state it measures from (a replica did not take its partitions in time).</summary>
internal sealed class ScaleOutStalledException(string message) : Exception(message);
