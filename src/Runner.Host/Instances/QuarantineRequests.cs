using System.Globalization;
using Runner.Host.Settings;
using Runner.Sagas.Quarantine;

namespace Runner.Host.Instances;

/// <summary>
/// The quarantine filter from name/value pairs: the HTTP query string and the CLI's flags take the
/// same names (id — repeatable —, reason, stage, saga, tenant, key, older_than, newer_than, limit,
/// include_requeued, all).
/// </summary>
internal static class QuarantineRequests
{
    public static readonly string[] Names = ["id", "reason", "stage", "saga", "tenant", "key", "older_than", "newer_than", "limit", "include_requeued", "all"];

    /// <summary>The filter, and whether <c>all</c> was given (what a bulk action over everything needs).</summary>
    public static (QuarantineFilter? Filter, bool All, string? Error) Filter(IEnumerable<KeyValuePair<string, string>> pairs, DateTimeOffset now)
    {
        var filter = new QuarantineFilter();
        var all = false;
        foreach (var (name, value) in pairs)
        {
            switch (name)
            {
                case "id":
                    filter = filter with { Ids = [.. filter.Ids ?? [], value] };
                    break;
                case "reason":
                    filter = filter with { Reason = value };
                    break;
                case "stage":
                    filter = filter with { Stage = value };
                    break;
                case "saga":
                    filter = filter with { Saga = value };
                    break;
                case "tenant":
                    filter = filter with { Tenant = value };
                    break;
                case "key":
                    filter = filter with { Key = value };
                    break;
                case "older_than" or "newer_than":
                    if (!SettingsLoader.Duration(value, out var age))
                    {
                        return (null, false, $"{name} must be a duration (e.g. 90s, 15m, 24h)");
                    }
                    var at = (now - age).ToUnixTimeMilliseconds();
                    filter = name == "older_than" ? filter with { BeforeMs = at } : filter with { AfterMs = at };
                    break;
                case "limit":
                    if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var limit) || limit is < 1 or > 100_000)
                    {
                        return (null, false, "limit must be an integer in [1, 100000]");
                    }
                    filter = filter with { Limit = limit };
                    break;
                case "include_requeued" or "all":
                    if (!bool.TryParse(value, out var flag))
                    {
                        return (null, false, $"{name} must be true or false");
                    }
                    if (name == "all")
                    {
                        all = flag;
                    }
                    else
                    {
                        filter = filter with { IncludeRequeued = flag };
                    }
                    break;
                default:
                    return (null, false, $"unknown filter '{name}' (known: {string.Join(", ", Names)})");
            }
        }
        return (filter, all, null);
    }
}
