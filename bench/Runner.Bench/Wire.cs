using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Runner.Bench;

/// <summary>Event bytes the bench publishes, and the markers it reads back.</summary>
internal static class Wire
{
    public const string Tenant = "acme";
    public const string Saga = "bench";

    public static string Subject(int key) => string.Create(CultureInfo.InvariantCulture, $"aggregate.{Tenant}.{Saga}.k{key}.ticked");

    /// <summary>A structured CloudEvent; data carries the phase, the event number and the publish time.</summary>
    public static byte[] Event(int phase, int n, long publishedUs) => Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture,
        $$$"""{"specversion":"1.0","id":"{{{phase}}}-{{{n}}}","source":"bench","type":"ticked","datacontenttype":"application/json","data":{"p":{{{phase}}},"n":{{{n}}},"t":{{{publishedUs}}}}}"""));

    public static bool TryParseEventId(string id, out int phase, out int n)
    {
        phase = -1;
        n = -1;
        var dash = id.IndexOf('-', StringComparison.Ordinal);
        return dash > 0
            && int.TryParse(id.AsSpan(0, dash), NumberStyles.None, CultureInfo.InvariantCulture, out phase)
            && int.TryParse(id.AsSpan(dash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out n);
    }

    /// <summary>Finds the top-level object <paramref name="container"/> and reads its "p" and "n".</summary>
    public static bool TryReadMarker(ReadOnlySpan<byte> json, string container, out int phase, out int n, out long publishedUs)
    {
        phase = -1;
        n = -1;
        publishedUs = -1;
        try
        {
            var reader = new Utf8JsonReader(json);
            while (reader.Read())
            {
                if (reader.TokenType != JsonTokenType.PropertyName || reader.CurrentDepth != 1)
                {
                    continue;
                }
                if (!reader.ValueTextEquals(container))
                {
                    reader.Read();
                    reader.Skip();
                    continue;
                }
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartObject)
                {
                    return false;
                }
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    var isP = reader.ValueTextEquals("p");
                    var isN = reader.ValueTextEquals("n");
                    var isT = reader.ValueTextEquals("t");
                    reader.Read();
                    if (isP && reader.TokenType == JsonTokenType.Number)
                    {
                        phase = reader.GetInt32();
                    }
                    else if (isN && reader.TokenType == JsonTokenType.Number)
                    {
                        n = reader.GetInt32();
                    }
                    else if (isT && reader.TokenType == JsonTokenType.Number)
                    {
                        publishedUs = reader.GetInt64();
                    }
                    else
                    {
                        reader.Skip();
                    }
                }
                return phase >= 0 && n >= 0;
            }
        }
        catch (JsonException)
        {
            return false;
        }
        return false;
    }
}
