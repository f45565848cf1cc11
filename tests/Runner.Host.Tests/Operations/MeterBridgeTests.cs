using System.Diagnostics.Metrics;
using System.Text;
using Prometheus;
using Xunit;

namespace Runner.Host.Tests.Operations;

/// <summary>Runner's meters as Prometheus series: each set of tag values its own series, whichever object carries the values.</summary>
public sealed class MeterBridgeTests
{
    [Fact]
    public async Task Measurements_land_in_the_series_of_their_tag_values_with_the_instruments_names_and_units()
    {
        var registry = Metrics.NewCustomRegistry();
        using var bridge = new Http.MeterBridge(registry);
        using var meter = new Meter("Runner.BridgeProbe." + Guid.NewGuid().ToString("N"));
        var counter = meter.CreateCounter<long>("runner.probe.done");
        var duration = meter.CreateHistogram<double>("runner.probe.duration", unit: "ms");
        var depth = meter.CreateUpDownCounter<long>("runner.probe.depth");
        var wide = meter.CreateCounter<long>("runner.probe.wide");

        for (var i = 0; i < 3; i++)
        {
            // A new string each time, equal in value: the same series.
            counter.Add(2, new KeyValuePair<string, object?>("saga", new string("order".AsSpan())), new KeyValuePair<string, object?>("outcome", "ok"));
        }
        counter.Add(5, new KeyValuePair<string, object?>("saga", "order"), new KeyValuePair<string, object?>("outcome", "failed"));
        // A boxed number compares by value too.
        counter.Add(1, new KeyValuePair<string, object?>("saga", 7), new KeyValuePair<string, object?>("outcome", "ok"));
        counter.Add(1, new KeyValuePair<string, object?>("saga", 7), new KeyValuePair<string, object?>("outcome", "ok"));
        duration.Record(250, new KeyValuePair<string, object?>("saga", "order"));
        duration.Record(750, new KeyValuePair<string, object?>("saga", "order"));
        depth.Add(4);
        depth.Add(-1);
        // More tags than the bridge keys by value: still recorded, by their label strings.
        KeyValuePair<string, object?>[] five = [new("a", "1"), new("b", "2"), new("c", "3"), new("d", "4"), new("e", "5")];
        wide.Add(3, five);
        wide.Add(4, five);

        using var stream = new MemoryStream();
        await registry.CollectAndExportAsTextAsync(stream);
        var text = Encoding.UTF8.GetString(stream.ToArray());

        Assert.Equal(6, MetricsTests.Value(text, "runner_probe_done_total", "saga=\"order\"", "outcome=\"ok\""));
        Assert.Equal(5, MetricsTests.Value(text, "runner_probe_done_total", "saga=\"order\"", "outcome=\"failed\""));
        Assert.Equal(2, MetricsTests.Value(text, "runner_probe_done_total", "saga=\"7\"", "outcome=\"ok\""));
        Assert.Equal(1.0, MetricsTests.Value(text, "runner_probe_duration_seconds_sum", "saga=\"order\""), 6);
        Assert.Equal(2, MetricsTests.Value(text, "runner_probe_duration_seconds_count", "saga=\"order\""));
        Assert.Equal(3, MetricsTests.Value(text, "runner_probe_depth"));
        Assert.Equal(7, MetricsTests.Value(text, "runner_probe_wide_total", "a=\"1\"", "e=\"5\""));
    }
}
