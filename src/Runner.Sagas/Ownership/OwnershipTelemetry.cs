using System.Diagnostics.Metrics;

namespace Runner.Sagas.Ownership;

/// <summary>Ownership, hand-over, snapshot and restore metrics, on the <c>Runner.Sagas</c> meter.</summary>
internal static class OwnershipTelemetry
{
    public const string KindTag = "kind";

    public static readonly Counter<long> OwnershipChanges = SagasTelemetry.Meter.CreateCounter<long>(
        "runner.ownership.changes", unit: "{lease}", description: "Leases this replica acquired (a new owner and epoch), by kind (partition, router)");

    public static readonly Histogram<double> HandOverDuration = SagasTelemetry.Meter.CreateHistogram<double>(
        "runner.ownership.handover.duration", unit: "ms", description: "Cooperative hand-over of a lease: stop, finish the batch, flush the outbox, snapshot, release");

    public static readonly Histogram<double> RestoreDuration = SagasTelemetry.Meter.CreateHistogram<double>(
        "runner.partition.restore.duration", unit: "ms", description: "Loading a partition from its snapshot onto this replica's store");

    public static readonly Histogram<double> ReplayLength = SagasTelemetry.Meter.CreateHistogram<double>(
        "runner.partition.replay.length", unit: "{message}", description: "Inbox messages a new owner replays with the recorded manifest versions after a restore or takeover");

    public static readonly Counter<long> Snapshots = SagasTelemetry.Meter.CreateCounter<long>(
        "runner.partition.snapshots", unit: "{snapshot}", description: "Partition snapshots stored");

    public static readonly Histogram<double> SnapshotDuration = SagasTelemetry.Meter.CreateHistogram<double>(
        "runner.partition.snapshot.duration", unit: "ms", description: "Capturing and storing one partition snapshot");
}
