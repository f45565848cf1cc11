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
/// <para>
/// The loops that take in work (routers, partition workers, schedulers) run under an intake token
/// per generation: <see cref="DrainAsync"/> cancels it, waits for the batches in hand, lets the
/// schedulers fire what is due and the relay empty the outbox; <see cref="ResumeAsync"/> starts a
/// new generation. The relay and the dedupe sweeper run for the life of the runtime.
/// </para>
/// </summary>
internal sealed class SagaRuntime : IAsyncDisposable
{
    private static readonly TimeSpan s_outboxPoll = TimeSpan.FromMilliseconds(50);

    private readonly INatsJSContext _js;
    private readonly LmdbStore _store;
    private readonly SagaRuntimeOptions _options;
    private readonly IPartitionOwnership _ownership;
    private readonly ITransitionListener? _listener;
    private readonly ILoggerFactory _loggers;
    private readonly TimeProvider _time;
    private readonly List<Task> _loops = [];
    private readonly List<Task> _intakeLoops = [];
    private readonly HashSet<string> _routedStreams = new(StringComparer.Ordinal);
    private readonly List<int> _ownedPartitions = [];
    private readonly SemaphoreSlim _control = new(1, 1);
    private CancellationTokenSource? _stop;
    private CancellationTokenSource? _intake;
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

    public SagaRuntimeOptions Options => _options;

    /// <summary>Streams a router runs for in this generation.</summary>
    public IReadOnlyList<string> RoutedStreams
    {
        get
        {
            lock (_routedStreams)
            {
                return _routedStreams.Order(StringComparer.Ordinal).ToList();
            }
        }
    }

    /// <summary>Partitions this replica runs now.</summary>
    public IReadOnlyList<int> OwnedPartitions
    {
        get
        {
            lock (_ownedPartitions)
            {
                return [.. _ownedPartitions];
            }
        }
    }

    /// <summary>
    /// Swaps in a validated manifest set; batches already running finish on the old one, the next
    /// batch of every router and partition uses the new one. A trigger stream that no router read
    /// gets one now (unless draining: resume starts it). Returns the streams that got a router.
    /// </summary>
    public IReadOnlyList<string> Swap(ManifestSet manifests)
    {
        _manifests = manifests;
        if (_stop is null || _intake is null || _intake.IsCancellationRequested)
        {
            return [];
        }
        return StartRouters(_intake.Token, _stop.Token);
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await StreamTopology.EnsureAsync(_js, _options.JetStream, _loggers.CreateLogger(typeof(StreamTopology)), cancellationToken);
        _stop = new CancellationTokenSource();
        var token = _stop.Token;
        _loops.Add(Supervise("outbox relay", Relay.RunAsync, token));
        var sweeper = new DedupeSweeper(_store, _options, _loggers.CreateLogger<DedupeSweeper>(), _time);
        _loops.Add(Supervise("dedupe sweeper", sweeper.RunAsync, token));
        StartIntake(token);
    }

    private void StartIntake(CancellationToken stop)
    {
        _intake = new CancellationTokenSource();
        var intake = _intake.Token;
        lock (_routedStreams)
        {
            _routedStreams.Clear();
        }
        StartRouters(intake, stop);
        lock (_intakeLoops)
        {
            _intakeLoops.Add(Task.Run(() => RunPartitionsAsync(intake, stop), CancellationToken.None));
        }
    }

    private List<string> StartRouters(CancellationToken intake, CancellationToken stop)
    {
        var routerLogger = _loggers.CreateLogger<Router>();
        var started = new List<string>();
        lock (_routedStreams)
        {
            foreach (var stream in _manifests.TriggerStreams.Where(s => !_routedStreams.Contains(s)))
            {
                var router = new Router(_js, _store, () => _manifests, _options, stream, routerLogger, _time, intake);
                _routedStreams.Add(stream);
                started.Add(stream);
                lock (_intakeLoops)
                {
                    _intakeLoops.Add(Supervise($"router {stream}", router.RunAsync, stop));
                }
            }
        }
        return started;
    }

    private async Task RunPartitionsAsync(CancellationToken intake, CancellationToken stop)
    {
        var workerLogger = _loggers.CreateLogger<PartitionWorker>();
        var schedulerLogger = _loggers.CreateLogger<TimerScheduler>();
        var workers = new List<Task>();
        var schedulers = new List<Task>();
        try
        {
            // Each partition's loops run under its owned token (cancelled when ownership is lost or
            // the runtime stops), and stop reading when the intake is cancelled (drain).
            await foreach (var (partition, owned) in _ownership.AcquireAsync(stop))
            {
                if (intake.IsCancellationRequested)
                {
                    break;
                }
                var scheduled = new ScheduleSignal();
                var worker = new PartitionWorker(_js, _store, () => _manifests, _options, partition, Relay, _listener, workerLogger, _time, scheduled, intake);
                var scheduler = new TimerScheduler(_js, _store, _options, partition, scheduled, schedulerLogger, _time, intake);
                workers.RemoveAll(t => t.IsCompleted); // loops of partitions handed over before
                schedulers.RemoveAll(t => t.IsCompleted);
                lock (_ownedPartitions)
                {
                    _ownedPartitions.Add(partition.Value);
                }
                workers.Add(Supervise($"partition {partition}", worker.RunAsync, owned));
                schedulers.Add(Supervise($"scheduler {partition}", scheduler.RunAsync, owned));
            }
        }
        catch (OperationCanceledException)
        {
            // draining or stopping
        }
        // Workers first: a batch still committing may set timers that the schedulers then fire.
        await Task.WhenAll(workers);
        await Task.WhenAll(schedulers);
        lock (_ownedPartitions)
        {
            _ownedPartitions.Clear();
        }
    }

    private Task Supervise(string name, Func<CancellationToken, Task> loop, CancellationToken cancellationToken) =>
        Supervisor.Run(name, loop, _loggers.CreateLogger<SagaRuntime>(), _time, cancellationToken);

    /// <summary>
    /// Stops taking in work and returns when none is left in this replica's hands: routers and
    /// partition workers have finished their batches (committed and acked), schedulers have fired
    /// what was due, and the relay has published every committed command (the outbox is empty).
    /// Cancelling <paramref name="cancellationToken"/> abandons the wait, not the drain.
    /// </summary>
    public async Task DrainAsync(CancellationToken cancellationToken)
    {
        await _control.WaitAsync(cancellationToken);
        try
        {
            if (_intake is null)
            {
                return;
            }
            await _intake.CancelAsync();
            Task[] loops;
            lock (_intakeLoops)
            {
                loops = [.. _intakeLoops];
            }
            await Task.WhenAll(loops).WaitAsync(cancellationToken);
            while (Relay.Depth() > 0)
            {
                await Task.Delay(s_outboxPoll, _time, cancellationToken);
            }
        }
        finally
        {
            _control.Release();
        }
    }

    /// <summary>Undoes a drain: routers, partition workers and schedulers start again where they stopped.</summary>
    public async Task ResumeAsync(CancellationToken cancellationToken)
    {
        await _control.WaitAsync(cancellationToken);
        try
        {
            if (_stop is null || _intake is null || !_intake.IsCancellationRequested)
            {
                return;
            }
            Task[] loops;
            lock (_intakeLoops)
            {
                loops = [.. _intakeLoops];
                _intakeLoops.Clear();
            }
            // A resume right after a drain request that timed out waits for the old loops first:
            // two readers on one consumer would break ordering.
            await Task.WhenAll(loops).WaitAsync(cancellationToken);
            _intake.Dispose();
            StartIntake(_stop.Token);
        }
        finally
        {
            _control.Release();
        }
    }

    public async Task StopAsync()
    {
        if (_stop is null)
        {
            return;
        }
        await _stop.CancelAsync();
        Task[] loops;
        lock (_intakeLoops)
        {
            loops = [.. _intakeLoops];
            _intakeLoops.Clear();
        }
        await Task.WhenAll(loops);
        await Task.WhenAll(_loops);
        _loops.Clear();
        _stop.Dispose();
        _stop = null;
        _intake?.Dispose();
        _intake = null;
    }

    public async ValueTask DisposeAsync() => await StopAsync();
}
