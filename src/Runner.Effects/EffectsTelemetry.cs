using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Runner.Effects;

/// <summary>Span, metric and tag names of the effect side, on the <c>Runner.Effects</c> source and meter.</summary>
internal static class EffectsTelemetry
{
    public const string MeterName = "Runner.Effects";
    public const string ActivitySourceName = "Runner.Effects";
    public const string EffectTag = "effect";
    public const string OutcomeTag = "outcome";

    public static readonly ActivitySource Source = new(ActivitySourceName);

    public static readonly Meter Meter = new(MeterName);

    public static readonly Histogram<double> Duration = Meter.CreateHistogram<double>(
        "runner.effect.duration", unit: "ms", description: "Time an effect took from claim to result, by effect and outcome (succeeded, failed)");

    /// <summary>For slice launches: slices running now (the slice provider adds and removes).</summary>
    public static readonly UpDownCounter<long> SlicesRunning = Meter.CreateUpDownCounter<long>(
        "runner.slice.running", unit: "{slice}", description: "Slice processes running now");

    /// <summary>For slice launches: slice processes that ended, by outcome (exit code class, timeout, killed).</summary>
    public static readonly Counter<long> SliceExits = Meter.CreateCounter<long>(
        "runner.slice.exits", unit: "{slice}", description: "Slice processes that ended, by outcome");
}
