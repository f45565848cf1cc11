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
    /// How often a partition removes from the inbox the messages its committed checkpoint already
    /// covers, so the inbox holds only unapplied work (zero: after every batch).
    /// </summary>
    public TimeSpan InboxPurgeInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long an event id is remembered per instance. A producer that re-sends an event after
    /// this long gets it applied again; until then a second copy is dropped.
    /// </summary>
    public TimeSpan DedupeRetention { get; init; } = TimeSpan.FromDays(7);

    /// <summary>How often expired dedupe markers are swept.</summary>
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

    public string RouterConsumer(string stream) => $"{ConsumerPrefix}-router-{stream}";

    public string PartitionConsumer(int partition) => $"{ConsumerPrefix}-inbox-{partition}";
}
