using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Runner.Slice.Specs;
using YamlDotNet.RepresentationModel;

namespace Runner.Slice.Contracts;

/// <summary>Parses and validates a contract file, reporting every problem with its line.</summary>
internal static class ContractParser
{
    /// <summary>Patterns run on every record: a pathological one must not stall a slice.</summary>
    public static readonly TimeSpan PatternTimeout = TimeSpan.FromMilliseconds(50);

    private static readonly HashSet<string> s_top = ["contract", "version", "description", "fields"];
    private static readonly HashSet<string> s_field = ["type", "required", "nullable", "enum", "min", "max", "pattern", "max_length", "description"];

    public sealed record Result(Contract? Contract, IReadOnlyList<SpecError> Errors)
    {
        public bool Succeeded => Contract is not null && Errors.Count == 0;
    }

    public static Result Parse(string text, string file)
    {
        var reader = new YamlReader(file);
        var root = reader.Load(text, "contract");
        if (root is null)
        {
            return new Result(null, reader.Errors);
        }
        reader.UnknownFields(root, s_top, "contract");
        var name = reader.Text(root, "contract", "contract", required: true);
        var version = reader.Integer(root, "version", "contract", 1, int.MaxValue);
        if (version is null && YamlReader.Child(root, "version") is null)
        {
            reader.Error(root, "contract: missing 'version'");
        }
        var fields = new List<FieldRule>();
        if (reader.Mapping(root, "fields", "contract", required: true) is { } map)
        {
            if (map.Children.Count == 0)
            {
                reader.Error(map, "contract.fields must declare at least one field");
            }
            foreach (var (key, value) in map.Children)
            {
                if (ParseField(reader, key, value) is { } rule)
                {
                    fields.Add(rule);
                }
            }
        }
        if (reader.Errors.Count > 0 || name is null || version is null)
        {
            return new Result(null, reader.Errors);
        }
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
        return new Result(new Contract(name, (int)version, fields, hash, file), reader.Errors);
    }

    private static FieldRule? ParseField(YamlReader reader, YamlNode key, YamlNode value)
    {
        var name = (key as YamlScalarNode)?.Value;
        if (string.IsNullOrEmpty(name))
        {
            reader.Error(key, "a field name must be a non-empty string");
            return null;
        }
        if (value is not YamlMappingNode map)
        {
            reader.Error(value, $"field '{name}' must be a mapping with at least a 'type'");
            return null;
        }
        var what = "field " + name;
        reader.UnknownFields(map, s_field, what);
        var typeText = reader.Text(map, "type", what, required: true);
        FieldType? type = typeText switch
        {
            "string" => FieldType.String,
            "int" => FieldType.Int,
            "number" => FieldType.Number,
            "bool" => FieldType.Bool,
            "timestamp" => FieldType.Timestamp,
            null => null,
            _ => null,
        };
        if (typeText is not null && type is null)
        {
            reader.Error(YamlReader.Child(map, "type")!, $"{what}: type '{typeText}' is not one of string, int, number, bool, timestamp");
        }

        var min = reader.Number(map, "min", what, double.MinValue, double.MaxValue);
        var max = reader.Number(map, "max", what, double.MinValue, double.MaxValue);
        if ((min is not null || max is not null) && type is not (FieldType.Int or FieldType.Number))
        {
            reader.Error(map, $"{what}: min and max apply to int and number fields");
        }
        if (min > max)
        {
            reader.Error(map, $"{what}: min {min} is greater than max {max}");
        }

        Regex? pattern = null;
        if (reader.Text(map, "pattern", what, required: false) is { } patternText)
        {
            if (type is not FieldType.String)
            {
                reader.Error(YamlReader.Child(map, "pattern")!, $"{what}: a pattern applies to string fields");
            }
            try
            {
                pattern = new Regex(patternText, RegexOptions.CultureInvariant, PatternTimeout);
            }
            catch (ArgumentException ex)
            {
                reader.Error(YamlReader.Child(map, "pattern")!, $"{what}: pattern is not a valid regular expression: {ex.Message}");
            }
        }
        var maxLength = reader.Integer(map, "max_length", what, 0, int.MaxValue);
        if (maxLength is not null && type is not FieldType.String)
        {
            reader.Error(YamlReader.Child(map, "max_length")!, $"{what}: max_length applies to string fields");
        }

        List<string>? values = null;
        if (YamlReader.Child(map, "enum") is { } enumNode)
        {
            if (enumNode is YamlSequenceNode { Children.Count: > 0 } sequence && sequence.Children.All(c => c is YamlScalarNode))
            {
                values = sequence.Children.Select(c => ((YamlScalarNode)c).Value ?? string.Empty).ToList();
            }
            else
            {
                reader.Error(enumNode, $"{what}: enum must be a non-empty list of values");
            }
        }

        return type is null ? null : new FieldRule(name, type.Value, (int)key.Start.Line)
        {
            Required = reader.Boolean(map, "required", what) ?? false,
            Nullable = reader.Boolean(map, "nullable", what) ?? true,
            Enum = values,
            Min = min,
            Max = max,
            Pattern = pattern,
            MaxLength = (int?)maxLength,
        };
    }
}
