using System.Globalization;

namespace Runner.Bench;

internal static class Text
{
    public static string Inv(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}

/// <summary>Percentiles of a set of samples (microseconds), nearest-rank.</summary>
internal sealed class Percentiles
{
    private readonly long[] _sorted;

    public Percentiles(IEnumerable<long> samples)
    {
        _sorted = samples.ToArray();
        Array.Sort(_sorted);
    }

    public int Count => _sorted.Length;

    public double Ms(double p)
    {
        if (_sorted.Length == 0)
        {
            return double.NaN;
        }
        var rank = (int)Math.Ceiling(p / 100.0 * _sorted.Length) - 1;
        return _sorted[Math.Clamp(rank, 0, _sorted.Length - 1)] / 1000.0;
    }

    public double MaxMs => _sorted.Length == 0 ? double.NaN : _sorted[^1] / 1000.0;

    public double MeanMs => _sorted.Length == 0 ? double.NaN : _sorted.Average() / 1000.0;

    public string Summary() =>
        Text.Inv($"p50 {Ms(50),7:F2}  p90 {Ms(90),7:F2}  p99 {Ms(99),7:F2}  max {MaxMs,7:F2}  mean {MeanMs,7:F2} ms  (n={Count})");
}
