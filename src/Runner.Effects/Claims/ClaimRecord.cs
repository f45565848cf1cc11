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

    /// <summary>The result CloudEvent exactly as published (JSON text), re-published byte for byte.</summary>
    [JsonPropertyName("result_event")] public string? ResultEvent { get; init; }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ClaimRecord))]
internal sealed partial class ClaimJsonContext : JsonSerializerContext
{
    /// <summary>
    /// The stored result event is JSON inside a JSON string: the default encoder would write each
    /// quote and non-ASCII character as <c>\uXXXX</c> and grow it up to six times. Only quotes,
    /// backslashes and control characters need escaping there.
    /// </summary>
    public static ClaimJsonContext Relaxed { get; } = new(new System.Text.Json.JsonSerializerOptions
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    });
}
