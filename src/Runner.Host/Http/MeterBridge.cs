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
    private readonly ConcurrentDictionary<Instrument, Series> _series = new();

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
        // Called for every measurement (each transition, script call, commit, dispatch). The series of a set of tag
        // values is looked up by the values themselves, so a measurement makes no label strings: names and values are
        // written out once, when an instrument or a set of values is first seen.
        if (!_series.TryGetValue(instrument, out var series))
        {
            var names = new string[tags.Length];
            for (var i = 0; i < tags.Length; i++)
            {
                names[i] = tags[i].Key;
            }
            series = _series.GetOrAdd(instrument, new Series(Create(instrument, names), instrument.Unit == "ms"));
        }
        object child;
        if (tags.Length > TagValues.Capacity)
        {
            child = series.Child(tags);
        }
        else
        {
            var key = TagValues.Of(tags);
            if (!series.Children.TryGetValue(key, out child!))
            {
                child = series.Children.GetOrAdd(key, series.Child(tags));
            }
        }
        switch (child)
        {
            case Counter.Child counter:
                counter.Inc(value);
                break;
            case Gauge.Child gauge:
                gauge.Inc(value);
                break;
            case Histogram.Child histogram:
                histogram.Observe(series.Milliseconds ? value / 1000 : value);
                break;
        }
    }

    /// <summary>One instrument's Prometheus collector and the series of each set of tag values seen so far.</summary>
    private sealed class Series(Collector collector, bool milliseconds)
    {
        public bool Milliseconds { get; } = milliseconds;

        public ConcurrentDictionary<TagValues, object> Children { get; } = new();

        public object Child(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var labels = new string[tags.Length];
            for (var i = 0; i < tags.Length; i++)
            {
                labels[i] = tags[i].Value?.ToString() ?? string.Empty;
            }
            return collector switch
            {
                Counter counter => counter.WithLabels(labels),
                Gauge gauge => gauge.WithLabels(labels),
                Histogram histogram => histogram.WithLabels(labels),
                _ => throw new InvalidOperationException($"no series for a {collector.GetType().Name}"),
            };
        }
    }

    /// <summary>Up to <see cref="Capacity"/> tag values as a key, compared by value (a saga's name, an outcome).</summary>
    private readonly record struct TagValues(object? A, object? B, object? C, object? D, int Count)
    {
        public const int Capacity = 4;

        public static TagValues Of(ReadOnlySpan<KeyValuePair<string, object?>> tags) => new(
            tags.Length > 0 ? tags[0].Value : null,
            tags.Length > 1 ? tags[1].Value : null,
            tags.Length > 2 ? tags[2].Value : null,
            tags.Length > 3 ? tags[3].Value : null,
            tags.Length);
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
