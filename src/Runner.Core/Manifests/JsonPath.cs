using System.Globalization;
using System.Text.Json;

namespace Runner.Core.Manifests;

/// <summary>A dotted path with optional array indexes: <c>data.items[0].id</c>.</summary>
internal sealed class JsonPath
{
    public required IReadOnlyList<Segment> Segments { get; init; }

    internal readonly record struct Segment(string Name, int? Index);

    public static bool TryParse(string text, out JsonPath? path, out string? error)
    {
        path = null;
        error = null;
        var segments = new List<Segment>();
        foreach (var part in text.Split('.'))
        {
            var name = part;
            int? index = null;
            var bracket = part.IndexOf('[', StringComparison.Ordinal);
            if (bracket >= 0)
            {
                if (!part.EndsWith(']') || !int.TryParse(part[(bracket + 1)..^1], NumberStyles.None, CultureInfo.InvariantCulture, out var i))
                {
                    error = $"bad index in '{part}'";
                    return false;
                }
                name = part[..bracket];
                index = i;
            }
            if (name.Length == 0)
            {
                error = "empty path segment";
                return false;
            }
            segments.Add(new Segment(name, index));
        }
        path = new JsonPath { Segments = segments };
        return true;
    }

    /// <summary>The value at the path as a string (numbers and booleans as their JSON text), or null.</summary>
    public string? Select(JsonElement root, int skip)
    {
        var current = root;
        for (var i = 0; i < Segments.Count; i++)
        {
            var segment = Segments[i];
            if (i >= skip)
            {
                if (current.ValueKind != JsonValueKind.Object || !current.TryGetProperty(segment.Name, out current))
                {
                    return null;
                }
            }
            if (segment.Index is { } index)
            {
                if (current.ValueKind != JsonValueKind.Array || index >= current.GetArrayLength())
                {
                    return null;
                }
                current = current[index];
            }
        }
        if (current.ValueKind == JsonValueKind.String)
        {
            try
            {
                return current.GetString() is { Length: > 0 } text ? text : null;
            }
            catch (InvalidOperationException)
            {
                return null; // not valid Unicode: no usable key
            }
        }
        return current.ValueKind switch
        {
            JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False => current.GetRawText(),
            _ => null,
        };
    }
}
