using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using NATS.Client.JetStream;
using Runner.Core.Ids;
using Runner.Messaging;
using Runner.Sagas.Manifests;
using Runner.Sagas.Outbox;
using Runner.Sagas.Ownership;
using Runner.Sagas.Partitions;
using Runner.Sagas.Snapshots;
using Runner.Storage;

namespace Runner.Sagas;

/// <summary>
/// The saga side of one replica. Partitions and trigger-stream routers are held by leases in the
/// ownership bucket (<see cref="PartitionCoordinator"/>): for each partition it holds, a worker, a
/// timer scheduler and a snapshotter run under the lease; for each stream it holds, a router. The
/// outbox relay and the dedupe sweeper run for the life of the runtime, on the partitions it owns.
/// Every loop restarts after an unexpected error with back-off; none can take the process down.
/// <para>
/// A drain (<see cref="DrainAsync"/>) hands every partition and router over — stop taking work,
/// finish the batch in hand, publish the outbox, store a snapshot, release — so the other replicas
/// take them at once; <see cref="ResumeAsync"/> takes a share again.
/// </para>
/// </summary>
internal sealed partial class SagaRuntime : IAsyncDisposable, IOwnershipHost
{
    private readonly INatsJSContext _js;
    private readonly LmdbStore _store;
    private readonly SagaRuntimeOptions _options;
    private readonly ITransitionListener? _listener;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly List<Task> _loops = [];
    private readonly ConcurrentDictionary<int, PartitionRun> _runs = new();
    private readonly ConcurrentDictionary<string, RouterRun> _routers = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _control = new(1, 1);
    private readonly SnapshotCaptures _captures = new();
    private CancellationTokenSource? _stop;
    private PartitionCoordinator? _coordinator;
    private SnapshotStore? _snapshots;

    /// <summary>Whether owners purge the inbox below their snapshots (not on a replicated inbox whose server would replay the purge as a compaction).</summary>
    private bool _purgeInbox = true;
    private volatile ManifestSet _manifests;
    private volatile bool _draining;

    public SagaRuntime(
        INatsJSContext js,
        LmdbStore store,
        ManifestSet manifests,
        SagaRuntimeOptions options,
        ILoggerFactory loggers,
        TimeProvider time,
        ITransitionListener? listener = null)
    {
        _js = js;
        _store = store;
        _manifests = manifests;
        _options = options;
        _loggers = loggers;
        _logger = loggers.CreateLogger<SagaRuntime>();
        _time = time;
        _listener = listener;
        Relay = new OutboxRelay(js, store, options, loggers.CreateLogger<OutboxRelay>(), time, Owns);
        Versions = new ManifestVersions(null, VersionDirectory, options.JetStream.Streams);
    }

    public ManifestSet Manifests => _manifests;

    public OutboxRelay Relay { get; }

    public SagaRuntimeOptions Options => _options;

    /// <summary>Manifest versions this replica can run or replay with.</summary>
    public ManifestVersions Versions { get; private set; }

    /// <summary>The ownership coordinator (null before start).</summary>
    public PartitionCoordinator? Coordinator => _coordinator;

    private string VersionDirectory => _options.VersionDirectory ?? Path.Combine(DataDirectory, "manifest-versions");

    /// <summary>The directory the store lives in: the replica's data directory.</summary>
    private string DataDirectory => Path.GetDirectoryName(Path.GetFullPath(_store.Options.Path)) ?? ".";

    /// <summary>Streams this replica routes now.</summary>
    public IReadOnlyList<string> RoutedStreams => [.. _routers.Where(r => !r.Value.Lease.IsLost).Select(r => r.Key).Order(StringComparer.Ordinal)];

    /// <summary>The router consumers this replica reads now, by trigger stream: each its lease epoch's own.</summary>
    public IReadOnlyList<(string Stream, string Consumer)> RouterConsumers =>
        [.. _routers.Where(r => !r.Value.Lease.IsLost).OrderBy(r => r.Key, StringComparer.Ordinal).Select(r => (r.Key, _options.RouterConsumer(r.Key, r.Value.Lease.Epoch)))];

    /// <summary>
    /// Whether this replica has settled after its start: its first ownership round is done, and every
    /// partition it held then has been restored and started (or its first attempt failed, which the log
    /// says; it is retried). Once true it stays true: partitions that move later do not make it false.
    /// </summary>
    public bool Settled
    {
        get
        {
            if (!_settled && _coordinator is { FirstRound.IsCompleted: true })
            {
                _settled = _runs.Values.All(r => r.Prepared.Task.IsCompleted || r.FirstAttempt.Task.IsCompleted);
            }
            return _settled;
        }
    }

    private volatile bool _settled;

    /// <summary>Partitions this replica runs now.</summary>
    public IReadOnlyList<int> OwnedPartitions => [.. _runs.Where(r => !r.Value.Lease.IsLost).Select(r => r.Key).Order()];

    /// <summary>Partitions held whose replay horizon is fixed and whose worker runs (restored, prepared).</summary>
    internal IReadOnlyList<int> PreparedPartitions => [.. _runs.Where(r => r.Value.Worker is not null && !r.Value.Lease.IsLost).Select(r => r.Key).Order()];

    /// <summary>The leases behind <see cref="OwnedPartitions"/>, for /info and metrics.</summary>
    public IReadOnlyList<OwnedLease> PartitionLeases => [.. _runs.Values.Select(r => r.Lease).Where(l => !l.IsLost).OrderBy(l => l.Partition!.Value.Value)];

    /// <summary>
    /// One line per partition run this replica has: epoch, whether the lease is lost, the worker's
    /// checkpoint and how its loops stand. For reading a stalled replica in a test's failure, not an API.
    /// </summary>
    internal IReadOnlyList<string> DescribeRuns() =>
        [.. _runs.OrderBy(r => r.Key).Select(r => $"p{r.Key} e{r.Value.Lease.Epoch}{(r.Value.Lease.IsLost ? " lost" : "")} "
            + $"checkpoint {(r.Value.Worker is { } w ? w.Checkpoint.ToString(System.Globalization.CultureInfo.InvariantCulture) : "-")} "
            + $"run {r.Value.Task.Status} intake {r.Value.Intaking.Status} prepared {r.Value.Prepared.Task.Status}")];

    IReadOnlyList<string> IOwnershipHost.TriggerStreams => _manifests.TriggerStreams;

    /// <summary>Held, and its store restored: its outbox may be published.</summary>
    private bool Owns(PartitionId partition) => _runs.TryGetValue(partition.Value, out var run) && run.Worker is not null && !run.Lease.IsLost;

    /// <summary>
    /// Swaps in a validated manifest set: batches already running finish on their version; each
    /// partition records the new one before anything runs with it (<see cref="PartitionVersions"/>).
    /// The set is stored for replay first. Returns the trigger streams that are new (their routers
    /// start as soon as a replica takes their lease).
    /// </summary>
    public async Task<IReadOnlyList<string>> SwapAsync(ManifestSet manifests, CancellationToken cancellationToken)
    {
        var before = _manifests.TriggerStreams;
        try
        {
            await Versions.AddAsync(manifests, cancellationToken);
        }
        catch (Exception ex) when (ex is NATS.Client.Core.NatsException or NATS.Client.ObjectStore.NatsObjException or TimeoutException)
        {
            // Partitions keep the version they run until this one is stored (they retry storing it).
            OwnershipLog.VersionMissing(_logger, -1, manifests.Hash[..12], 0, $"not stored yet: {ex.Message}");
        }
        _manifests = manifests;
        _coordinator?.Wake();
        return [.. manifests.TriggerStreams.Except(before, StringComparer.Ordinal)];
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var streams = _options.JetStream;
        var ensured = await StartupRetry.RunAsync("streams", ct => StreamTopology.EnsureAsync(_js, streams, _loggers.CreateLogger(typeof(StreamTopology)), ct), _logger, _time, cancellationToken);
        // The inbox as it is (RUNNER_STREAM_REPLICAS does not change a stream that exists).
        var replicas = ensured[streams.Streams.Inbox].Info.Config.NumReplicas;
        var server = _js.Connection.ServerInfo?.Version;
        _purgeInbox = replicas <= 1 || !NatsServerVersions.ReplaysPurgeAsCompaction(server);
        if (!_purgeInbox)
        {
            SagasLog.InboxNotPurged(_logger, server ?? "of unknown version", replicas, NatsServerVersions.PurgeReplayFixedIn);
        }
        var bucket = await StartupRetry.RunAsync(_options.OwnershipBucket,
            ct => OwnershipBucket.OpenAsync(_js, _options.OwnershipBucket, streams.Replicas, _options.Partitions, _time, ct), _logger, _time, cancellationToken);
        _snapshots = await StartupRetry.RunAsync(_options.SnapshotBucket,
            ct => SnapshotStore.OpenAsync(_js, _options.SnapshotBucket, streams.Replicas, ct), _logger, _time, cancellationToken);
        var versionStore = await StartupRetry.RunAsync(_options.ManifestBucket,
            ct => ObjectBuckets.OpenAsync(_js, _options.ManifestBucket, streams.Replicas, "Runner manifest versions, by content hash", ct), _logger, _time, cancellationToken);
        Versions = new ManifestVersions(versionStore, VersionDirectory, streams.Streams);
        await StartupRetry.RunAsync("manifest versions", ct => Versions.AddAsync(_manifests, ct), _logger, _time, cancellationToken);
        if (_options.WarmUp && _options.TakePartitions)
        {
            await WarmUpAsync(cancellationToken);
        }

        _stop = new CancellationTokenSource();
        var token = _stop.Token;
        _loops.Add(Supervise("outbox relay", Relay.RunAsync, token));
        var sweeper = new RetentionSweeper(_store, _options, _loggers.CreateLogger<RetentionSweeper>(), _time,
            () => [.. _runs.Values.Where(r => r.Worker is not null && !r.Lease.IsLost).Select(r => (r.Lease.Partition!.Value, r.Worker!.LastInboxMs))]);
        _loops.Add(Supervise("retention sweeper", sweeper.RunAsync, token));
        var queries = new Instances.InstanceQueryService(_js.Connection, _store, _options,
            () => [.. _runs.Values.Where(r => r.Worker is not null && !r.Lease.IsLost).Select(r => (r.Lease.Partition!.Value, r.Lease.Epoch, r.Worker!.Checkpoint))],
            _loggers.CreateLogger<Instances.InstanceQueryService>());
        _loops.Add(Supervise("instance queries", queries.RunAsync, token));
        _coordinator = new PartitionCoordinator(bucket, this, _options.Partitions, _options.PartitionLease, _options.WorkerId,
            _loggers.CreateLogger<PartitionCoordinator>(), _time, _options.TakePartitions)
        {
            BeforeAcquire = _options.BeforeLeaseAcquire,
        };
        _loops.Add(Supervise("ownership", _coordinator.RunAsync, token));
    }

    /// <summary>
    /// Before the first lease: the event path compiled on a scratch store next to the replica's own
    /// (<see cref="HotPathWarmUp"/>). A warm-up that fails, or takes longer than <see cref="WarmUpLimit"/>
    /// (a starved CPU), is logged; the replica starts all the same.
    /// </summary>
    private async Task WarmUpAsync(CancellationToken cancellationToken)
    {
        var scratch = Path.Combine(DataDirectory, HotPathWarmUp.DirectoryName);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(WarmUpLimit);
        try
        {
            var result = await HotPathWarmUp.RunAsync(_js, _options, scratch, limit.Token);
            SagasLog.WarmedUp(_logger, result.Events, result.Instances, result.Elapsed.TotalMilliseconds);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            SagasLog.WarmUpFailed(_logger, ex);
        }
    }

    /// <summary>Longest a warm-up may hold up the first lease.</summary>
    private static readonly TimeSpan WarmUpLimit = TimeSpan.FromSeconds(20);

    private Task Supervise(string name, Func<CancellationToken, Task> loop, CancellationToken cancellationToken) =>
        Supervisor.Run(name, loop, _logger, _time, cancellationToken);

    /// <summary>
    /// The first step of a drain, taken at once (before the drain is reported as begun): no partition
    /// or router of this replica takes another message, and it takes no new lease. <see cref="DrainAsync"/>
    /// then finishes the batches in hand and hands everything over.
    /// </summary>
    public void StopIntake()
    {
        if (_coordinator is null)
        {
            return;
        }
        _draining = true;
        _coordinator.BeginLeaving();
        foreach (var run in _runs.Values)
        {
            CancelQuietly(run.Intake);
        }
        foreach (var run in _routers.Values)
        {
            CancelQuietly(run.Intake);
        }

        static void CancelQuietly(CancellationTokenSource intake)
        {
            try
            {
                intake.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // that run has ended
            }
        }
    }

    /// <summary>
    /// Hands over every partition and router this replica holds (each: stop taking work, finish the
    /// batch, publish its outbox, store a snapshot, release) and returns when none is left in its
    /// hands. Cancelling <paramref name="cancellationToken"/> abandons the wait, not the drain.
    /// </summary>
    public async Task DrainAsync(CancellationToken cancellationToken)
    {
        await _control.WaitAsync(cancellationToken);
        try
        {
            if (_coordinator is null || _stop is null)
            {
                return;
            }
            _draining = true;
            await _coordinator.LeaveAsync(_stop.Token).WaitAsync(cancellationToken);
            while (Relay.Depth() > 0)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(50), _time, cancellationToken);
            }
        }
        finally
        {
            _control.Release();
        }
    }

    /// <summary>Undoes a drain: this replica takes its share of partitions and routers again.</summary>
    public async Task ResumeAsync(CancellationToken cancellationToken)
    {
        await _control.WaitAsync(cancellationToken);
        try
        {
            if (!_draining || _coordinator is null)
            {
                return;
            }
            // A resume that came before the drain's hand-over started (StopIntake has stopped the runs, which
            // now wait to be handed over): finish handing them over first, then take a share again.
            if (_runs.Values.Any(r => r.Intake.IsCancellationRequested) || _routers.Values.Any(r => r.Intake.IsCancellationRequested))
            {
                await _coordinator.LeaveAsync(_stop!.Token).WaitAsync(cancellationToken);
            }
            _draining = false;
            _coordinator.Rejoin();
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
        await Task.WhenAll(_loops);
        _loops.Clear();
        await Task.WhenAll(_runs.Values.Select(r => r.Task).Concat(_routers.Values.Select(r => r.Task)));
        if (_coordinator is not null)
        {
            // Loops have stopped: what is still held is released, so the next owner need not wait out the lease.
            using var release = new CancellationTokenSource(TimeSpan.FromSeconds(3));
            await _coordinator.ReleaseAllAsync(release.Token);
        }
        _runs.Clear();
        _routers.Clear();
        _stop.Dispose();
        _stop = null;
    }

    public async ValueTask DisposeAsync() => await StopAsync();
}
