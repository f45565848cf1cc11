using Microsoft.Extensions.Logging;
using NATS.Client.JetStream;
using Runner.Messaging;
using Runner.Sagas.Manifests;
using Runner.Sagas.Outbox;
using Runner.Sagas.Partitions;
using Runner.Sagas.Routing;
using Runner.Sagas.Scheduling;
using Runner.Storage;

namespace Runner.Sagas;

/// <summary>
/// The saga side of one replica: routers for every trigger stream, a worker and a timer scheduler
/// per owned partition, and the outbox relay. Every loop restarts after an unexpected error with back-off; none of them
/// can take the process down.
/// </summary>
internal sealed class SagaRuntime : IAsyncDisposable
{
    private readonly INatsJSContext _js;
    private readonly LmdbStore _store;
    private readonly SagaRuntimeOptions _options;
    private readonly IPartitionOwnership _ownership;
    private readonly ITransitionListener? _listener;
    private readonly ILoggerFactory _loggers;
    private readonly TimeProvider _time;
    private readonly List<Task> _loops = [];
    private CancellationTokenSource? _stop;
    private volatile ManifestSet _manifests;

    public SagaRuntime(
        INatsJSContext js,
        LmdbStore store,
        ManifestSet manifests,
        SagaRuntimeOptions options,
        ILoggerFactory loggers,
        TimeProvider time,
        IPartitionOwnership? ownership = null,
        ITransitionListener? listener = null)
    {
        _js = js;
        _store = store;
        _manifests = manifests;
        _options = options;
        _loggers = loggers;
        _time = time;
        _ownership = ownership ?? new AllPartitionsOwnership(options.Partitions);
        _listener = listener;
        Relay = new OutboxRelay(js, store, options, loggers.CreateLogger<OutboxRelay>(), time);
    }

    public ManifestSet Manifests => _manifests;

    public OutboxRelay Relay { get; }

    /// <summary>Swaps in a validated manifest set; batches already running finish on the old one.</summary>
    public void Swap(ManifestSet manifests) => _manifests = manifests;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await StreamTopology.EnsureAsync(_js, _options.JetStream, _loggers.CreateLogger(typeof(StreamTopology)), cancellationToken);
        _stop = new CancellationTokenSource();
        var token = _stop.Token;
        var routerLogger = _loggers.CreateLogger<Router>();
        foreach (var stream in _manifests.TriggerStreams)
        {
            var router = new Router(_js, _store, () => _manifests, _options, stream, routerLogger, _time);
            _loops.Add(Supervise($"router {stream}", router.RunAsync, token));
        }
        _loops.Add(Supervise("outbox relay", Relay.RunAsync, token));
        var sweeper = new DedupeSweeper(_store, _options, _loggers.CreateLogger<DedupeSweeper>(), _time);
        _loops.Add(Supervise("dedupe sweeper", sweeper.RunAsync, token));
        _loops.Add(Task.Run(() => RunPartitionsAsync(token), CancellationToken.None));
    }

    private async Task RunPartitionsAsync(CancellationToken cancellationToken)
    {
        var workerLogger = _loggers.CreateLogger<PartitionWorker>();
        var schedulerLogger = _loggers.CreateLogger<TimerScheduler>();
        var running = new List<Task>();
        try
        {
            await foreach (var (partition, owned) in _ownership.AcquireAsync(cancellationToken))
            {
                var scheduled = new ScheduleSignal();
                var worker = new PartitionWorker(_js, _store, () => _manifests, _options, partition, Relay, _listener, workerLogger, _time, scheduled);
                var scheduler = new TimerScheduler(_js, _store, _options, partition, scheduled, schedulerLogger, _time);
                running.RemoveAll(t => t.IsCompleted); // loops of partitions handed over before
                running.Add(Supervise($"partition {partition}", worker.RunAsync, owned));
                running.Add(Supervise($"scheduler {partition}", scheduler.RunAsync, owned));
            }
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
        await Task.WhenAll(running);
    }

    private Task Supervise(string name, Func<CancellationToken, Task> loop, CancellationToken cancellationToken) =>
        Supervisor.Run(name, loop, _loggers.CreateLogger<SagaRuntime>(), _time, cancellationToken);

    public async Task StopAsync()
    {
        if (_stop is null)
        {
            return;
        }
        await _stop.CancelAsync();
        await Task.WhenAll(_loops);
        _loops.Clear();
        _stop.Dispose();
        _stop = null;
    }

    public async ValueTask DisposeAsync() => await StopAsync();
}
