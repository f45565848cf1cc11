using System.Text.Json;
using Runner.Core.Keys;
using Runner.Core.Subjects;
using Runner.Messaging;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Runner.Sagas.Testing;

/// <summary>
/// Reads a golden file, YAML (<c>.yaml</c>, <c>.yml</c>: a mapping with a <c>steps</c> list) or
/// JSONL (<c>.jsonl</c>: a header object, then one step per line), and reports every problem with
/// its file and line. Both formats become JSON values first and are checked by the same code.
/// </summary>
internal static partial class GoldenFileReader
{
    public sealed record Result(GoldenFile? File, IReadOnlyList<string> Errors);

    private static readonly HashSet<string> s_headerFields = ["saga", "manifests", "tenant", "key", "initial_state", "description"];

    public static bool IsGoldenFile(string path) =>
        path.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase)
        || path.EndsWith(".yml", StringComparison.OrdinalIgnoreCase)
        || path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase);

    public static Result Read(string path, StreamNames streams)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return new Result(null, [$"{path}: cannot read: {ex.Message}"]);
        }
        var errors = new List<string>();
        var raw = path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) ? ReadJsonLines(path, text, errors) : ReadYaml(path, text, errors);
        if (raw is null)
        {
            return new Result(null, errors);
        }
        var file = Build(path, raw.Value, streams, errors);
        return new Result(errors.Count == 0 ? file : null, errors);
    }

    /// <summary>The header object with its line (and, from YAML, each header field's), and each step object with its line.</summary>
    private readonly record struct RawFile(JsonElement Header, int HeaderLine, List<(JsonElement Step, int Line)> Steps, Dictionary<string, int>? FieldLines = null);

    private static RawFile? ReadJsonLines(string path, string text, List<string> errors)
    {
        JsonElement? header = null;
        var headerLine = 0;
        var steps = new List<(JsonElement, int)>();
        var lines = text.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0)
            {
                continue;
            }
            JsonElement value;
            try
            {
                using var doc = JsonDocument.Parse(line);
                value = doc.RootElement.Clone();
            }
            catch (JsonException ex)
            {
                errors.Add($"{path}:{i + 1}: not JSON: {ex.Message}");
                continue;
            }
            if (header is null)
            {
                header = value;
                headerLine = i + 1;
            }
            else
            {
                steps.Add((value, i + 1));
            }
        }
        if (header is null && errors.Count == 0)
        {
            errors.Add($"{path}:1: empty: a JSONL golden file starts with a header line {{\"saga\": ...}}");
        }
        return errors.Count > 0 ? null : new RawFile(header!.Value, headerLine, steps);
    }

    private static RawFile? ReadYaml(string path, string text, List<string> errors)
    {
        var stream = new YamlStream();
        var scanner = new Scanner(new StringReader(text));
        try
        {
            stream.Load(new Parser(scanner));
            if (stream.Documents.Count != 1 || stream.Documents[0].RootNode is not YamlMappingNode root)
            {
                errors.Add($"{path}:1: a YAML golden file is one mapping: saga, optional manifests, tenant, key, initial_state, and steps");
                return null;
            }
            var header = new YamlMappingNode();
            var fieldLines = new Dictionary<string, int>(StringComparer.Ordinal);
            YamlNode? stepsNode = null;
            foreach (var (key, value) in root.Children)
            {
                if (key is YamlScalarNode { Value: "steps" })
                {
                    stepsNode = value;
                }
                else
                {
                    header.Add(key, value);
                    fieldLines[(key as YamlScalarNode)?.Value ?? string.Empty] = (int)key.Start.Line;
                }
            }
            if (stepsNode is not YamlSequenceNode sequence)
            {
                errors.Add($"{path}:{(stepsNode ?? root).Start.Line}: 'steps' must be a list of steps");
                return null;
            }
            var steps = new List<(JsonElement, int)>();
            foreach (var step in sequence.Children)
            {
                steps.Add((YamlJson.ToJson(step), (int)step.Start.Line));
            }
            return new RawFile(YamlJson.ToJson(header), (int)root.Start.Line, steps, fieldLines);
        }
        catch (YamlException ex)
        {
            errors.Add($"{path}:{ex.Start.Line}: YAML: {ex.InnerException?.Message ?? ex.Message}");
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentException)
        {
            // YamlDotNet reports some malformed input (a duplicate key, a broken flow collection) this way.
            errors.Add($"{path}:{scanner.CurrentPosition.Line}: YAML: {ex.Message}");
        }
        return null;
    }

    private static GoldenFile? Build(string path, RawFile raw, StreamNames streams, List<string> errors)
    {
        string At(string field) => $"{path}:{(raw.FieldLines is { } lines && lines.TryGetValue(field, out var line) ? line : raw.HeaderLine)}";
        if (raw.Header.ValueKind != JsonValueKind.Object)
        {
            errors.Add($"{At("")}: the header must be an object {{\"saga\": ...}}");
            return null;
        }
        // An unknown header field does not stop the steps from being checked: report them all at once.
        foreach (var property in raw.Header.EnumerateObject())
        {
            if (!s_headerFields.Contains(property.Name))
            {
                errors.Add($"{At(property.Name)}: header: unknown field '{property.Name}' (known: {string.Join(", ", s_headerFields)})");
            }
        }
        var headerErrorsThatAllowSteps = errors.Count;
        var saga = OptionalText(raw.Header, "saga", "header", At("saga"), errors);
        if (saga is null && !raw.Header.TryGetProperty("saga", out _))
        {
            errors.Add($"{At("saga")}: header: 'saga' (the saga's name) is required");
        }
        var manifests = OptionalText(raw.Header, "manifests", "header", At("manifests"), errors);
        var tenant = OptionalText(raw.Header, "tenant", "header", At("tenant"), errors) ?? GoldenFile.DefaultTenant;
        var key = OptionalText(raw.Header, "key", "header", At("key"), errors) ?? GoldenFile.DefaultKey;
        if (!StoreKeys.IsValidComponent(tenant) || tenant.Contains('.', StringComparison.Ordinal) || SubjectPattern.Validate(tenant, allowWildcards: false) is not null)
        {
            errors.Add($"{At("tenant")}: header: tenant must be one subject token of at most 256 characters");
        }
        if (!StoreKeys.IsValidComponent(key))
        {
            errors.Add($"{At("key")}: header: key must be a non-empty string of at most 256 characters");
        }
        var initialState = raw.Header.TryGetProperty("initial_state", out var state) && state.ValueKind != JsonValueKind.Null ? state.GetRawText() : null;
        if (saga is null || errors.Count > headerErrorsThatAllowSteps)
        {
            return null;
        }

        var context = new StepContext(saga, tenant, key, streams);
        var steps = new List<GoldenStep>(raw.Steps.Count);
        for (var i = 0; i < raw.Steps.Count; i++)
        {
            var (element, line) = raw.Steps[i];
            if (ReadStep(element, i + 1, line, context, $"{path}:{line}: step {i + 1}", errors) is { } step)
            {
                steps.Add(step);
            }
        }
        return new GoldenFile(path, saga, manifests, tenant, key, initialState, steps);
    }

    private static void Unknown(JsonElement obj, HashSet<string> known, string what, string at, List<string> errors)
    {
        foreach (var property in obj.EnumerateObject())
        {
            if (!known.Contains(property.Name))
            {
                errors.Add($"{at}: {what}: unknown field '{property.Name}' (known: {string.Join(", ", known)})");
            }
        }
    }

    /// <summary>An optional non-empty string field; null when absent (or wrong, with an error).</summary>
    private static string? OptionalText(JsonElement obj, string name, string what, string at, List<string> errors)
    {
        if (!obj.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 } text)
        {
            return text;
        }
        errors.Add($"{at}: {what}.{name} must be a non-empty string");
        return null;
    }
}
