using Runner.Messaging;

namespace Runner.Sagas;

/// <summary>What the saga runtime needs to know; bound from settings by the host.</summary>
internal sealed record SagaRuntimeOptions
{
    public int Partitions { get; init; } = 16;
    public JetStreamSettings JetStream { get; init; } = new();

    /// <summary>Largest event payload accepted; bigger ones are quarantined.</summary>
    public int MaxEventBytes { get; init; } = 512 * 1024;

    /// <summary>Most payload bytes kept in a quarantine record.</summary>
    public int QuarantinePayloadBytes { get; init; } = 64 * 1024;

    /// <summary>Publishes the relay keeps in flight.</summary>
    public int RelayConcurrency { get; init; } = 1024;

    /// <summary>
    /// How often an owned partition whose checkpoint moved stores a snapshot in JetStream (zero:
    /// after every batch). The inbox is purged below the older of the two snapshots kept, so this
    /// bounds both the inbox a partition retains and what a new owner replays.
    /// </summary>
    public TimeSpan SnapshotInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Names this replica in leases and heartbeats; unique per replica.</summary>
    public string WorkerId { get; init; } = $"{Environment.MachineName}-{Environment.ProcessId}";

    /// <summary>
    /// How long a partition or router lease lasts without renewal. The owner renews every third of
    /// it and stops the lease's work a fifth of it before others may take it.
    /// </summary>
    public TimeSpan PartitionLease { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Longest a hand-over waits for the partition's outbox to be published before it stores the rest in the snapshot.</summary>
    public TimeSpan HandOverFlushTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>False: this replica takes no partitions, only routers (the bench measures the router alone).</summary>
    public bool TakePartitions { get; init; } = true;

    /// <summary>
    /// Whether the replica runs a built-in saga through the event path on a scratch store before it
    /// takes any lease (<see cref="Partitions.HotPathWarmUp"/>), so that its first events do not wait
    /// for the JIT.
    /// </summary>
    public bool WarmUp { get; init; } = true;

    /// <summary>Test hook: awaited before each attempt to take a lease (its key), inside the coordinator's round.</summary>
    public Func<string, CancellationToken, Task>? BeforeLeaseAcquire { get; init; }

    /// <summary>Where manifest versions fetched from JetStream are unpacked; null: next to the store.</summary>
    public string? VersionDirectory { get; init; }

    /// <summary>
    /// How long an event id is remembered per instance. A producer that re-sends an event after
    /// this long gets it applied again; until then a second copy is dropped.
    /// </summary>
    public TimeSpan DedupeRetention { get; init; } = TimeSpan.FromDays(7);

    /// <summary>Most history steps kept per instance (the newest); zero keeps none.</summary>
    public int HistoryLimit { get; init; } = 100;

    /// <summary>
    /// How long a done instance and its history are kept, counted in the inbox's own time from the
    /// message that finished it. After that an event for its key starts a new instance.
    /// </summary>
    public TimeSpan DoneRetention { get; init; } = TimeSpan.FromDays(7);

    /// <summary>How long a quarantine record is kept (wall clock, from when it was written).</summary>
    public TimeSpan QuarantineRetention { get; init; } = TimeSpan.FromDays(7);

    /// <summary>How often expired dedupe markers, done instances and quarantine records are swept.</summary>
    public TimeSpan DedupeSweepInterval { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Timer events a partition's scheduler keeps in flight at once.</summary>
    public int SchedulerConcurrency { get; init; } = 256;

    /// <summary>
    /// Longest a scheduler sleeps between scans. It wakes sooner for the next due time or when its
    /// partition commits a new schedule; the cap only bounds how late a missed wake-up can be.
    /// </summary>
    public TimeSpan SchedulerMaxSleep { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Timers already overdue when a scheduler starts (they came due while it was down) are spread
    /// evenly over this window, in due order, instead of firing as one storm (zero: no spreading).
    /// </summary>
    public TimeSpan SchedulerCatchUpWindow { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Name prefix of durable consumers (lets tests and tenants share a server).</summary>
    public string ConsumerPrefix { get; init; } = "runner";

    /// <summary>The stream's router consumer name without epoch: the prefix of its consumers (and the name a router without a lease reads through).</summary>
    public string RouterConsumer(string stream) => $"{ConsumerPrefix}-router-{stream}";

    /// <summary>The consumer the router lease's holder at <paramref name="epoch"/> reads through: a former holder's is deleted, so it can neither pull nor ack.</summary>
    public string RouterConsumer(string stream, long epoch) => $"{ConsumerPrefix}-router-{stream}-e{epoch}";

    /// <summary>The partition's consumer name without epoch: its checkpoint key, and the prefix of its consumers.</summary>
    public string PartitionConsumer(int partition) => $"{ConsumerPrefix}-inbox-{partition}";

    /// <summary>The consumer an owner at <paramref name="epoch"/> reads through: a former owner's is deleted, so it can neither pull nor ack.</summary>
    public string PartitionConsumer(int partition, long epoch) => $"{ConsumerPrefix}-inbox-{partition}-e{epoch}";

    private string BucketPrefix => ConsumerPrefix.ToUpperInvariant().Replace('.', '_');

    /// <summary>The KV bucket of partition and router leases and replica heartbeats.</summary>
    public string OwnershipBucket => $"{BucketPrefix}_PARTITIONS";

    /// <summary>The object store of partition snapshots.</summary>
    public string SnapshotBucket => $"{BucketPrefix}_SNAPSHOTS";

    /// <summary>The object store of manifest versions, by content hash.</summary>
    public string ManifestBucket => $"{BucketPrefix}_MANIFESTS";
}
