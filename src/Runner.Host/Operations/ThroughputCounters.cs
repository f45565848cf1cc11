using System.Diagnostics.Metrics;
using System.Text.Json.Serialization;
using Runner.Effects;
using Runner.Sagas;

namespace Runner.Host.Operations;

/// <summary>This process's counts since it started, as <c>GET /admin/throughput</c> answers them.</summary>
internal sealed record ThroughputSample(
    [property: JsonPropertyName("worker")] string Worker,
    [property: JsonPropertyName("at_ms")] long AtMs,
    [property: JsonPropertyName("transitions")] long Transitions,
    [property: JsonPropertyName("routed")] long Routed,
    [property: JsonPropertyName("commands_dispatched")] long CommandsDispatched,
    [property: JsonPropertyName("effects_completed")] long EffectsCompleted,
    [property: JsonPropertyName("quarantined")] long Quarantined,
    [property: JsonPropertyName("parked")] long Parked);

/// <summary>
/// Running totals of the saga and effect meters this process records into (transitions, routed
/// triggers, commands the relay published, effects finished, quarantine records, parkings), for the
/// admin page's throughput plot: it samples them and plots the differences. The same measurements
/// feed <c>/metrics</c>; these are only this replica's.
/// </summary>
internal sealed class ThroughputCounters : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly Dictionary<Instrument, int> _slots;
    private readonly long[] _totals;

    public ThroughputCounters()
    {
        // Each instrument counts into its slot; the effect duration histogram counts one per effect finished.
        Instrument[] instruments =
        [
            SagasTelemetry.Transitions, SagasTelemetry.Routed, SagasTelemetry.Dispatched,
            EffectsTelemetry.Duration, SagasTelemetry.Quarantined, SagasTelemetry.Parked,
        ];
        _slots = instruments.Select((instrument, slot) => (instrument, slot)).ToDictionary(p => p.instrument, p => p.slot);
        _totals = new long[instruments.Length];
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (_slots.ContainsKey(instrument))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, _, _) => Interlocked.Add(ref _totals[_slots[instrument]], value));
        _listener.SetMeasurementEventCallback<double>((instrument, _, _, _) => Interlocked.Increment(ref _totals[_slots[instrument]]));
        _listener.Start();
    }

    public ThroughputSample Read(string worker, TimeProvider time) => new(
        worker,
        time.GetUtcNow().ToUnixTimeMilliseconds(),
        Interlocked.Read(ref _totals[0]),
        Interlocked.Read(ref _totals[1]),
        Interlocked.Read(ref _totals[2]),
        Interlocked.Read(ref _totals[3]),
        Interlocked.Read(ref _totals[4]),
        Interlocked.Read(ref _totals[5]));

    public void Dispose() => _listener.Dispose();
}
