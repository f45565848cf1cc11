using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Runner.Core.Manifests;

/// <summary>
/// Parses manifest YAML text (one or more documents) into sagas and effects, collecting every
/// problem with its line instead of stopping at the first. Does no I/O: scripts are checked by
/// the loader that owns the file system and the script engine.
/// </summary>
internal static partial class ManifestParser
{
    private static readonly HashSet<string> s_sagaFields = ["kind", "name", "description", "script", "triggers", "limits", "version", "migrate"];
    private static readonly HashSet<string> s_triggerFields = ["stream", "subject", "correlation"];
    private static readonly HashSet<string> s_limitFields = ["timeout_ms", "max_statements", "memory_mb", "recursion", "max_array_size", "regex_timeout_ms", "max_output_bytes"];

    internal sealed class Result
    {
        public List<SagaManifest> Sagas { get; } = [];
        public List<EffectManifest> Effects { get; } = [];
        public List<ManifestError> Errors { get; } = [];
    }

    /// <param name="environment">
    /// Looks up the <c>${NAME}</c> references of effect URLs; the parser reads no environment of
    /// its own, so without one every reference takes its default or is an error.
    /// </param>
    public static Result Parse(string yaml, string file, Func<string, string?>? environment = null)
    {
        environment ??= static _ => null;
        var result = new Result();
        var stream = new YamlStream();
        var scanner = new Scanner(new StringReader(yaml));
        try
        {
            stream.Load(new Parser(scanner));
        }
        catch (YamlException ex)
        {
            result.Errors.Add(new ManifestError(file, (int)ex.Start.Line, (int)ex.Start.Column, $"YAML syntax: {ex.InnerException?.Message ?? ex.Message}"));
            return result;
        }
        catch (InvalidOperationException ex)
        {
            // YamlDotNet reports some malformed flow collections this way instead of a YamlException.
            var at = scanner.CurrentPosition;
            result.Errors.Add(new ManifestError(file, (int)at.Line, (int)at.Column, $"YAML syntax: {ex.Message}"));
            return result;
        }

        foreach (var document in stream.Documents)
        {
            if (document.RootNode is YamlScalarNode { Value: null or "" })
            {
                continue;
            }
            if (document.RootNode is not YamlMappingNode root)
            {
                result.Errors.Add(Error(file, document.RootNode, "a manifest must be a mapping with a 'kind'"));
                continue;
            }
            var kind = Scalar(root, "kind");
            switch (kind)
            {
                case "saga":
                    ParseSaga(root, file, result);
                    break;
                case "effect":
                    ParseEffect(root, file, environment, result);
                    break;
                case null:
                    result.Errors.Add(Error(file, root, "missing 'kind' (saga or effect)"));
                    break;
                default:
                    result.Errors.Add(Error(file, Child(root, "kind")!, $"unknown kind '{kind}' (expected saga or effect)"));
                    break;
            }
        }
        return result;
    }

    private static void ParseSaga(YamlMappingNode root, string file, Result result)
    {
        var errors = result.Errors;
        UnknownFields(root, s_sagaFields, file, "saga", errors);
        var name = RequiredName(root, file, errors);
        var script = Scalar(root, "script");
        if (string.IsNullOrWhiteSpace(script))
        {
            errors.Add(Error(file, root, "saga: missing 'script'"));
        }

        var triggers = new List<SagaTrigger>();
        var triggersNode = Child(root, "triggers");
        if (triggersNode is not YamlSequenceNode { Children.Count: > 0 } sequence)
        {
            errors.Add(Error(file, triggersNode ?? root, "saga: 'triggers' must be a non-empty list"));
        }
        else
        {
            foreach (var item in sequence.Children)
            {
                if (ParseTrigger(item, file, errors) is { } trigger)
                {
                    triggers.Add(trigger);
                }
            }
        }

        var limits = ParseLimits(Child(root, "limits"), file, errors);
        var version = Scalar(root, "version");
        if (Child(root, "version") is { } versionNode && string.IsNullOrWhiteSpace(version))
        {
            errors.Add(Error(file, versionNode, "saga: 'version' must be a non-empty scalar"));
        }
        var migrate = false;
        if (Child(root, "migrate") is { } migrateNode && !bool.TryParse(Scalar(root, "migrate"), out migrate))
        {
            errors.Add(Error(file, migrateNode, "saga: 'migrate' must be true or false"));
        }
        if (migrate && string.IsNullOrWhiteSpace(version))
        {
            errors.Add(Error(file, Child(root, "migrate")!, "saga: 'migrate: true' needs a 'version' naming the change"));
        }
        if (name is not null && script is not null)
        {
            result.Sagas.Add(new SagaManifest(name, script, triggers, limits, file, Line(root)) { Version = version, Migrate = migrate });
        }
    }

    private static SagaTrigger? ParseTrigger(YamlNode node, string file, List<ManifestError> errors)
    {
        if (node is not YamlMappingNode map)
        {
            errors.Add(Error(file, node, "trigger must be a mapping with stream, subject and correlation"));
            return null;
        }
        UnknownFields(map, s_triggerFields, file, "trigger", errors);
        var stream = Scalar(map, "stream");
        var subject = Scalar(map, "subject");
        var correlation = Scalar(map, "correlation");
        var ok = true;
        if (string.IsNullOrWhiteSpace(stream))
        {
            errors.Add(Error(file, map, "trigger: missing 'stream'"));
            ok = false;
        }
        Subjects.SubjectPattern? pattern = null;
        if (string.IsNullOrWhiteSpace(subject))
        {
            errors.Add(Error(file, map, "trigger: missing 'subject'"));
            ok = false;
        }
        else if (!Subjects.SubjectPattern.TryParse(subject, out pattern, out var subjectError))
        {
            errors.Add(Error(file, Child(map, "subject")!, $"trigger: {subjectError}"));
            ok = false;
        }
        CorrelationExpression? expression = null;
        if (string.IsNullOrWhiteSpace(correlation))
        {
            errors.Add(Error(file, map, "trigger: missing 'correlation'"));
            ok = false;
        }
        else if (!CorrelationExpression.TryParse(correlation, out expression, out var correlationError))
        {
            errors.Add(Error(file, Child(map, "correlation")!, $"trigger: {correlationError}"));
            ok = false;
        }
        return ok ? new SagaTrigger(stream!, pattern!, expression!, Line(map)) : null;
    }

    private static ScriptLimits ParseLimits(YamlNode? node, string file, List<ManifestError> errors)
    {
        var limits = ScriptLimits.Default;
        if (OptionalBlock(node, "limits", s_limitFields, file, errors) is not { } map)
        {
            return limits;
        }
        return new ScriptLimits
        {
            TimeoutMs = ReadInt(map, "timeout_ms", limits.TimeoutMs, 1, 60_000, "limits.", file, errors) ?? limits.TimeoutMs,
            MaxStatements = ReadInt(map, "max_statements", limits.MaxStatements, 100, 100_000_000, "limits.", file, errors) ?? limits.MaxStatements,
            MemoryMb = ReadInt(map, "memory_mb", limits.MemoryMb, 1, 1024, "limits.", file, errors) ?? limits.MemoryMb,
            Recursion = ReadInt(map, "recursion", limits.Recursion, 4, 10_000, "limits.", file, errors) ?? limits.Recursion,
            MaxArraySize = ReadInt(map, "max_array_size", limits.MaxArraySize, 16, 10_000_000, "limits.", file, errors) ?? limits.MaxArraySize,
            RegexTimeoutMs = ReadInt(map, "regex_timeout_ms", limits.RegexTimeoutMs, 1, 10_000, "limits.", file, errors) ?? limits.RegexTimeoutMs,
            MaxOutputBytes = ReadInt(map, "max_output_bytes", limits.MaxOutputBytes, 1024, 16 * 1024 * 1024, "limits.", file, errors) ?? limits.MaxOutputBytes,
        };
    }

    /// <summary>
    /// A block that may be left out: null when absent, or when it is not a mapping (reported);
    /// otherwise the mapping, with its unknown fields reported.
    /// </summary>
    private static YamlMappingNode? OptionalBlock(YamlNode? node, string what, HashSet<string> fields, string file, List<ManifestError> errors)
    {
        if (node is null)
        {
            return null;
        }
        if (node is not YamlMappingNode map)
        {
            errors.Add(Error(file, node, $"'{what}' must be a mapping"));
            return null;
        }
        UnknownFields(map, fields, file, what, errors);
        return map;
    }

    private static string? RequiredName(YamlMappingNode root, string file, List<ManifestError> errors)
    {
        var name = Scalar(root, "name");
        if (string.IsNullOrWhiteSpace(name))
        {
            errors.Add(Error(file, root, "missing 'name'"));
            return null;
        }
        if (!NamePattern().IsMatch(name))
        {
            errors.Add(Error(file, Child(root, "name")!, $"name '{name}' must be lowercase letters, digits, '-', '_' or '.', starting with a letter"));
            return null;
        }
        return name;
    }

    private static void UnknownFields(YamlMappingNode map, HashSet<string> known, string file, string what, List<ManifestError> errors)
    {
        foreach (var (key, _) in map.Children)
        {
            var name = (key as YamlScalarNode)?.Value ?? string.Empty;
            if (!known.Contains(name))
            {
                errors.Add(Error(file, key, $"{what}: unknown field '{name}'"));
            }
        }
    }

    private static YamlNode? Child(YamlMappingNode map, string key) =>
        map.Children.TryGetValue(new YamlScalarNode(key), out var node) ? node : null;

    private static string? Scalar(YamlMappingNode map, string key) => (Child(map, key) as YamlScalarNode)?.Value;

    private static int Line(YamlNode node) => (int)node.Start.Line;

    private static ManifestError Error(string file, YamlNode node, string message) =>
        new(file, (int)node.Start.Line, (int)node.Start.Column, message);

    [System.Text.RegularExpressions.GeneratedRegex("^[a-z][a-z0-9._-]{0,63}$")]
    private static partial System.Text.RegularExpressions.Regex NamePattern();
}
