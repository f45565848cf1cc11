using System.Diagnostics.Metrics;

namespace Runner.Sagas;

/// <summary>Metric names and instruments of the saga side, on the <c>Runner.Sagas</c> meter.</summary>
internal static class SagasTelemetry
{
    public const string MeterName = "Runner.Sagas";

    /// <summary>Histogram, milliseconds: when a timer was published minus when it was due.</summary>
    public const string SchedulerLag = "runner.scheduler.lag";

    /// <summary>Counter: timer events published and acknowledged by the stream.</summary>
    public const string TimersFired = "runner.scheduler.fired";

    public const string PartitionTag = "partition";

    public static readonly Meter Meter = new(MeterName);

    public static readonly Histogram<double> SchedulerLagMs = Meter.CreateHistogram<double>(
        SchedulerLag, unit: "ms", description: "Time from a timer's due time to its publish");

    public static readonly Counter<long> TimersFiredTotal = Meter.CreateCounter<long>(
        TimersFired, unit: "{timer}", description: "Timer events published with a PubAck");
}
