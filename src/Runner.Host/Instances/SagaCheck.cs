using System.Diagnostics;
using System.Text.Json.Serialization;
using NATS.Client.Core;
using Runner.Sagas;
using Runner.Sagas.Instances;
using Runner.Sagas.Manifests;
using Runner.Sagas.Testing;

namespace Runner.Host.Instances;

/// <summary>One saga's result: how many live instances were replayed, which diverged, and whether the manifest declares the change.</summary>
internal sealed record SagaCheckResult
{
    [JsonPropertyName("saga")] public required string Saga { get; init; }
    [JsonPropertyName("version")] public string? Version { get; init; }

    /// <summary>The candidate manifest declares the change (<c>migrate: true</c>): divergence is expected, not a refusal.</summary>
    [JsonPropertyName("migrate")] public bool Migrate { get; init; }
    [JsonPropertyName("live")] public int Live { get; init; }
    [JsonPropertyName("checked")] public int Checked { get; init; }
    [JsonPropertyName("steps")] public int Steps { get; init; }
    [JsonPropertyName("diverged")] public List<InstanceDivergence> Diverged { get; init; } = [];
}

internal sealed record InstanceDivergence(
    [property: JsonPropertyName("tenant")] string Tenant,
    [property: JsonPropertyName("key")] string Key,
    [property: JsonPropertyName("differences")] List<string> Differences);

/// <summary>The whole check: per saga, and whether every live instance asked for was replayed within the time bound.</summary>
internal sealed record SagaCheckReport
{
    [JsonPropertyName("sagas")] public List<SagaCheckResult> Sagas { get; init; } = [];

    /// <summary>False when the time bound stopped the check before every sampled instance was replayed, or a partition did not answer.</summary>
    [JsonPropertyName("complete")] public bool Complete { get; init; }

    /// <summary>Sagas whose live instances diverge without the manifest declaring the change: what refuses a reload.</summary>
    [JsonIgnore] public IEnumerable<SagaCheckResult> Refusing => Sagas.Where(s => s.Diverged.Count > 0 && !s.Migrate);
}

/// <summary>
/// Checks a candidate version of saga scripts against live instances before it runs: for each
/// saga, a sample of its running and parked instances (their kept history, from the owners, over
/// NATS) is replayed through the candidate (<see cref="HistoryCheck"/>) and every divergence from
/// what the running versions produced is reported. Bounded in instances and in time.
/// </summary>
internal static class SagaCheck
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(3);

    public static async Task<SagaCheckReport> RunAsync(
        INatsConnection nats, SagaRuntimeOptions options, ManifestSet candidate, IEnumerable<string> sagas, int sample, TimeSpan budget, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var complete = true;
        var results = new List<SagaCheckResult>();
        foreach (var name in sagas.Order(StringComparer.Ordinal))
        {
            var manifest = candidate.Saga(name)?.Manifest;
            var live = new List<InstanceSummary>();
            foreach (var status in new[] { "running", "parked" })
            {
                var list = await InstanceQueryClient.ListAsync(nats, options, new InstanceFilter { Saga = name, Status = status, Limit = sample }, s_wait, cancellationToken);
                live.AddRange(list.Instances);
                complete &= list.Missing.Count == 0;
            }
            live = [.. live.OrderBy(i => i.UpdatedAtMs).Reverse().Take(sample)];
            var diverged = new List<InstanceDivergence>();
            int replayed = 0, steps = 0;
            foreach (var instance in live)
            {
                if (clock.Elapsed > budget)
                {
                    complete = false;
                    break;
                }
                var shown = await InstanceQueryClient.ShowAsync(nats, options, new InstanceShowRequest { Tenant = instance.Tenant, Saga = name, Key = instance.Key }, s_wait, cancellationToken);
                if (shown is not { Found: true })
                {
                    continue; // finished or moved meanwhile
                }
                var check = HistoryCheck.Check(candidate, instance.Tenant, name, instance.Key, shown.History);
                replayed++;
                steps += check.Steps;
                if (check.Differences.Count > 0)
                {
                    diverged.Add(new InstanceDivergence(instance.Tenant, instance.Key, check.Differences));
                }
            }
            results.Add(new SagaCheckResult
            {
                Saga = name,
                Version = manifest?.Version,
                Migrate = manifest?.Migrate ?? false,
                Live = live.Count,
                Checked = replayed,
                Steps = steps,
                Diverged = diverged,
            });
        }
        return new SagaCheckReport { Sagas = results, Complete = complete };
    }

    /// <summary>The sagas of <paramref name="after"/> whose script differs from the one in <paramref name="before"/> (new sagas have no live instances).</summary>
    public static List<string> ChangedScripts(ManifestSet before, ManifestSet after) =>
        [.. after.Sagas.Where(s => before.Saga(s.Name) is { } old && !string.Equals(old.Script.Hash, s.Script.Hash, StringComparison.Ordinal)).Select(s => s.Name)];
}
