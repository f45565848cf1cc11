using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Prometheus;

namespace Runner.Host.Http;

/// <summary>
/// Publishes Runner's own meters (<c>Runner.*</c>) to Prometheus under their instrument names:
/// <c>runner.saga.transitions</c> becomes the counter <c>runner_saga_transitions_total</c>,
/// <c>runner.effect.duration</c> (ms) the histogram <c>runner_effect_duration_seconds</c>. The
/// generic meter adapter of prometheus-net (which keeps the other meters, the .NET runtime's among
/// them) would prefix the meter name and turn counters into gauges, so it skips these.
/// </summary>
internal sealed class MeterBridge : IDisposable
{
    public const string Prefix = "Runner.";

    private static readonly double[] s_secondsBuckets = Histogram.ExponentialBuckets(0.0001, 2, 22); // 100 µs to ~3.5 min
    private static readonly double[] s_countBuckets = Histogram.ExponentialBuckets(1, 2, 12);        // 1 to 2048

    private readonly MeterListener _listener = new();
    private readonly IMetricFactory _factory;
    private readonly ConcurrentDictionary<Instrument, Collector> _collectors = new();

    public MeterBridge(CollectorRegistry registry)
    {
        _factory = Metrics.WithCustomRegistry(registry);
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name.StartsWith(Prefix, StringComparison.Ordinal))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.Start();
    }

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        // Called for every measurement (each transition, commit, dispatch): label names are only
        // needed the first time an instrument is seen.
        var labels = new string[tags.Length];
        for (var i = 0; i < tags.Length; i++)
        {
            labels[i] = tags[i].Value?.ToString() ?? string.Empty;
        }
        if (!_collectors.TryGetValue(instrument, out var collector))
        {
            var names = new string[tags.Length];
            for (var i = 0; i < tags.Length; i++)
            {
                names[i] = tags[i].Key;
            }
            collector = _collectors.GetOrAdd(instrument, Create(instrument, names));
        }
        switch (collector)
        {
            case Counter counter:
                counter.WithLabels(labels).Inc(value);
                break;
            case Gauge gauge:
                gauge.WithLabels(labels).Inc(value);
                break;
            case Histogram histogram:
                histogram.WithLabels(labels).Observe(instrument.Unit == "ms" ? value / 1000 : value);
                break;
        }
    }

    private Collector Create(Instrument instrument, string[] labelNames)
    {
        var name = instrument.Name.Replace('.', '_');
        var help = instrument.Description ?? instrument.Name;
        return instrument switch
        {
            Counter<long> or Counter<double> => _factory.CreateCounter(name + "_total", help, labelNames),
            UpDownCounter<long> or UpDownCounter<double> => _factory.CreateGauge(name, help, labelNames),
            _ when instrument.Unit == "ms" => _factory.CreateHistogram(name + "_seconds", help, labelNames, new HistogramConfiguration { Buckets = s_secondsBuckets }),
            _ => _factory.CreateHistogram(name, help, labelNames, new HistogramConfiguration { Buckets = s_countBuckets }),
        };
    }

    public void Dispose() => _listener.Dispose();
}
