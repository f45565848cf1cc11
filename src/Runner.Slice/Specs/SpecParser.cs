using Runner.Slice.Expressions;
using YamlDotNet.RepresentationModel;

namespace Runner.Slice.Specs;

/// <summary>
/// Parses and validates a <c>slice: v1</c> spec (YAML, or JSON, which is YAML too). Every problem
/// is reported with its line; nothing runs from a spec with any error.
/// </summary>
internal static class SpecParser
{
    private static readonly HashSet<string> s_top = ["slice", "run", "source", "contract", "transforms", "sink", "dead_letter", "batch", "checkpoint", "event_time"];
    private static readonly HashSet<string> s_eventTime = ["field", "allowed_lateness_ms"];
    private static readonly HashSet<string> s_run = ["id", "job", "parent"];
    private static readonly HashSet<string> s_job = ["namespace", "name"];
    private static readonly HashSet<string> s_parent = ["run_id", "job"];
    private static readonly HashSet<string> s_endpoint = ["type", "path", "stream", "subject", "start_seq"];
    private static readonly HashSet<string> s_guardedEndpoint = [.. s_endpoint, "contract"];
    private static readonly HashSet<string> s_contract = ["schema", "on_violation", "max_violation_ratio"];
    private static readonly HashSet<string> s_batch = ["max_records", "max_wait_ms"];
    private static readonly HashSet<string> s_checkpoint = ["path", "every_batches"];
    private static readonly HashSet<string> s_endpointTypes = [Endpoint.Jsonl, Endpoint.Csv, Endpoint.JetStream];

    public sealed record Result(SliceSpec? Spec, IReadOnlyList<SpecError> Errors)
    {
        public bool Succeeded => Spec is not null && Errors.Count == 0;
    }

    public static Result Parse(string text, string file)
    {
        var reader = new YamlReader(file);
        var root = reader.Load(text, "slice spec");
        if (root is null)
        {
            return new Result(null, reader.Errors);
        }
        reader.UnknownFields(root, s_top, "spec");
        var version = reader.Text(root, "slice", "spec", required: true);
        if (version is not null && version != SliceSpec.Version)
        {
            reader.Error(YamlReader.Child(root, "slice")!, $"slice: '{version}' is not a known spec version (expected {SliceSpec.Version})");
        }

        var run = ParseRun(reader, root);
        var hasDeadLetter = YamlReader.Child(root, "dead_letter") is not null;
        var source = ParseEndpoint(reader, root, "source", required: true, hasDeadLetter);
        var transforms = ParseTransforms(reader, root);
        var sink = ParseEndpoint(reader, root, "sink", required: true, hasDeadLetter);
        var shorthand = ParseContract(reader, root, "contract", hasDeadLetter);
        if (YamlReader.Child(root, "contract") is { } topNode && YamlReader.Child(root, "sink") is YamlMappingNode sinkNode
            && YamlReader.Child(sinkNode, "contract") is { } sinkContractNode)
        {
            reader.Error(topNode, $"'contract' and 'sink.contract' (line {sinkContractNode.Start.Line}) are both given: the top-level 'contract' is shorthand for 'sink.contract'; declare the sink's contract once");
        }
        else if (shorthand is not null && sink is not null)
        {
            sink = sink with { Contract = shorthand };
        }
        var deadLetter = ParseEndpoint(reader, root, "dead_letter", required: false, hasDeadLetter);
        if (deadLetter is { Type: Endpoint.Csv } && YamlReader.Child(root, "dead_letter") is { } deadNode)
        {
            reader.Error(deadNode, "dead_letter.type must be jsonl or jetstream: dead-letter records carry nested errors and the original record");
        }
        var batch = ParseBatch(reader, root);
        var checkpoint = ParseCheckpoint(reader, root);
        var eventTime = ParseEventTime(reader, root);

        if (reader.Errors.Count > 0 || run is null || source is null || sink is null)
        {
            return new Result(null, reader.Errors);
        }
        return new Result(new SliceSpec(run, source, transforms, sink, deadLetter, batch, checkpoint, file) { EventTime = eventTime }, reader.Errors);
    }

    private static RunIdentity? ParseRun(YamlReader reader, YamlMappingNode root)
    {
        if (reader.Mapping(root, "run", "spec", required: true) is not { } run)
        {
            return null;
        }
        reader.UnknownFields(run, s_run, "run");
        var id = reader.Text(run, "id", "run", required: true);
        if (id is not null && (id.Length > 128 || id.Any(c => char.IsControl(c) || c is '/' or '\\' or ' ')))
        {
            reader.Error(YamlReader.Child(run, "id")!, "run.id must be at most 128 characters without spaces, slashes or control characters (it becomes part of file names)");
        }
        var job = ParseJob(reader, run, "run");
        string? parentRun = null;
        JobRef? parentJob = null;
        if (reader.Mapping(run, "parent", "run", required: false) is { } parent)
        {
            reader.UnknownFields(parent, s_parent, "run.parent");
            parentRun = reader.Text(parent, "run_id", "run.parent", required: true);
            parentJob = ParseJob(reader, parent, "run.parent");
        }
        return id is null || job is null ? null : new RunIdentity(id, job, parentRun, parentJob);
    }

    private static JobRef? ParseJob(YamlReader reader, YamlMappingNode parent, string what)
    {
        if (reader.Mapping(parent, "job", what, required: true) is not { } job)
        {
            return null;
        }
        reader.UnknownFields(job, s_job, what + ".job");
        var ns = reader.Text(job, "namespace", what + ".job", required: true);
        var name = reader.Text(job, "name", what + ".job", required: true);
        return ns is null || name is null ? null : new JobRef(ns, name);
    }

    /// <summary>A source, sink or dead-letter endpoint; sources and sinks may carry a contract.</summary>
    private static Endpoint? ParseEndpoint(YamlReader reader, YamlMappingNode root, string key, bool required, bool hasDeadLetter)
    {
        if (reader.Mapping(root, key, "spec", required) is not { } map)
        {
            return null;
        }
        var guarded = key is "source" or "sink";
        reader.UnknownFields(map, guarded ? s_guardedEndpoint : s_endpoint, key);
        var contract = guarded ? ParseContract(reader, map, key + ".contract", hasDeadLetter) : null;
        return ParseLocation(reader, map, key) is { } endpoint ? endpoint with { Contract = contract } : null;
    }

    private static Endpoint? ParseLocation(YamlReader reader, YamlMappingNode map, string key)
    {
        var type = reader.Text(map, "type", key, required: true);
        if (type is null)
        {
            return null;
        }
        if (!s_endpointTypes.Contains(type))
        {
            reader.Error(YamlReader.Child(map, "type")!, $"{key}.type '{type}' is not one of {string.Join(", ", s_endpointTypes)}");
            return null;
        }
        if (type == Endpoint.JetStream)
        {
            var subject = reader.Text(map, "subject", key, required: true);
            var stream = reader.Text(map, "stream", key, required: false);
            var start = reader.Integer(map, "start_seq", key, 1, long.MaxValue) ?? 1;
            if (YamlReader.Child(map, "path") is { } path)
            {
                reader.Error(path, $"{key}: a jetstream endpoint has a 'subject', not a 'path'");
            }
            if (subject is not null && (subject.Any(char.IsWhiteSpace) || subject.Split('.').Any(t => t.Length == 0)))
            {
                reader.Error(YamlReader.Child(map, "subject")!, $"{key}.subject '{subject}' is not a valid NATS subject");
            }
            return subject is null ? null : new Endpoint(type, null, stream, subject, (ulong)start);
        }
        var file = reader.Text(map, "path", key, required: true);
        foreach (var other in new[] { "stream", "subject", "start_seq" })
        {
            if (YamlReader.Child(map, other) is { } node)
            {
                reader.Error(node, $"{key}: a {type} endpoint has a 'path', not a '{other}'");
            }
        }
        return file is null ? null : new Endpoint(type, file, null, null, 0);
    }

    /// <summary>
    /// The <c>contract</c> child of <paramref name="parent"/>; <paramref name="key"/> is how the spec
    /// names it (<c>contract</c>, <c>source.contract</c>, <c>sink.contract</c>) in messages.
    /// </summary>
    private static ContractRef? ParseContract(YamlReader reader, YamlMappingNode parent, string key, bool hasDeadLetter)
    {
        var what = key.Contains('.', StringComparison.Ordinal) ? key[..key.LastIndexOf('.')] : "spec";
        if (reader.Mapping(parent, "contract", what, required: false) is not { } map)
        {
            return null;
        }
        reader.UnknownFields(map, s_contract, key);
        var schema = reader.Text(map, "schema", key, required: true);
        var onViolation = reader.Text(map, "on_violation", key, required: false) ?? ContractRef.DeadLetter;
        if (onViolation is not (ContractRef.DeadLetter or ContractRef.Fail))
        {
            reader.Error(YamlReader.Child(map, "on_violation")!, $"{key}.on_violation '{onViolation}' is not one of {ContractRef.DeadLetter}, {ContractRef.Fail}");
        }
        else if (onViolation == ContractRef.DeadLetter && !hasDeadLetter)
        {
            reader.Error(map, $"{key}.on_violation is dead_letter but the spec has no 'dead_letter' output");
        }
        var ratio = reader.Number(map, "max_violation_ratio", key, 0, 1) ?? 0;
        return schema is null ? null : new ContractRef(schema, onViolation, ratio)
        {
            Key = key,
            Line = (int)map.Start.Line,
            Column = (int)map.Start.Column,
        };
    }

    private static List<TransformSpec> ParseTransforms(YamlReader reader, YamlMappingNode root)
    {
        var transforms = new List<TransformSpec>();
        var node = YamlReader.Child(root, "transforms");
        if (node is null)
        {
            return transforms;
        }
        if (node is not YamlSequenceNode sequence)
        {
            reader.Error(node, "transforms must be a list");
            return transforms;
        }
        foreach (var item in sequence.Children)
        {
            if (item is not YamlMappingNode map)
            {
                reader.Error(item, "a transform is a mapping with a 'type'");
                continue;
            }
            var type = reader.Text(map, "type", "transform", required: true);
            var line = (int)map.Start.Line;
            switch (type)
            {
                case TransformSpec.Filter:
                    reader.UnknownFields(map, new HashSet<string> { "type", "where" }, "filter");
                    if (reader.Text(map, "where", "filter", required: true) is { } where)
                    {
                        CheckExpression(reader, YamlReader.Child(map, "where")!, "filter.where", where, filter: true);
                        transforms.Add(new TransformSpec(type, line) { Where = where });
                    }
                    break;
                case TransformSpec.Select:
                    reader.UnknownFields(map, new HashSet<string> { "type", "fields" }, "select");
                    if (YamlReader.Child(map, "fields") is YamlSequenceNode { Children.Count: > 0 } fields
                        && fields.Children.All(f => f is YamlScalarNode { Value.Length: > 0 }))
                    {
                        var names = fields.Children.Select(f => ((YamlScalarNode)f).Value!).ToList();
                        foreach (var duplicate in names.GroupBy(n => n, StringComparer.Ordinal).Where(g => g.Count() > 1))
                        {
                            reader.Error(map, $"select: field '{duplicate.Key}' is listed more than once");
                        }
                        transforms.Add(new TransformSpec(type, line) { Fields = names });
                    }
                    else
                    {
                        reader.Error(YamlReader.Child(map, "fields") ?? map, "select.fields must be a non-empty list of field names");
                    }
                    break;
                case TransformSpec.Map:
                    reader.UnknownFields(map, new HashSet<string> { "type", "set" }, "map");
                    if (YamlReader.Child(map, "set") is YamlMappingNode { Children.Count: > 0 } set
                        && set.Children.All(kv => kv.Key is YamlScalarNode { Value.Length: > 0 } && kv.Value is YamlScalarNode { Value.Length: > 0 }))
                    {
                        foreach (var (field, expression) in set.Children)
                        {
                            CheckExpression(reader, expression, $"map.set.{((YamlScalarNode)field).Value}", ((YamlScalarNode)expression).Value!, filter: false);
                        }
                        transforms.Add(new TransformSpec(type, line)
                        {
                            Set = set.Children.Select(kv => new KeyValuePair<string, string>(((YamlScalarNode)kv.Key).Value!, ((YamlScalarNode)kv.Value).Value!)).ToList(),
                        });
                    }
                    else
                    {
                        reader.Error(YamlReader.Child(map, "set") ?? map, "map.set must be a non-empty mapping of field names to expressions");
                    }
                    break;
                case null:
                    break;
                default:
                    reader.Error(YamlReader.Child(map, "type")!, $"transform type '{type}' is not one of {TransformSpec.Filter}, {TransformSpec.Select}, {TransformSpec.Map}");
                    break;
            }
        }
        return transforms;
    }

    /// <summary>Compiles an expression once to report its errors with the spec's line; any field name resolves.</summary>
    private static void CheckExpression(YamlReader reader, YamlNode node, string what, string source, bool filter)
    {
        var slots = new Dictionary<string, int>(StringComparer.Ordinal);
        int? Resolve(string name) => slots.TryGetValue(name, out var slot) ? slot : slots[name] = slots.Count;
        try
        {
            _ = filter ? ExpressionCompiler.CompileFilter(source, Resolve) : ExpressionCompiler.Compile(source, Resolve);
        }
        catch (ExpressionException ex)
        {
            reader.Error(node, $"{what}: '{source}': {ex.Message}");
        }
    }

    private static BatchSpec ParseBatch(YamlReader reader, YamlMappingNode root)
    {
        if (reader.Mapping(root, "batch", "spec", required: false) is not { } map)
        {
            return BatchSpec.Default;
        }
        reader.UnknownFields(map, s_batch, "batch");
        return new BatchSpec(
            (int)(reader.Integer(map, "max_records", "batch", 1, 1_000_000) ?? BatchSpec.Default.MaxRecords),
            (int)(reader.Integer(map, "max_wait_ms", "batch", 1, 600_000) ?? BatchSpec.Default.MaxWaitMs));
    }

    private static CheckpointSpec? ParseCheckpoint(YamlReader reader, YamlMappingNode root)
    {
        if (reader.Mapping(root, "checkpoint", "spec", required: false) is not { } map)
        {
            return null;
        }
        reader.UnknownFields(map, s_checkpoint, "checkpoint");
        var path = reader.Text(map, "path", "checkpoint", required: true);
        var every = (int)(reader.Integer(map, "every_batches", "checkpoint", 1, 1_000_000) ?? 16);
        return path is null ? null : new CheckpointSpec(path, every);
    }

    private static EventTimeSpec? ParseEventTime(YamlReader reader, YamlMappingNode root)
    {
        if (reader.Mapping(root, "event_time", "spec", required: false) is not { } map)
        {
            return null;
        }
        reader.UnknownFields(map, s_eventTime, "event_time");
        var field = reader.Text(map, "field", "event_time", required: true);
        var lateness = reader.Integer(map, "allowed_lateness_ms", "event_time", 0, long.MaxValue / 10_000) ?? 0;
        return field is null ? null : new EventTimeSpec(field, lateness);
    }
}
