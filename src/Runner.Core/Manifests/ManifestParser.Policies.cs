using System.Globalization;
using YamlDotNet.RepresentationModel;

namespace Runner.Core.Manifests;

internal static partial class ManifestParser
{
    private static readonly HashSet<string> s_retryFields = ["max_attempts", "backoff", "base_ms", "max_ms", "jitter", "on"];
    private static readonly HashSet<string> s_breakerFields = ["failure_ratio", "minimum_throughput", "sampling_ms", "break_ms"];
    private static readonly string[] s_backoffs = [RetryPolicy.Exponential, RetryPolicy.Linear, RetryPolicy.Constant];

    // Polly.Core 8 rejects a sampling or break duration outside [0.5 s, 1 day] when the pipeline
    // is built; checking here turns that run-time failure into a manifest error with its line.
    private const int MaxBreakerWindowMs = 86_400_000;

    private static RetryPolicy ParseRetry(YamlNode? node, string file, List<ManifestError> errors)
    {
        var defaults = RetryPolicy.Default;
        if (OptionalBlock(node, "retry", s_retryFields, file, errors) is not { } map)
        {
            return defaults;
        }
        var maxAttempts = ReadInt(map, "max_attempts", defaults.MaxAttempts, 1, 100, "retry.", file, errors);
        var baseMs = ReadInt(map, "base_ms", defaults.BaseMs, 1, 600_000, "retry.", file, errors);
        var maxMs = ReadInt(map, "max_ms", defaults.MaxMs, 1, 3_600_000, "retry.", file, errors);
        if (baseMs is { } b && maxMs is { } m && m < b)
        {
            errors.Add(Child(map, "max_ms") is { } maxNode
                ? Error(file, maxNode, $"retry.max_ms ({m}) must not be less than retry.base_ms ({b})")
                : Error(file, Child(map, "base_ms")!, $"retry.base_ms ({b}) is more than the default retry.max_ms ({m}): set max_ms too"));
        }

        var backoff = defaults.Backoff;
        if (Child(map, "backoff") is { } backoffNode)
        {
            var text = (backoffNode as YamlScalarNode)?.Value;
            if (text is not null && s_backoffs.Contains(text))
            {
                backoff = text;
            }
            else
            {
                errors.Add(Error(file, backoffNode, $"retry.backoff must be one of {string.Join(", ", s_backoffs)}"));
            }
        }

        var jitter = defaults.Jitter;
        if (Child(map, "jitter") is { } jitterNode)
        {
            if (jitterNode is YamlScalarNode { Value: var text } && bool.TryParse(text, out var value))
            {
                jitter = value;
            }
            else
            {
                errors.Add(Error(file, jitterNode, "retry.jitter must be true or false"));
            }
        }

        var on = defaults.On;
        if (Child(map, "on") is { } onNode)
        {
            on = ParseRetryOn(onNode, file, errors) ?? on;
        }

        return new RetryPolicy(maxAttempts ?? defaults.MaxAttempts, backoff, baseMs ?? defaults.BaseMs, maxMs ?? defaults.MaxMs, jitter, on);
    }

    private static HashSet<string>? ParseRetryOn(YamlNode node, string file, List<ManifestError> errors)
    {
        var expected = string.Join(", ", RetryOn.All.Order(StringComparer.Ordinal));
        if (node is not YamlSequenceNode sequence)
        {
            errors.Add(Error(file, node, $"retry.on must be a list of: {expected}"));
            return null;
        }
        var on = new HashSet<string>(StringComparer.Ordinal);
        var ok = true;
        foreach (var item in sequence.Children)
        {
            if (item is YamlScalarNode { Value: { } text } && RetryOn.All.Contains(text))
            {
                on.Add(text);
            }
            else
            {
                errors.Add(Error(file, item, $"retry.on: '{(item as YamlScalarNode)?.Value}' is not one of {expected}"));
                ok = false;
            }
        }
        return ok ? on : null;
    }

    private static CircuitBreakerPolicy ParseCircuitBreaker(YamlNode? node, string file, List<ManifestError> errors)
    {
        var defaults = CircuitBreakerPolicy.Default;
        if (OptionalBlock(node, "circuit_breaker", s_breakerFields, file, errors) is not { } map)
        {
            return defaults;
        }
        var ratio = defaults.FailureRatio;
        if (Child(map, "failure_ratio") is { } ratioNode)
        {
            if (ratioNode is YamlScalarNode { Value: var text }
                && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value)
                && value > 0 && value <= 1)
            {
                ratio = value;
            }
            else
            {
                errors.Add(Error(file, ratioNode, "circuit_breaker.failure_ratio must be a number greater than 0 and at most 1"));
            }
        }
        var throughput = ReadInt(map, "minimum_throughput", defaults.MinimumThroughput, 2, int.MaxValue, "circuit_breaker.", file, errors);
        var samplingMs = ReadInt(map, "sampling_ms", defaults.SamplingMs, 500, MaxBreakerWindowMs, "circuit_breaker.", file, errors);
        var breakMs = ReadInt(map, "break_ms", defaults.BreakMs, 500, MaxBreakerWindowMs, "circuit_breaker.", file, errors);
        return new CircuitBreakerPolicy(ratio, throughput ?? defaults.MinimumThroughput, samplingMs ?? defaults.SamplingMs, breakMs ?? defaults.BreakMs);
    }

    /// <summary>The integer at <paramref name="key"/>, <paramref name="fallback"/> when absent, null (and an error) when invalid.</summary>
    private static int? ReadInt(YamlMappingNode map, string key, int fallback, int min, int max, string prefix, string file, List<ManifestError> errors)
    {
        var child = Child(map, key);
        if (child is null)
        {
            return fallback;
        }
        if (child is YamlScalarNode scalar && int.TryParse(scalar.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max)
        {
            return value;
        }
        var range = max == int.MaxValue ? $"of at least {min}" : $"in [{min}, {max}]";
        errors.Add(Error(file, child, $"{prefix}{key} must be an integer {range}"));
        return null;
    }
}
