using System.Text;
using System.Text.Json;
using Runner.Core.Manifests;

namespace Runner.Effects.Providers.Slices;

/// <summary>
/// A slice command's payload, checked against its pool's policy:
/// <c>{ spec, resources: { cpu, memory, pids, timeout_ms, network }, paths: { ro, rw }, env, secrets }</c>.
/// Unknown fields are errors at every level; a missing resource takes the pool's default.
/// </summary>
internal sealed record SliceRequest(
    byte[] SpecJson,
    string? RunId,
    SliceResources Resources,
    IReadOnlyList<string> ReadOnlyPaths,
    IReadOnlyList<string> ReadWritePaths,
    IReadOnlyDictionary<string, string> Environment,
    IReadOnlyList<string> Secrets)
{
    public const string InvalidSpec = "invalid_spec";
    public const string InvalidResources = "invalid_resources";
    public const string ResourcesExceedPoolMax = "resources_exceed_pool_max";

    private const int MaxEnvironment = 64;
    private const int MaxEnvironmentValue = 4096;

    private static readonly HashSet<string> s_fields = ["spec", "resources", "paths", "env", "secrets"];
    private static readonly HashSet<string> s_resourceFields = ["cpu", "memory", "pids", "timeout_ms", "network"];
    private static readonly HashSet<string> s_pathFields = ["ro", "rw"];
    private static readonly HashSet<string> s_reservedEnvironment = ["PATH", "HOME", "LANG", "LD_PRELOAD", "LD_LIBRARY_PATH"];

    /// <summary>The request, or the failure to report: its code and a message that names the field.</summary>
    public static (SliceRequest? Request, EffectError? Error) Parse(JsonElement payload, SliceEffectConfig config, SlicePoolPolicy policy)
    {
        if (payload.ValueKind != JsonValueKind.Object)
        {
            return Fail(InvalidSpec, "the payload must be an object with a 'spec'");
        }
        if (Unknown(payload, s_fields, "payload") is { } unknown)
        {
            return Fail(InvalidSpec, unknown);
        }
        if (!payload.TryGetProperty("spec", out var spec) || spec.ValueKind != JsonValueKind.Object)
        {
            return Fail(InvalidSpec, "payload.spec must be an object (the slice spec runner-slice runs)");
        }
        string? runId = null;
        if (spec.TryGetProperty("run", out var run) && run.ValueKind == JsonValueKind.Object && run.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String)
        {
            runId = id.GetString();
        }

        var (resources, resourceError) = ParseResources(payload);
        if (resourceError is not null)
        {
            return Fail(InvalidResources, resourceError);
        }
        var effective = resources!.Or(policy.Defaults);
        if (SliceLimits.OverMaximum(effective, policy.Maximums) is { } over)
        {
            return Fail(ResourcesExceedPoolMax, over);
        }

        var (readOnly, readWrite, pathError) = ParsePaths(payload, config);
        if (pathError is not null)
        {
            return Fail(InvalidResources, pathError);
        }
        var (environment, environmentError) = ParseEnvironment(payload);
        if (environmentError is not null)
        {
            return Fail(InvalidResources, environmentError);
        }
        var secrets = new List<string>();
        if (payload.TryGetProperty("secrets", out var secretsNode))
        {
            if (secretsNode.ValueKind != JsonValueKind.Array)
            {
                return Fail(InvalidResources, "payload.secrets must be a list of secret names");
            }
            foreach (var item in secretsNode.EnumerateArray())
            {
                var name = item.ValueKind == JsonValueKind.String ? item.GetString()! : string.Empty;
                if (!config.Secrets.Contains(name, StringComparer.Ordinal))
                {
                    return Fail(InvalidResources, $"secret '{name}' is not one the effect allows (slice.secrets)");
                }
                secrets.Add(name);
            }
        }
        var specJson = Encoding.UTF8.GetBytes(spec.GetRawText());
        return (new SliceRequest(specJson, runId, effective, readOnly!, readWrite!, environment!, secrets), null);
    }

    private static (SliceResources?, string?) ParseResources(JsonElement payload)
    {
        if (!payload.TryGetProperty("resources", out var node))
        {
            return (SliceResources.Empty, null);
        }
        if (node.ValueKind != JsonValueKind.Object)
        {
            return (null, "payload.resources must be an object");
        }
        if (Unknown(node, s_resourceFields, "resources") is { } unknown)
        {
            return (null, unknown);
        }
        double? cpu = null;
        long? memory = null;
        int? pids = null;
        int? timeout = null;
        string? network = null;
        if (node.TryGetProperty("cpu", out var cpuNode))
        {
            if (cpuNode.ValueKind != JsonValueKind.Number || !cpuNode.TryGetDouble(out var value) || value < SliceLimits.MinCpu || value > SliceLimits.MaxCpu)
            {
                return (null, $"resources.cpu must be a number of cores in [{SliceLimits.MinCpu}, {SliceLimits.MaxCpu}], not {cpuNode.GetRawText()}");
            }
            cpu = value;
        }
        if (node.TryGetProperty("memory", out var memoryNode))
        {
            if (memoryNode.ValueKind != JsonValueKind.Number || !memoryNode.TryGetInt64(out var value) || value < SliceLimits.MinMemory)
            {
                return (null, $"resources.memory must be a number of bytes of at least {SliceLimits.MinMemory}, not {memoryNode.GetRawText()}");
            }
            memory = value;
        }
        if (node.TryGetProperty("pids", out var pidsNode))
        {
            if (pidsNode.ValueKind != JsonValueKind.Number || !pidsNode.TryGetInt32(out var value) || value < SliceLimits.MinPids || value > SliceLimits.MaxPids)
            {
                return (null, $"resources.pids must be an integer in [{SliceLimits.MinPids}, {SliceLimits.MaxPids}], not {pidsNode.GetRawText()}");
            }
            pids = value;
        }
        if (node.TryGetProperty("timeout_ms", out var timeoutNode))
        {
            if (timeoutNode.ValueKind != JsonValueKind.Number || !timeoutNode.TryGetInt32(out var value) || value < SliceLimits.MinTimeoutMs || value > SliceLimits.MaxTimeoutMs)
            {
                return (null, $"resources.timeout_ms must be an integer in [{SliceLimits.MinTimeoutMs}, {SliceLimits.MaxTimeoutMs}], not {timeoutNode.GetRawText()}");
            }
            timeout = value;
        }
        if (node.TryGetProperty("network", out var networkNode))
        {
            network = networkNode.ValueKind == JsonValueKind.String ? networkNode.GetString() : null;
            if (network is not (SliceResources.NetworkNone or SliceResources.NetworkHost))
            {
                return (null, $"resources.network must be 'none' or 'host', not {networkNode.GetRawText()}");
            }
        }
        return (new SliceResources(cpu, memory, pids, timeout, network), null);
    }

    private static (List<string>?, List<string>?, string?) ParsePaths(JsonElement payload, SliceEffectConfig config)
    {
        var readOnly = new List<string>();
        var readWrite = new List<string>();
        if (!payload.TryGetProperty("paths", out var node))
        {
            return (readOnly, readWrite, null);
        }
        if (node.ValueKind != JsonValueKind.Object)
        {
            return (null, null, "payload.paths must be an object with 'ro' and/or 'rw'");
        }
        if (Unknown(node, s_pathFields, "paths") is { } unknown)
        {
            return (null, null, unknown);
        }
        foreach (var (key, roots, into) in new[] { ("ro", config.ReadOnlyRoots.Concat(config.ReadWriteRoots).ToList(), readOnly), ("rw", config.ReadWriteRoots.ToList(), readWrite) })
        {
            if (!node.TryGetProperty(key, out var list))
            {
                continue;
            }
            if (list.ValueKind != JsonValueKind.Array)
            {
                return (null, null, $"paths.{key} must be a list of absolute paths");
            }
            foreach (var item in list.EnumerateArray())
            {
                var path = item.ValueKind == JsonValueKind.String ? item.GetString()! : item.GetRawText();
                if (SliceLimits.PathProblem(path) is { } problem)
                {
                    return (null, null, $"paths.{key}: {problem}");
                }
                if (!SliceLimits.Under(path, roots))
                {
                    var allowed = roots.Count == 0 ? "none are allowed" : "allowed: " + string.Join(", ", roots);
                    return (null, null, $"paths.{key}: '{path}' is outside the allowed roots ({allowed})");
                }
                into.Add(path.TrimEnd('/'));
            }
        }
        return (readOnly, readWrite, null);
    }

    private static (Dictionary<string, string>?, string?) ParseEnvironment(JsonElement payload)
    {
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!payload.TryGetProperty("env", out var node))
        {
            return (environment, null);
        }
        if (node.ValueKind != JsonValueKind.Object)
        {
            return (null, "payload.env must be an object of name to string");
        }
        foreach (var property in node.EnumerateObject())
        {
            var name = property.Name;
            if (name.Length is 0 or > 128 || !(char.IsAsciiLetterUpper(name[0]) || name[0] == '_') || !name.All(c => char.IsAsciiLetterUpper(c) || char.IsAsciiDigit(c) || c == '_'))
            {
                return (null, $"env: '{name}' is not a valid name (A-Z, 0-9, _)");
            }
            if (s_reservedEnvironment.Contains(name))
            {
                return (null, $"env: '{name}' is set by the launcher");
            }
            if (property.Value.ValueKind != JsonValueKind.String || property.Value.GetString() is not { Length: <= MaxEnvironmentValue } value || value.Any(char.IsControl))
            {
                return (null, $"env.{name} must be a string of at most {MaxEnvironmentValue} characters without control characters");
            }
            environment[name] = value;
        }
        return environment.Count > MaxEnvironment ? (null, $"env has more than {MaxEnvironment} variables") : (environment, null);
    }

    private static string? Unknown(JsonElement node, HashSet<string> known, string what)
    {
        foreach (var property in node.EnumerateObject())
        {
            if (!known.Contains(property.Name))
            {
                return $"{what}: unknown field '{property.Name}' (expected {string.Join(", ", known)})";
            }
        }
        return null;
    }

    private static (SliceRequest?, EffectError?) Fail(string code, string message) => (null, new EffectError(code, message));
}
