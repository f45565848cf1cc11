using System.Diagnostics.Metrics;

namespace Runner.Storage;

/// <summary>Metrics of the LMDB store, on the <c>Runner.Storage</c> meter.</summary>
internal static class StorageTelemetry
{
    public const string MeterName = "Runner.Storage";

    public static readonly Meter Meter = new(MeterName);

    public static readonly Histogram<double> CommitDuration = Meter.CreateHistogram<double>(
        "runner.lmdb.commit.duration", unit: "ms", description: "Time of one durable LMDB commit (a group of write batches)");

    public static readonly Histogram<long> CommitBatches = Meter.CreateHistogram<long>(
        "runner.lmdb.commit.batches", unit: "{batch}", description: "Write batches folded into one LMDB commit (group commit)");

    public static readonly Counter<long> CommitFailures = Meter.CreateCounter<long>(
        "runner.lmdb.commit.failures", unit: "{commit}", description: "LMDB commits that failed");
}
