using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Messaging;
using Runner.Sagas;
using Runner.Sagas.Manifests;
using Runner.Storage;
using Runner.Testing;

namespace Runner.Bench;

/// <summary>A saga runtime (real LMDB, durable by default) on the bench's nats-server, and the phases run through it.</summary>
internal sealed partial class RunnerBench : IAsyncDisposable
{
    private readonly BenchOptions _options;
    private readonly TextWriter _output;
    private readonly int? _natsPid;
    private readonly List<NatsConnection> _connections = [];
    private readonly List<Task> _observers = [];
    private readonly CancellationTokenSource _stopObservers = new();
    private TempDirectory? _dir;
    private ILoggerFactory? _loggerFactory;
    private INatsJSContext? _runnerJs;
    private ManifestSet? _manifestSet;

    private RunnerBench(BenchOptions options, TextWriter output, int? natsPid, Tracker tracker, BenchLoggerProvider logs)
    {
        _options = options;
        _output = output;
        _natsPid = natsPid;
        Tracker = tracker;
        Logs = logs;
        RuntimeOptions = new SagaRuntimeOptions
        {
            Partitions = options.Partitions,
            JetStream = new JetStreamSettings { Batch = options.Batch },
            ConsumerPrefix = "bench",
        };
        if (options.HistoryLimit is { } historyLimit)
        {
            RuntimeOptions = RuntimeOptions with { HistoryLimit = historyLimit };
        }
        if (options.SnapshotIntervalSeconds is { } snapshotSeconds)
        {
            RuntimeOptions = RuntimeOptions with { SnapshotInterval = TimeSpan.FromSeconds(snapshotSeconds) };
        }
    }

    public Tracker Tracker { get; }
    public BenchLoggerProvider Logs { get; }
    public SagaRuntimeOptions RuntimeOptions { get; }
    public LmdbStore Store { get; private set; } = null!;
    public SagaRuntime Runtime { get; private set; } = null!;
    public INatsJSContext PublisherJs { get; private set; } = null!;
    public INatsJSContext ObserverJs { get; private set; } = null!;
    private NatsConnection Observer { get; set; } = null!;

    public static async Task<RunnerBench> StartAsync(string url, BenchOptions options, Tracker tracker, int? natsPid, TextWriter output, CancellationToken cancellationToken)
    {
        var logs = new BenchLoggerProvider();
        var bench = new RunnerBench(options, output, natsPid, tracker, logs);
        try
        {
            await bench.InitAsync(url, cancellationToken);
        }
        catch
        {
            await bench.DisposeAsync();
            throw;
        }
        return bench;
    }

    private async Task InitAsync(string url, CancellationToken cancellationToken)
    {
        // Three connections, as in production: producers, the runner, and an effect-worker-like observer.
        var publisher = await ConnectAsync(url, "bench-publisher", cancellationToken);
        var runner = await ConnectAsync(url, "bench-runner", cancellationToken);
        Observer = await ConnectAsync(url, "bench-observer", cancellationToken);
        PublisherJs = new NatsJSContext(publisher);
        ObserverJs = new NatsJSContext(Observer);

        foreach (var config in StreamTopology.Configs(RuntimeOptions.JetStream))
        {
            await Baseline.DeleteStreamAsync(PublisherJs, config.Name!, cancellationToken);
        }

        _dir = new TempDirectory("runner-bench");
        var manifestDir = _dir.File("manifests");
        Directory.CreateDirectory(manifestDir);
        await File.WriteAllTextAsync(Path.Combine(manifestDir, "bench.yaml"), Manifest, cancellationToken);
        await File.WriteAllTextAsync(Path.Combine(manifestDir, "bench.js"), Script, cancellationToken);
        await File.WriteAllTextAsync(Path.Combine(manifestDir, "effects.yaml"), Effects, cancellationToken);
        var loaded = ManifestLoader.Load(manifestDir, RuntimeOptions.JetStream.Streams);
        if (!loaded.Succeeded)
        {
            throw new InvalidOperationException("bench manifest invalid: " + string.Join("; ", loaded.Errors));
        }

        _loggerFactory = new LoggerFactory([Logs], new LoggerFilterOptions { MinLevel = LogLevel.Trace });
        var storeOptions = new LmdbOptions { Path = _dir.File("lmdb"), Durable = _options.Durable };
        if (_options.CompanyWindowMs is { } window)
        {
            storeOptions = storeOptions with { CompanyWindow = TimeSpan.FromMilliseconds(window) };
        }
        Store = new LmdbStore(storeOptions, _loggerFactory.CreateLogger<LmdbStore>());
        _runnerJs = new NatsJSContext(runner);
        _manifestSet = loaded.Set!;
        Runtime = new SagaRuntime(_runnerJs, Store, _manifestSet, RuntimeOptions, _loggerFactory, TimeProvider.System, listener: Tracker);

        // Count commands as an effect worker would see them (core subscription, no JetStream consumer).
        var commands = await Observer.SubscribeCoreAsync<byte[]>("workflow.cmd.>", cancellationToken: cancellationToken);
        _observers.Add(ObserveAsync(commands, "payload", command: true, _stopObservers.Token));
        await Observer.PingAsync(cancellationToken);

        await Runtime.StartAsync(cancellationToken);
    }

    private async Task<NatsConnection> ConnectAsync(string url, string name, CancellationToken cancellationToken)
    {
        var connection = new NatsConnection(new NatsOpts
        {
            Url = url,
            Name = name,
            SubPendingChannelCapacity = 1 << 18,
            SubPendingChannelFullMode = BoundedChannelFullMode.Wait,
        });
        _connections.Add(connection);
        await connection.ConnectAsync();
        cancellationToken.ThrowIfCancellationRequested();
        return connection;
    }

    private async Task ObserveAsync(INatsSub<byte[]> subscription, string container, bool command, CancellationToken cancellationToken)
    {
        await using (subscription)
        {
            try
            {
                await foreach (var msg in subscription.Msgs.ReadAllAsync(cancellationToken))
                {
                    if (msg.Data is { } data)
                    {
                        Tracker.Observe(data, container, command);
                    }
                }
            }
            catch (OperationCanceledException)
            {
                // stopping
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopObservers.CancelAsync();
        if (Runtime is not null)
        {
            await Runtime.StopAsync();
        }
        try
        {
            await Task.WhenAll(_observers);
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
        Store?.Dispose();
        foreach (var connection in _connections)
        {
            await connection.DisposeAsync();
        }
        _loggerFactory?.Dispose();
        _dir?.Dispose();
        _stopObservers.Dispose();
    }
}
