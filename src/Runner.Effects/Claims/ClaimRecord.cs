using System.Text.Json;
using System.Text.Json.Serialization;

namespace Runner.Effects.Claims;

/// <summary>
/// The global claim of one command in the <c>RUNNER_EFFECTS</c> bucket: who runs it and until
/// when, or — once completed — the result event to re-publish instead of running it again.
/// </summary>
internal sealed record ClaimRecord
{
    public const string Running = "running";
    public const string Completed = "completed";

    [JsonPropertyName("state")] public required string State { get; init; }

    /// <summary>
    /// Unique per execution: lets a worker recognise its own write when the server applied it but
    /// the reply was lost, instead of mistaking it for another worker's.
    /// </summary>
    [JsonPropertyName("run")] public required string Run { get; init; }
    [JsonPropertyName("worker")] public required string Worker { get; init; }

    /// <summary>How many times execution has started (1, then +1 per takeover).</summary>
    [JsonPropertyName("attempt")] public int Attempt { get; init; }

    /// <summary>Unix ms after which a running claim counts as abandoned (its worker died).</summary>
    [JsonPropertyName("lease_until")] public long LeaseUntilMs { get; init; }

    [JsonPropertyName("claimed_at")] public long ClaimedAtMs { get; init; }
    [JsonPropertyName("completed_at")] public long? CompletedAtMs { get; init; }

    /// <summary>Subject the result was published to.</summary>
    [JsonPropertyName("result_subject")] public string? ResultSubject { get; init; }

    /// <summary>
    /// The result CloudEvent exactly as published (UTF-8 JSON), re-published byte for byte. Stored as
    /// a JSON value, not a string, so it is neither escaped again nor grown on the way into the bucket.
    /// </summary>
    [JsonPropertyName("result_event")]
    [JsonConverter(typeof(RawJsonConverter))]
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1819:Properties should not return arrays", Justification = "The event's bytes as published; never changed after it is built.")]
    public byte[]? ResultEvent { get; init; }
}

/// <summary>Writes UTF-8 bytes that hold JSON as that JSON, and reads it back as the exact bytes.</summary>
internal sealed class RawJsonConverter : JsonConverter<byte[]>
{
    public override byte[]? Read(ref Utf8JsonReader reader, Type typeToConvert, System.Text.Json.JsonSerializerOptions options)
    {
        using var document = System.Text.Json.JsonDocument.ParseValue(ref reader);
        return System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(document.RootElement).ToArray();
    }

    public override void Write(System.Text.Json.Utf8JsonWriter writer, byte[] value, System.Text.Json.JsonSerializerOptions options) =>
        writer.WriteRawValue(value, skipInputValidation: true);
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ClaimRecord))]
internal sealed partial class ClaimJsonContext : JsonSerializerContext
{
    /// <summary>Claim fields (worker ids) are written with only the escaping JSON needs, not the HTML-safe default.</summary>
    public static ClaimJsonContext Relaxed { get; } = new(new System.Text.Json.JsonSerializerOptions
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    });
}
