using System.Globalization;
using YamlDotNet.RepresentationModel;

namespace Runner.Core.Manifests;

internal static partial class ManifestParser
{
    private static readonly HashSet<string> s_sliceFields = ["paths", "secrets", "pools"];
    private static readonly HashSet<string> s_slicePathFields = ["ro", "rw"];
    private static readonly HashSet<string> s_slicePoolFields = ["isolation", "defaults", "maximums"];
    private static readonly HashSet<string> s_resourceFields = ["cpu", "memory", "pids", "timeout_ms", "network"];

    /// <summary>Past the longest timeout any pool allows, so the slice's own timeout ends it first.</summary>
    private static int SliceBackstopMs(SliceEffectConfig slice) =>
        (int)Math.Min(3_600_000L, slice.Pools.Values.Append(slice.Policy).Max(p => (long)(p.Maximums.TimeoutMs ?? 0)) + 30_000);

    private static SliceEffectConfig ParseSlice(YamlMappingNode root, string file, Func<string, string?> environment, List<ManifestError> errors)
    {
        var policy = ParsePoolPolicy(root, SlicePoolPolicy.Default, "effect: ", file, errors);
        var block = OptionalBlock(Child(root, "slice"), "slice", s_sliceFields, file, errors);
        if (block is null)
        {
            return SliceEffectConfig.Default with { Policy = policy };
        }
        IReadOnlyList<string> readOnly = [];
        IReadOnlyList<string> readWrite = [];
        if (OptionalBlock(Child(block, "paths"), "slice.paths", s_slicePathFields, file, errors) is { } paths)
        {
            readOnly = AbsolutePaths(paths, "ro", file, environment, errors);
            readWrite = AbsolutePaths(paths, "rw", file, environment, errors);
        }
        var secrets = new List<string>();
        if (Child(block, "secrets") is { } secretsNode)
        {
            foreach (var (node, name) in Strings(secretsNode, "slice.secrets", file, errors))
            {
                if (!IsSecretName(name))
                {
                    errors.Add(Error(file, node, $"slice.secrets: '{name}' is not a plain file name"));
                }
                else
                {
                    secrets.Add(name);
                }
            }
        }
        var pools = new Dictionary<string, SlicePoolPolicy>(StringComparer.Ordinal);
        if (Child(block, "pools") is { } poolsNode)
        {
            if (poolsNode is not YamlMappingNode poolMap)
            {
                errors.Add(Error(file, poolsNode, "slice.pools must be a mapping of pool name to { isolation, defaults, maximums }"));
            }
            else
            {
                foreach (var (key, value) in poolMap.Children)
                {
                    var name = (key as YamlScalarNode)?.Value ?? string.Empty;
                    if (Subjects.SubjectPattern.Validate(name, allowWildcards: false) is { } problem)
                    {
                        errors.Add(Error(file, key, $"slice.pools: pool '{name}': {problem}"));
                    }
                    else if (OptionalBlock(value, $"slice.pools.{name}", s_slicePoolFields, file, errors) is { } poolBlock)
                    {
                        pools[name] = ParsePoolPolicy(poolBlock, policy, $"slice.pools.{name}.", file, errors);
                    }
                }
            }
        }
        return new SliceEffectConfig(readOnly, readWrite, secrets, policy, pools);
    }

    /// <summary><c>isolation</c>, <c>defaults</c> and <c>maximums</c> over <paramref name="inherited"/>; a default above its maximum is an error.</summary>
    private static SlicePoolPolicy ParsePoolPolicy(YamlMappingNode map, SlicePoolPolicy inherited, string prefix, string file, List<ManifestError> errors)
    {
        var isolated = inherited.Isolated;
        if (Child(map, "isolation") is { } isolationNode)
        {
            switch ((isolationNode as YamlScalarNode)?.Value)
            {
                case SlicePoolPolicy.IsolationRequired:
                    isolated = true;
                    break;
                case SlicePoolPolicy.IsolationNone:
                    isolated = false;
                    break;
                default:
                    errors.Add(Error(file, isolationNode, $"{prefix}isolation must be 'required' or 'none'"));
                    break;
            }
        }
        var defaults = ParseResources(Child(map, "defaults"), prefix + "defaults", file, errors).Or(inherited.Defaults);
        var maximums = ParseResources(Child(map, "maximums"), prefix + "maximums", file, errors).Or(inherited.Maximums);
        if (Child(map, "defaults") is { } node && SliceLimits.OverMaximum(defaults, maximums) is { } over)
        {
            errors.Add(Error(file, node, $"{prefix}defaults: {over}"));
        }
        return new SlicePoolPolicy(isolated, defaults, maximums);
    }

    private static SliceResources ParseResources(YamlNode? node, string what, string file, List<ManifestError> errors)
    {
        if (OptionalBlock(node, what, s_resourceFields, file, errors) is not { } map)
        {
            return SliceResources.Empty;
        }
        double? cpu = null;
        if (Child(map, "cpu") is { } cpuNode)
        {
            if ((cpuNode as YamlScalarNode)?.Value is { } text && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value is >= SliceLimits.MinCpu and <= SliceLimits.MaxCpu)
            {
                cpu = value;
            }
            else
            {
                errors.Add(Error(file, cpuNode, $"{what}.cpu must be a number of cores in [{SliceLimits.MinCpu}, {SliceLimits.MaxCpu}]"));
            }
        }
        long? memory = null;
        if (Child(map, "memory") is { } memoryNode)
        {
            if ((memoryNode as YamlScalarNode)?.Value is { } text && long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value >= SliceLimits.MinMemory)
            {
                memory = value;
            }
            else
            {
                errors.Add(Error(file, memoryNode, $"{what}.memory must be a number of bytes of at least {SliceLimits.MinMemory}"));
            }
        }
        var pids = Child(map, "pids") is null ? null : ReadInt(map, "pids", 0, SliceLimits.MinPids, SliceLimits.MaxPids, what + ".", file, errors);
        var timeout = Child(map, "timeout_ms") is null ? null : ReadInt(map, "timeout_ms", 0, SliceLimits.MinTimeoutMs, SliceLimits.MaxTimeoutMs, what + ".", file, errors);
        string? network = null;
        if (Child(map, "network") is { } networkNode)
        {
            network = (networkNode as YamlScalarNode)?.Value;
            if (network is not (SliceResources.NetworkNone or SliceResources.NetworkHost))
            {
                errors.Add(Error(file, networkNode, $"{what}.network must be 'none' or 'host'"));
                network = null;
            }
        }
        return new SliceResources(cpu, memory, pids, timeout, network);
    }

    /// <summary>Absolute, normalized paths; <c>${ENV}</c> and <c>${ENV:-default}</c> are filled in at load time.</summary>
    private static List<string> AbsolutePaths(YamlMappingNode map, string key, string file, Func<string, string?> environment, List<ManifestError> errors)
    {
        var paths = new List<string>();
        if (Child(map, key) is not { } node)
        {
            return paths;
        }
        foreach (var (item, written) in Strings(node, $"slice.paths.{key}", file, errors))
        {
            var problems = new List<string>();
            var path = UrlTemplate.ExpandEnvironment(written, environment, problems);
            if (path is null)
            {
                errors.AddRange(problems.Select(p => Error(file, item, $"slice.paths.{key}: {p}")));
            }
            else if (SliceLimits.PathProblem(path, root: true) is { } problem)
            {
                errors.Add(Error(file, item, $"slice.paths.{key}: {problem}"));
            }
            else
            {
                paths.Add(path.TrimEnd('/'));
            }
        }
        return paths;
    }

    private static IEnumerable<(YamlNode Node, string Value)> Strings(YamlNode node, string what, string file, List<ManifestError> errors)
    {
        if (node is not YamlSequenceNode sequence)
        {
            errors.Add(Error(file, node, $"{what} must be a list"));
            yield break;
        }
        foreach (var item in sequence.Children)
        {
            if (item is YamlScalarNode { Value: { Length: > 0 } value })
            {
                yield return (item, value);
            }
            else
            {
                errors.Add(Error(file, item, $"{what}: every item must be a non-empty string"));
            }
        }
    }

}
