using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Runner.Slice.Specs;

/// <summary>
/// Reads one YAML (or JSON) document into a mapping and collects every problem with its line,
/// so a spec or contract author fixes everything in one pass.
/// </summary>
internal sealed class YamlReader(string file)
{
    public List<SpecError> Errors { get; } = [];

    public string File { get; } = file;

    public YamlMappingNode? Load(string text, string what)
    {
        var stream = new YamlStream();
        var scanner = new Scanner(new StringReader(text));
        try
        {
            stream.Load(new Parser(scanner));
        }
        catch (YamlException ex)
        {
            Errors.Add(new SpecError(File, (int)ex.Start.Line, (int)ex.Start.Column, $"YAML syntax: {ex.InnerException?.Message ?? ex.Message}"));
            return null;
        }
        catch (InvalidOperationException ex)
        {
            Errors.Add(new SpecError(File, (int)scanner.CurrentPosition.Line, (int)scanner.CurrentPosition.Column, $"YAML syntax: {ex.Message}"));
            return null;
        }
        if (stream.Documents.Count != 1 || stream.Documents[0].RootNode is not YamlMappingNode root)
        {
            Errors.Add(new SpecError(File, 1, 1, $"a {what} is one YAML or JSON mapping"));
            return null;
        }
        return root;
    }

    public void Error(YamlNode node, string message) => Errors.Add(new SpecError(File, (int)node.Start.Line, (int)node.Start.Column, message));

    public static YamlNode? Child(YamlMappingNode map, string key) =>
        map.Children.TryGetValue(new YamlScalarNode(key), out var node) ? node : null;

    public void UnknownFields(YamlMappingNode map, IReadOnlySet<string> known, string what)
    {
        foreach (var (key, _) in map.Children)
        {
            var name = (key as YamlScalarNode)?.Value ?? string.Empty;
            if (!known.Contains(name))
            {
                Error(key, $"{what}: unknown field '{name}'");
            }
        }
    }

    /// <summary>A mapping child; null (and an error when present but not a mapping, or missing and required).</summary>
    public YamlMappingNode? Mapping(YamlMappingNode parent, string key, string what, bool required)
    {
        var node = Child(parent, key);
        if (node is null)
        {
            if (required)
            {
                Error(parent, $"{what}: missing '{key}'");
            }
            return null;
        }
        if (node is not YamlMappingNode map)
        {
            Error(node, $"{what}.{key} must be a mapping");
            return null;
        }
        return map;
    }

    /// <summary>A non-empty scalar child; null (and an error when present but not a scalar, or missing and required).</summary>
    public string? Text(YamlMappingNode parent, string key, string what, bool required)
    {
        var node = Child(parent, key);
        if (node is null)
        {
            if (required)
            {
                Error(parent, $"{what}: missing '{key}'");
            }
            return null;
        }
        if (node is not YamlScalarNode { Value: { Length: > 0 } value })
        {
            Error(node, $"{what}.{key} must be a non-empty string");
            return null;
        }
        return value;
    }

    public long? Integer(YamlMappingNode parent, string key, string what, long min, long max)
    {
        var node = Child(parent, key);
        if (node is null)
        {
            return null;
        }
        if (node is YamlScalarNode scalar && long.TryParse(scalar.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max)
        {
            return value;
        }
        Error(node, $"{what}.{key} must be an integer in [{min}, {max}]");
        return null;
    }

    public double? Number(YamlMappingNode parent, string key, string what, double min, double max)
    {
        var node = Child(parent, key);
        if (node is null)
        {
            return null;
        }
        if (node is YamlScalarNode scalar && double.TryParse(scalar.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var value)
            && double.IsFinite(value) && value >= min && value <= max)
        {
            return value;
        }
        Error(node, $"{what}.{key} must be a number in [{min}, {max}]");
        return null;
    }

    public bool? Boolean(YamlMappingNode parent, string key, string what)
    {
        var node = Child(parent, key);
        if (node is null)
        {
            return null;
        }
        if (node is YamlScalarNode scalar && bool.TryParse(scalar.Value, out var value))
        {
            return value;
        }
        Error(node, $"{what}.{key} must be true or false");
        return null;
    }
}
