using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Runner.Sagas;

/// <summary>Span, metric and tag names of the saga side, on the <c>Runner.Sagas</c> source and meter.</summary>
internal static class SagasTelemetry
{
    public const string MeterName = "Runner.Sagas";
    public const string ActivitySourceName = "Runner.Sagas";

    /// <summary>Histogram, milliseconds: when a timer was published minus when it was due.</summary>
    public const string SchedulerLag = "runner.scheduler.lag";

    /// <summary>Counter: timer events published and acknowledged by the stream.</summary>
    public const string TimersFired = "runner.scheduler.fired";

    public const string PartitionTag = "partition";
    public const string SagaTag = "saga";
    public const string ReasonTag = "reason";
    public const string StageTag = "stage";
    public const string StreamTag = "stream";

    public static readonly ActivitySource Source = new(ActivitySourceName);

    public static readonly Meter Meter = new(MeterName);

    public static readonly Histogram<double> SchedulerLagMs = Meter.CreateHistogram<double>(
        SchedulerLag, unit: "ms", description: "Time from a timer's due time to its publish");

    public static readonly Counter<long> TimersFiredTotal = Meter.CreateCounter<long>(
        TimersFired, unit: "{timer}", description: "Timer events published with a PubAck");

    public static readonly Counter<long> Transitions = Meter.CreateCounter<long>(
        "runner.saga.transitions", unit: "{transition}", description: "Transitions committed, by saga");

    public static readonly Histogram<double> ScriptDuration = Meter.CreateHistogram<double>(
        "runner.saga.script.duration", unit: "ms", description: "Time one saga script call took, by saga");

    public static readonly Counter<long> Quarantined = Meter.CreateCounter<long>(
        "runner.quarantined", unit: "{message}", description: "Quarantine records written, by stage and reason");

    public static readonly Counter<long> Parked = Meter.CreateCounter<long>(
        "runner.saga.parked", unit: "{instance}", description: "Instances parked by a failed transition, by saga and reason");

    public static readonly Counter<long> Routed = Meter.CreateCounter<long>(
        "runner.router.routed", unit: "{message}", description: "Trigger messages settled by a router, by stream");

    public static readonly Histogram<double> DispatchLatency = Meter.CreateHistogram<double>(
        "runner.outbox.dispatch.latency", unit: "ms", description: "Time from a command's transition commit (or the relay's rescan) to its PubAck");

    public static readonly Counter<long> Dispatched = Meter.CreateCounter<long>(
        "runner.outbox.dispatched", unit: "{command}", description: "Commands the relay published with a PubAck and removed from the outbox");
}
