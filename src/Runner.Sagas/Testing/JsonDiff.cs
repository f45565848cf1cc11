using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Runner.Sagas.Testing;

/// <summary>
/// The differences between two JSON values, one line per differing leaf, named by a path
/// (<c>state.items[2].total: expected 30, got 40</c>). Objects compare by property name in any
/// order, arrays by position, numbers by value (<c>1</c> equals <c>1.0</c>).
/// </summary>
internal static class JsonDiff
{
    private const int ShownChars = 160;

    // Diffs are read by people: keep non-ASCII text and quotes as they are.
    private static readonly JavaScriptEncoder s_relaxed = JavaScriptEncoder.UnsafeRelaxedJsonEscaping;

    public static void Compare(string path, string expectedJson, string actualJson, List<string> differences)
    {
        using var expected = JsonDocument.Parse(expectedJson);
        using var actual = JsonDocument.Parse(actualJson);
        Compare(path, expected.RootElement, actual.RootElement, differences);
    }

    public static void Compare(string path, JsonElement expected, JsonElement actual, List<string> differences)
    {
        if (expected.ValueKind == JsonValueKind.Object && actual.ValueKind == JsonValueKind.Object)
        {
            foreach (var property in expected.EnumerateObject())
            {
                var at = Member(path, property.Name);
                if (actual.TryGetProperty(property.Name, out var value))
                {
                    Compare(at, property.Value, value, differences);
                }
                else
                {
                    differences.Add($"{at}: missing, expected {Show(property.Value)}");
                }
            }
            foreach (var property in actual.EnumerateObject())
            {
                if (!expected.TryGetProperty(property.Name, out _))
                {
                    differences.Add($"{Member(path, property.Name)}: unexpected {Show(property.Value)}");
                }
            }
            return;
        }
        if (expected.ValueKind == JsonValueKind.Array && actual.ValueKind == JsonValueKind.Array)
        {
            var expectedLength = expected.GetArrayLength();
            var actualLength = actual.GetArrayLength();
            for (var i = 0; i < Math.Max(expectedLength, actualLength); i++)
            {
                var at = $"{path}[{i}]";
                if (i >= actualLength)
                {
                    differences.Add($"{at}: missing, expected {Show(expected[i])}");
                }
                else if (i >= expectedLength)
                {
                    differences.Add($"{at}: unexpected {Show(actual[i])}");
                }
                else
                {
                    Compare(at, expected[i], actual[i], differences);
                }
            }
            return;
        }
        if (!JsonElement.DeepEquals(expected, actual))
        {
            differences.Add($"{path}: expected {Show(expected)}, got {Show(actual)}");
        }
    }

    public static bool Equal(string expectedJson, string actualJson)
    {
        using var expected = JsonDocument.Parse(expectedJson);
        using var actual = JsonDocument.Parse(actualJson);
        return JsonElement.DeepEquals(expected.RootElement, actual.RootElement);
    }

    /// <summary>Compact JSON text of a value, cut to a readable length.</summary>
    public static string Show(JsonElement value)
    {
        var buffer = new ArrayBufferWriter<byte>(64);
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = s_relaxed }))
        {
            value.WriteTo(writer);
        }
        var text = Encoding.UTF8.GetString(buffer.WrittenSpan);
        return text.Length <= ShownChars ? text : text[..ShownChars] + "…";
    }

    public static string Show(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return Show(doc.RootElement);
    }

    /// <summary><c>path.name</c>, or <c>path["odd name"]</c> when the name is not a plain identifier.</summary>
    private static string Member(string path, string name)
    {
        var plain = name.Length > 0 && !char.IsAsciiDigit(name[0]);
        foreach (var c in name)
        {
            plain &= char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '$';
        }
        return plain ? $"{path}.{name}" : $"{path}[\"{JsonEncodedText.Encode(name, s_relaxed)}\"]";
    }
}
