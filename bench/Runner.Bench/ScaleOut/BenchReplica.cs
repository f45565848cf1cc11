using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Sagas;
using Runner.Sagas.Manifests;
using Runner.Storage;

namespace Runner.Bench.ScaleOut;

/// <summary>
/// One saga replica in the bench process: its own NATS connection, LMDB store, worker id and
/// loggers (feeding the <see cref="EventJournal"/> under its name). Like the tests' <c>Replica</c>,
/// which cannot be given a logger factory, so its hand-overs could not be timed.
/// </summary>
internal sealed class BenchReplica(string name, string directory, EventJournal journal, bool durable) : IAsyncDisposable
{
    private readonly ILoggerFactory _loggers = new LoggerFactory([journal.ProviderFor(name)], new LoggerFilterOptions { MinLevel = LogLevel.Debug });
    private NatsConnection? _connection;

    public string Name { get; } = name;

    public LmdbStore? Store { get; private set; }

    public SagaRuntime? Runtime { get; private set; }

    public CommitLog Commits { get; } = new();

    /// <summary>Opens the replica's store (the bench may write to it before the runtime starts).</summary>
    public LmdbStore OpenStore()
    {
        Store ??= new LmdbStore(new LmdbOptions { Path = Path.Combine(directory, "lmdb"), Durable = durable }, _loggers.CreateLogger<LmdbStore>());
        return Store;
    }

    public async Task StartAsync(string url, ManifestSet manifests, SagaRuntimeOptions options, CancellationToken cancellationToken)
    {
        if (Runtime is not null)
        {
            throw new InvalidOperationException($"replica {Name} runs already");
        }
        journal.Loud(Name);
        var store = OpenStore();
        _connection ??= await ConnectAsync(url, cancellationToken);
        Runtime = new SagaRuntime(new NatsJSContext(_connection), store, manifests,
            options with { WorkerId = Name, VersionDirectory = Path.Combine(directory, "versions") }, _loggers, TimeProvider.System, Commits);
        await Runtime.StartAsync(cancellationToken);
    }

    /// <summary>A clean stop of the runtime (what is held is released); the store and connection stay.</summary>
    public async Task StopRuntimeAsync()
    {
        if (Runtime is not null)
        {
            await Runtime.StopAsync();
            Runtime = null;
        }
    }

    public async Task StopAsync()
    {
        await StopRuntimeAsync();
        await CloseAsync();
    }

    /// <summary>As the others see a crash: the connection drops first, so nothing is released and the leases run out.</summary>
    public async Task CrashAsync()
    {
        journal.Quiet(Name);
        if (_connection is not null)
        {
            await _connection.DisposeAsync();
            _connection = null;
        }
        await StopAsync();
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

    private async Task<NatsConnection> ConnectAsync(string url, CancellationToken cancellationToken)
    {
        var connection = new NatsConnection(new NatsOpts { Url = url, Name = "bench-replica-" + Name });
        await connection.ConnectAsync();
        cancellationToken.ThrowIfCancellationRequested();
        return connection;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _loggers.Dispose();
    }
}
