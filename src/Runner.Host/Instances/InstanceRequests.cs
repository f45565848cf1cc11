using System.Globalization;
using Runner.Host.Settings;
using Runner.Sagas.Instances;

namespace Runner.Host.Instances;

/// <summary>
/// The filter of <c>instances list</c> from name/value pairs: the HTTP query string and the CLI's
/// <c>--name value</c> flags take the same names (saga, tenant, key, status, older_than,
/// newer_than, limit), so the two cannot drift apart.
/// </summary>
internal static class InstanceRequests
{
    public static readonly string[] Names = ["saga", "tenant", "key", "status", "older_than", "newer_than", "limit"];

    public static (InstanceFilter? Filter, string? Error) Filter(IEnumerable<KeyValuePair<string, string>> pairs, DateTimeOffset now)
    {
        var filter = new InstanceFilter();
        foreach (var (name, value) in pairs)
        {
            switch (name)
            {
                case "saga":
                    filter = filter with { Saga = value };
                    break;
                case "tenant":
                    filter = filter with { Tenant = value };
                    break;
                case "key":
                    filter = filter with { Key = value };
                    break;
                case "status":
                    filter = filter with { Status = value };
                    break;
                case "older_than" or "newer_than":
                    if (!SettingsLoader.Duration(value, out var age))
                    {
                        return (null, $"{name} must be a duration (e.g. 90s, 15m, 24h)");
                    }
                    var at = (now - age).ToUnixTimeMilliseconds();
                    filter = name == "older_than" ? filter with { UpdatedBeforeMs = at } : filter with { UpdatedAfterMs = at };
                    break;
                case "limit":
                    if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var limit))
                    {
                        return (null, "limit must be a positive integer");
                    }
                    filter = filter with { Limit = limit };
                    break;
                default:
                    return (null, $"unknown filter '{name}' (known: {string.Join(", ", Names)})");
            }
        }
        return filter.Validate() is { } error ? (null, error) : (filter, null);
    }
}
