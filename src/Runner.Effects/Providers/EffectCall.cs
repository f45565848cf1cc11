using Runner.Core.Manifests;
using Runner.Core.Transitions;

namespace Runner.Effects.Providers;

/// <summary>A command to perform, with its effect's declaration and the attempt (1-based).</summary>
internal sealed record EffectCall(EffectManifest Effect, CommandMessage Command, int Attempt)
{
    /// <summary>W3C trace context of the command, sent upstream as <c>traceparent</c>.</summary>
    public string? TraceParent => Command.TraceParent;
}

/// <summary>
/// Why an effect failed: a stable code, a human message, the upstream status when there was one,
/// and what the provider measured (a JSON object; a slice's exit code, usage and stderr tail).
/// </summary>
internal sealed record EffectError(string Code, string Message, int? Status = null, string? DetailsJson = null);

/// <summary>
/// The outcome of one attempt. A failure with a <see cref="RetryClass"/> (one of
/// <see cref="RetryOn"/>) may be retried when the manifest's <c>retry.on</c> lists it; a failure
/// without one is permanent.
/// </summary>
internal sealed record AttemptOutcome(bool Succeeded, string? ResultJson, EffectError? Error, string? RetryClass)
{
    public static AttemptOutcome Success(string resultJson) => new(true, resultJson, null, null);

    public static AttemptOutcome Permanent(string code, string message, int? status = null) => new(false, null, new EffectError(code, message, status), null);

    public static AttemptOutcome Permanent(EffectError error) => new(false, null, error, null);

    public static AttemptOutcome Transient(string retryClass, string code, string message, int? status = null) => new(false, null, new EffectError(code, message, status), retryClass);

    /// <summary>How long the upstream asked to be left alone (<c>Retry-After</c>), when it said.</summary>
    public TimeSpan? RetryAfter { get; init; }
}

/// <summary>The final outcome of an effect after every attempt it was allowed.</summary>
internal sealed record EffectExecution(bool Succeeded, string? ResultJson, EffectError? Error, int Attempts)
{
    /// <summary>
    /// Not an outcome: the command was waiting on an open circuit when its worker stopped taking
    /// commands, and goes back to the stream for any worker. No attempt was in flight.
    /// </summary>
    public bool HandedBack { get; init; }

    public static EffectExecution HandBack(int attempts) => new(false, null, null, attempts) { HandedBack = true };
}

/// <summary>Stable error codes of failed effect results.</summary>
internal static class EffectErrorCodes
{
    public const string CircuitOpen = "circuit_open";

    /// <summary>The effect's <c>give_up_after_ms</c> had passed before the command's first attempt; nothing was sent.</summary>
    public const string Expired = "expired";
    public const string Timeout = "timeout";
    public const string ConnectionFailed = "connection_failed";
    public const string SecretUnavailable = "secret_unavailable";
    public const string InvalidCommand = "invalid_command";
    public const string UnknownEffect = "unknown_effect";
    public const string UnsupportedProvider = "unsupported_provider";
    public const string ProviderError = "provider_error";
    public const string ResponseTooLarge = "response_too_large";

    /// <summary><c>http_{status}</c>, e.g. <c>http_402</c>.</summary>
    public static string Http(int status) => "http_" + status.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
