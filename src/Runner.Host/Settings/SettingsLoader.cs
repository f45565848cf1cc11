using System.Globalization;
using Runner.Messaging;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Runner.Host.Settings;

/// <summary>
/// Builds <see cref="RunnerSettings"/> from an optional YAML file (<c>RUNNER_CONFIG</c>) and the
/// <c>RUNNER_*</c> environment, the environment winning. Every problem is collected and reported
/// together, so an operator fixes a bad deployment in one pass.
/// </summary>
internal static class SettingsLoader
{
    /// <summary>Every setting: environment name, YAML key, and how to apply it.</summary>
    private static readonly (string Env, string Yaml, Func<RunnerSettings, string, Result> Apply)[] s_settings =
    [
        ("RUNNER_NATS_URL", "nats_url", (s, v) => Uri.TryCreate(v, UriKind.Absolute, out var u) && u.Scheme is "nats" or "tls" or "ws" or "wss"
            ? new(s with { NatsUrl = v }) : Result.Error("must be a nats:// (or tls://, ws://) URL")),
        ("RUNNER_DATA_DIR", "data_dir", (s, v) => v.Length > 0 ? new(s with { DataDir = v }) : Result.Error("must not be empty")),
        ("RUNNER_MANIFESTS", "manifests", (s, v) => v.Length > 0 ? new(s with { Manifests = v }) : Result.Error("must not be empty")),
        ("RUNNER_MODE", "mode", (s, v) => Enum.TryParse<RunnerMode>(v, ignoreCase: true, out var m) && !int.TryParse(v, out _)
            ? new(s with { Mode = m }) : Result.Error("must be saga, effect or combined")),
        ("RUNNER_PARTITIONS", "partitions", (s, v) => Int(v, 1, 4096, out var n) ? new(s with { Partitions = n }) : Result.Error("must be an integer in [1, 4096]")),
        ("RUNNER_CONSUMER_PREFIX", "consumer_prefix", (s, v) => Core.Subjects.SubjectPattern.Validate(v, false) is null && !v.Contains('.', StringComparison.Ordinal)
            ? new(s with { ConsumerPrefix = v }) : Result.Error("must be one subject-safe token")),
        ("RUNNER_MAX_EVENT_BYTES", "max_event_bytes", (s, v) => Int(v, 1024, 64 * 1024 * 1024, out var n) ? new(s with { MaxEventBytes = n }) : Result.Error("must be an integer in [1024, 67108864]")),
        ("RUNNER_LMDB_MAP_SIZE", "lmdb_map_size", (s, v) => Bytes(v, out var n) && n >= 1 << 20 ? new(s with { LmdbMapSize = n }) : Result.Error("must be a size of at least 1MiB (e.g. 256MiB)")),
        ("RUNNER_LMDB_MAX_MAP_SIZE", "lmdb_max_map_size", (s, v) => Bytes(v, out var n) && n >= 1 << 20 ? new(s with { LmdbMaxMapSize = n }) : Result.Error("must be a size of at least 1MiB (e.g. 64GiB)")),
        ("RUNNER_CREATE_STREAMS", "create_streams", (s, v) => bool.TryParse(v, out var b) ? new(s with { JetStream = s.JetStream with { CreateStreams = b } }) : Result.Error("must be true or false")),
        ("RUNNER_STREAM_REPLICAS", "stream_replicas", (s, v) => Int(v, 1, 5, out var n) ? new(s with { JetStream = s.JetStream with { Replicas = n } }) : Result.Error("must be 1 to 5")),
        ("RUNNER_DUPLICATE_WINDOW", "duplicate_window", (s, v) => Duration(v, out var d) && d >= TimeSpan.FromSeconds(1) ? new(s with { JetStream = s.JetStream with { DuplicateWindow = d } }) : Result.Error("must be a duration of at least 1s (e.g. 10m)")),
        ("RUNNER_ACK_WAIT", "ack_wait", (s, v) => Duration(v, out var d) && d >= TimeSpan.FromSeconds(1) ? new(s with { JetStream = s.JetStream with { AckWait = d } }) : Result.Error("must be a duration of at least 1s (e.g. 30s)")),
        ("RUNNER_MAX_DELIVER", "max_deliver", (s, v) => Int(v, 1, 1000, out var n) ? new(s with { JetStream = s.JetStream with { MaxDeliver = n } }) : Result.Error("must be an integer in [1, 1000]")),
        ("RUNNER_MAX_ACK_PENDING", "max_ack_pending", (s, v) => Int(v, 1, 1_000_000, out var n) ? new(s with { JetStream = s.JetStream with { MaxAckPending = n } }) : Result.Error("must be an integer in [1, 1000000]")),
        ("RUNNER_SNAPSHOT_INTERVAL", "snapshot_interval", (s, v) => Duration(v, out var d) && d <= TimeSpan.FromHours(24) ? new(s with { SnapshotInterval = d }) : Result.Error("must be a duration up to 24h (e.g. 30s; 0s snapshots after every batch)")),
        ("RUNNER_PARTITION_LEASE", "partition_lease", (s, v) => Duration(v, out var d) && d >= TimeSpan.FromSeconds(1) && d <= TimeSpan.FromMinutes(10)
            ? new(s with { PartitionLease = d }) : Result.Error("must be a duration from 1s to 10m (e.g. 10s)")),
        ("RUNNER_DEDUPE_RETENTION", "dedupe_retention", (s, v) => Duration(v, out var d) && d >= TimeSpan.FromMinutes(1) ? new(s with { DedupeRetention = d }) : Result.Error("must be a duration of at least 1m (e.g. 168h)")),
        ("RUNNER_HISTORY_LIMIT", "history_limit", (s, v) => Int(v, 0, 100_000, out var n) ? new(s with { HistoryLimit = n }) : Result.Error("must be an integer in [0, 100000] (0 keeps no history)")),
        ("RUNNER_WARM_UP", "warm_up", (s, v) => bool.TryParse(v, out var b) ? new(s with { WarmUp = b }) : Result.Error("must be true or false")),
        ("RUNNER_DONE_RETENTION", "done_retention", (s, v) => Duration(v, out var d) && d >= TimeSpan.FromMinutes(1) ? new(s with { DoneRetention = d }) : Result.Error("must be a duration of at least 1m (e.g. 168h)")),
        ("RUNNER_QUARANTINE_RETENTION", "quarantine_retention", (s, v) => Duration(v, out var d) && d >= TimeSpan.FromMinutes(1) ? new(s with { QuarantineRetention = d }) : Result.Error("must be a duration of at least 1m (e.g. 168h)")),
        ("RUNNER_WORKER_ID", "worker_id", (s, v) => v.Length is > 0 and <= 128 ? new(s with { WorkerId = v }) : Result.Error("must be 1 to 128 characters")),
        ("RUNNER_POOLS", "pools", (s, v) => Pools(v, out var pools) ? new(s with { Pools = pools }) : Result.Error("must be a comma-separated list of subject-safe tokens")),
        ("RUNNER_SECRETS_DIR", "secrets_dir", (s, v) => v.Length > 0 ? new(s with { SecretsDir = v }) : Result.Error("must not be empty")),
        ("RUNNER_EFFECTS_BUCKET", "effects_bucket", (s, v) => Core.Subjects.SubjectPattern.Validate(v, false) is null && !v.Contains('.', StringComparison.Ordinal)
            ? new(s with { EffectsBucket = v }) : Result.Error("must be a valid KV bucket name (letters, digits, '-', '_')")),
        ("RUNNER_EFFECT_LEASE", "effect_lease", (s, v) => Duration(v, out var d) && d >= TimeSpan.FromMilliseconds(500) ? new(s with { EffectLease = d }) : Result.Error("must be a duration of at least 500ms (e.g. 30s)")),
        ("RUNNER_EFFECT_CLAIM_RETENTION", "effect_claim_retention", (s, v) => Duration(v, out var d) && d >= TimeSpan.FromMinutes(1) ? new(s with { EffectClaimRetention = d }) : Result.Error("must be a duration of at least 1m (e.g. 168h)")),
        ("RUNNER_EFFECT_CLAIM_AHEAD", "effect_claim_ahead", (s, v) => double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var f) && f is >= 0 and <= 4
            ? new(s with { EffectClaimAhead = f }) : Result.Error("must be a number in [0, 4] (times an effect's concurrency; 0 claims nothing ahead)")),
        ("RUNNER_SLICE_BIN", "slice_bin", (s, v) => v.Length > 0 ? new(s with { SliceBin = v }) : Result.Error("must not be empty")),
        ("RUNNER_SLICE_CPU", "slice_cpu", (s, v) => double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var c) && c is >= 0.01 and <= 4096
            ? new(s with { SliceCpu = c }) : Result.Error("must be a number of cores in [0.01, 4096]")),
        ("RUNNER_SLICE_MEMORY", "slice_memory", (s, v) => Bytes(v, out var n) && n >= 4 << 20 ? new(s with { SliceMemory = n }) : Result.Error("must be a size of at least 4MiB (e.g. 8GiB)")),
        ("RUNNER_SLICE_UID", "slice_uid", (s, v) => Int(v, 1, int.MaxValue, out var n) ? new(s with { SliceUid = n }) : Result.Error("must be a uid other than 0")),
        ("RUNNER_SLICE_GID", "slice_gid", (s, v) => Int(v, 1, int.MaxValue, out var n) ? new(s with { SliceGid = n }) : Result.Error("must be a gid other than 0")),
        ("RUNNER_SLICE_RUN_DIR", "slice_run_dir", (s, v) => v.StartsWith('/') ? new(s with { SliceRunDir = v }) : Result.Error("must be an absolute path")),
        ("RUNNER_SLICE_CGROUP", "slice_cgroup", (s, v) => v.Length > 0 && !v.StartsWith('/') && !v.Split('/').Any(p => p is "" or "." or "..")
            ? new(s with { SliceCgroup = v }) : Result.Error("must be a relative cgroup path (e.g. runner-slices)")),
        ("RUNNER_HTTP_URLS", "http_urls", (s, v) => HttpUrls(v, out var urls) ? new(s with { HttpUrls = urls }) : Result.Error("must be a comma-separated list of http:// URLs with a port (e.g. http://0.0.0.0:8080)")),
        ("RUNNER_ADMIN_TOKEN_FILE", "admin_token_file", (s, v) => new(s with { AdminTokenFile = v.Length > 0 ? v : null })),
        ("RUNNER_SHUTDOWN_TIMEOUT", "shutdown_timeout", (s, v) => Duration(v, out var d) && d >= TimeSpan.FromSeconds(1) && d <= TimeSpan.FromMinutes(10)
            ? new(s with { ShutdownTimeout = d }) : Result.Error("must be a duration from 1s to 10m (e.g. 45s)")),
        ("RUNNER_LOG_FORMAT", "log_format", (s, v) => v is "text" or "json" ? new(s with { LogFormat = v }) : Result.Error("must be text or json")),
        ("RUNNER_BATCH", "batch", (s, v) => Int(v, 1, 10_000, out var n) ? new(s with { JetStream = s.JetStream with { Batch = n } }) : Result.Error("must be an integer in [1, 10000]")),
        ("RUNNER_STREAM_AGGREGATE_EVENTS", "stream_aggregate_events", (s, v) => Stream(v, n => s with { JetStream = s.JetStream with { Streams = s.JetStream.Streams with { AggregateEvents = n } } })),
        ("RUNNER_STREAM_PIPELINE_EVENTS", "stream_pipeline_events", (s, v) => Stream(v, n => s with { JetStream = s.JetStream with { Streams = s.JetStream.Streams with { PipelineEvents = n } } })),
        ("RUNNER_STREAM_WORKFLOW_COMMANDS", "stream_workflow_commands", (s, v) => Stream(v, n => s with { JetStream = s.JetStream with { Streams = s.JetStream.Streams with { WorkflowCommands = n } } })),
        ("RUNNER_STREAM_WORKFLOW_EVENTS", "stream_workflow_events", (s, v) => Stream(v, n => s with { JetStream = s.JetStream with { Streams = s.JetStream.Streams with { WorkflowEvents = n } } })),
        ("RUNNER_STREAM_LINEAGE", "stream_lineage", (s, v) => Stream(v, n => s with { JetStream = s.JetStream with { Streams = s.JetStream.Streams with { Lineage = n } } })),
        ("RUNNER_STREAM_INBOX", "stream_inbox", (s, v) => Stream(v, n => s with { JetStream = s.JetStream with { Streams = s.JetStream.Streams with { Inbox = n } } })),
    ];

    internal readonly record struct Result(RunnerSettings? Settings, string? Problem = null)
    {
        public static Result Error(string problem) => new(null, problem);
    }

    public static IReadOnlyList<string> Names => s_settings.Select(s => s.Env).ToList();

    public static (RunnerSettings Settings, IReadOnlyList<string> Errors) Load(IReadOnlyDictionary<string, string?> environment)
    {
        var errors = new List<string>();
        var settings = new RunnerSettings();
        var values = new Dictionary<string, (string Value, string Source)>(StringComparer.Ordinal);

        if (environment.TryGetValue("RUNNER_CONFIG", out var configFile) && !string.IsNullOrEmpty(configFile))
        {
            ReadYaml(configFile, values, errors);
        }
        foreach (var (env, _, _) in s_settings)
        {
            if (environment.TryGetValue(env, out var value) && value is not null)
            {
                values[env] = (value.Trim(), env);
            }
        }
        foreach (var name in environment.Keys.Where(k => k.StartsWith("RUNNER_", StringComparison.Ordinal)))
        {
            if (name != "RUNNER_CONFIG" && !s_settings.Any(s => s.Env == name) && !name.StartsWith("RUNNER_TEST_", StringComparison.Ordinal))
            {
                errors.Add($"{name}: unknown setting");
            }
        }

        foreach (var (env, _, apply) in s_settings)
        {
            if (!values.TryGetValue(env, out var entry))
            {
                continue;
            }
            var result = apply(settings, entry.Value);
            if (result.Settings is null)
            {
                errors.Add($"{entry.Source}: '{entry.Value}' {result.Problem}");
            }
            else
            {
                settings = result.Settings;
            }
        }
        if (settings.LmdbMapSize > settings.LmdbMaxMapSize)
        {
            errors.Add("RUNNER_LMDB_MAP_SIZE is larger than RUNNER_LMDB_MAX_MAP_SIZE");
        }
        var streams = settings.JetStream.Streams;
        var names = new[] { streams.AggregateEvents, streams.PipelineEvents, streams.WorkflowCommands, streams.WorkflowEvents, streams.Lineage, streams.Inbox };
        if (names.Distinct(StringComparer.Ordinal).Count() != names.Length)
        {
            errors.Add("stream names must all differ");
        }
        return (settings, errors);
    }

    private static void ReadYaml(string file, Dictionary<string, (string, string)> values, List<string> errors)
    {
        if (!File.Exists(file))
        {
            errors.Add($"RUNNER_CONFIG: file '{file}' does not exist");
            return;
        }
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(File.ReadAllText(file)));
        }
        catch (YamlException ex)
        {
            errors.Add($"{file}:{ex.Start.Line}: YAML syntax: {ex.Message}");
            return;
        }
        if (stream.Documents.Count == 0)
        {
            return;
        }
        if (stream.Documents[0].RootNode is not YamlMappingNode map)
        {
            errors.Add($"{file}: settings must be a mapping of key: value");
            return;
        }
        foreach (var (keyNode, valueNode) in map.Children)
        {
            var key = (keyNode as YamlScalarNode)?.Value ?? string.Empty;
            var setting = s_settings.FirstOrDefault(s => s.Yaml == key);
            if (setting.Env is null)
            {
                errors.Add($"{file}:{keyNode.Start.Line}: unknown setting '{key}'");
                continue;
            }
            if (valueNode is not YamlScalarNode { Value: { } value })
            {
                errors.Add($"{file}:{valueNode.Start.Line}: '{key}' must be a single value");
                continue;
            }
            values[setting.Env] = (value, $"{file}:{keyNode.Start.Line} {key}");
        }
    }

    private static Result Stream(string value, Func<string, RunnerSettings> apply) =>
        value.Length > 0 && value.Length <= 64 && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-')
            ? new Result(apply(value))
            : Result.Error("must be a stream name of letters, digits, '_' or '-'");

    private static bool Int(string value, int min, int max, out int result) =>
        int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out result) && result >= min && result <= max;

    private static bool HttpUrls(string value, out IReadOnlyList<string> urls)
    {
        var list = value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        urls = list;
        return list.Length > 0 && list.All(u => Uri.TryCreate(u, UriKind.Absolute, out var uri) && uri.Scheme == "http" && uri.AbsolutePath == "/");
    }

    private static bool Pools(string value, out IReadOnlyList<string> pools)
    {
        var list = value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        pools = list;
        return list.All(p => Core.Subjects.SubjectPattern.Validate(p, false) is null && !p.Contains('.', StringComparison.Ordinal));
    }

    internal static bool Duration(string value, out TimeSpan result)
    {
        result = default;
        var units = new (string Suffix, double Ms)[] { ("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000) };
        foreach (var (suffix, ms) in units)
        {
            if (value.EndsWith(suffix, StringComparison.Ordinal)
                && double.TryParse(value[..^suffix.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && n >= 0 && double.IsFinite(n))
            {
                if (suffix == "m" && value.EndsWith("ms", StringComparison.Ordinal))
                {
                    continue;
                }
                result = TimeSpan.FromMilliseconds(n * ms);
                return true;
            }
        }
        return false;
    }

    internal static bool Bytes(string value, out long result)
    {
        result = 0;
        var units = new (string Suffix, long Factor)[] { ("KiB", 1L << 10), ("MiB", 1L << 20), ("GiB", 1L << 30), ("TiB", 1L << 40), ("", 1) };
        foreach (var (suffix, factor) in units)
        {
            if (value.EndsWith(suffix, StringComparison.Ordinal)
                && long.TryParse(value[..^suffix.Length], NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= 0 && n <= long.MaxValue / factor)
            {
                result = n * factor;
                return true;
            }
        }
        return false;
    }
}
