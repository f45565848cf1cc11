using System.Reflection;
using System.Text.Json.Nodes;
using Runner.Host.Settings;

namespace Runner.Host.Operations;

/// <summary>
/// What <c>GET /info</c> shows: build, mode, the .NET runtime and its GC, streams and consumers, owned partitions, the manifest
/// version with the sagas and effects it holds, and the sections of every <see cref="IInfoContributor"/>
/// (<c>slice_isolation</c>: null on a node without slice effects, else the slice capability probe's findings;
/// <c>breakers</c>: each circuit breaker's state and the commands it holds).
/// </summary>
internal sealed class InfoReport(RunnerControl control, IEnumerable<IInfoContributor> contributors)
{
    public const string SliceIsolationSection = "slice_isolation";

    private static readonly string s_informational =
        typeof(InfoReport).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";

    /// <summary>The version without the commit suffix the SDK appends (<c>0.1.0+abc123</c>).</summary>
    public static string Version => s_informational.Split('+')[0];

    /// <summary>The commit the build came from, when the build knew it (<c>SourceRevisionId</c>).</summary>
    public static string? Commit => s_informational.Split('+') is [_, var commit, ..] ? commit : null;

    public JsonObject Describe()
    {
        var components = control.Components ?? throw new InvalidOperationException("runner is not running");
        var settings = control.Settings;
        var manifests = components.Manifests;
        var sagas = components.Sagas;
        var streams = settings.JetStream.Streams;
        var report = new JsonObject
        {
            ["version"] = Version,
            ["commit"] = Commit,
            ["mode"] = settings.Mode.ToString().ToLowerInvariant(),
            ["state"] = control.State,
            ["started_at"] = control.StartedAt,
            ["worker_id"] = settings.WorkerId,
            ["runtime"] = RuntimeReport.Describe(),
            ["nats"] = RedactedUrl(settings.NatsUrl),
            ["streams"] = new JsonObject
            {
                ["aggregate_events"] = streams.AggregateEvents,
                ["pipeline_events"] = streams.PipelineEvents,
                ["workflow_commands"] = streams.WorkflowCommands,
                ["workflow_events"] = streams.WorkflowEvents,
                ["lineage"] = streams.Lineage,
                ["inbox"] = streams.Inbox,
            },
            ["consumers"] = JsonNodes.Array(components.Consumers(), c => new JsonObject
            {
                ["stream"] = c.Stream,
                ["consumer"] = c.Consumer,
                ["role"] = c.Role,
            }),
            ["partitions"] = settings.Partitions,
            ["owned_partitions"] = JsonNodes.Array(sagas?.OwnedPartitions ?? [], p => p),
            ["ownership"] = sagas?.Coordinator is { } coordinator ? Ownership(coordinator, sagas, TimeProvider.System) : null,
            ["manifest"] = new JsonObject
            {
                ["version"] = manifests.Hash,
                ["sagas"] = JsonNodes.Array(manifests.Sagas, s => new JsonObject
                {
                    ["name"] = s.Name,
                    ["script_version"] = s.Script.Hash,
                    ["triggers"] = JsonNodes.Array(s.Manifest.Triggers, t => new JsonObject
                    {
                        ["stream"] = t.Stream,
                        ["subject"] = t.Subject.Text,
                    }),
                }),
                ["effects"] = JsonNodes.Array(manifests.Effects, e => new JsonObject
                {
                    ["name"] = e.Name,
                    ["provider"] = e.Provider,
                    ["pool"] = e.Pool,
                    ["concurrency"] = e.Concurrency,
                }),
            },
            [SliceIsolationSection] = null,
        };
        foreach (var contributor in contributors)
        {
            report[contributor.Section] = contributor.Describe();
        }
        return report;
    }

    /// <summary>Each held partition with its epoch, lease and snapshot; the routers held; the bucket.</summary>
    private static JsonObject Ownership(Sagas.Ownership.PartitionCoordinator coordinator, Sagas.SagaRuntime sagas, TimeProvider time)
    {
        var nowMs = time.GetUtcNow().ToUnixTimeMilliseconds();
        JsonObject Lease(Sagas.Ownership.OwnedLease lease) => new()
        {
            ["epoch"] = lease.Epoch,
            ["lease_ms"] = lease.Record.LeaseMs,
            ["lease_left_ms"] = Math.Max(0, (long)((lease.ValidUntil - time.GetTimestamp()) * 1000.0 / time.TimestampFrequency)),
        };
        return new JsonObject
        {
            ["bucket"] = coordinator.Bucket,
            ["incarnation"] = coordinator.Incarnation,
            ["partitions"] = JsonNodes.Array(sagas.PartitionLeases, l => new JsonObject
            {
                ["partition"] = l.Partition!.Value.Value,
                ["lease"] = Lease(l),
                ["checkpoint"] = l.Record.Checkpoint,
                ["snapshot_seq"] = l.Record.Snapshots.Count > 0 ? l.Record.Snapshots[0].Sequence : (ulong?)null,
                ["snapshot_bytes"] = l.Record.Snapshots.Count > 0 ? l.Record.Snapshots[0].Bytes : (long?)null,
                ["snapshot_age_ms"] = l.Record.Snapshots.Count > 0 ? nowMs - l.Record.Snapshots[0].AtMs : (long?)null,
                ["manifest"] = l.Record.Versions.Count > 0 ? l.Record.Versions[^1].Manifest : null,
            }),
            ["routers"] = JsonNodes.Array(coordinator.Owned.Where(l => l.Partition is null), l => new JsonObject
            {
                ["stream"] = l.Key[Sagas.Ownership.OwnershipBucket.RouterPrefix.Length..],
                ["lease"] = Lease(l),
            }),
        };
    }

    /// <summary>The NATS URL without credentials: /info is open to anyone who reaches the port.</summary>
    private static string RedactedUrl(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.UserInfo.Length > 0
            ? new UriBuilder(uri) { UserName = string.Empty, Password = string.Empty }.Uri.ToString().TrimEnd('/')
            : url;
}
