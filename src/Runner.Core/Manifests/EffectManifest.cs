namespace Runner.Core.Manifests;

/// <summary>
/// An effect declaration: which provider performs it, with what policies. Effect workers build
/// one resilience pipeline per effect and upstream host from it.
/// </summary>
internal sealed record EffectManifest(string Name, string Provider, string? Pool, string File, int Line)
{
    public const string HttpProvider = "http";
    public const string GatewayProvider = "gateway";
    public const string SliceProvider = "slice";
    public const string PublishProvider = "publish";

    /// <summary>A command in flight mostly waits on round trips; a worker needs many of them to be efficient.</summary>
    public const int DefaultConcurrency = 64;

    public HttpEffectConfig? Http { get; init; }

    public GatewayEffectConfig? Gateway { get; init; }

    public SliceEffectConfig? Slice { get; init; }

    public PublishEffectConfig? Publish { get; init; }

    public RetryPolicy Retry { get; init; } = RetryPolicy.Default;

    /// <summary>Per attempt; retries get a fresh timeout each.</summary>
    public int TimeoutMs { get; init; } = 10_000;

    public CircuitBreakerPolicy CircuitBreaker { get; init; } = CircuitBreakerPolicy.Default;

    /// <summary>
    /// <c>give_up_after_ms</c>: no attempt starts once this long has passed since the command was
    /// stored, so a command held by an open circuit fails in the end. Null: no limit but the retry budget.
    /// </summary>
    public int? GiveUpAfterMs { get; init; }

    /// <summary>Commands of this effect one worker runs at once.</summary>
    public int Concurrency { get; init; } = DefaultConcurrency;
}

/// <summary>A header value: a literal, or the content of a secret file (never stored in git).</summary>
internal sealed record HeaderValue(string? Value, string? Secret)
{
    public static HeaderValue Literal(string value) => new(value, null);

    public static HeaderValue FromSecret(string name) => new(null, name);
}

/// <summary>
/// <c>http:</c> of an http effect. <see cref="Url"/> is a template: <c>{tenant}</c>,
/// <c>{command_id}</c>, <c>{correlation_id}</c>, <c>{saga}</c>, <c>{effect}</c> and
/// <c>{payload.a.b}</c> are replaced (URL-encoded) per command.
/// </summary>
internal sealed record HttpEffectConfig(string Url, string Method, IReadOnlyDictionary<string, HeaderValue> Headers);

/// <summary><c>gateway:</c> of a gateway effect: where the platform gateway takes aggregate commands.</summary>
internal sealed record GatewayEffectConfig(string Url, string? Command, IReadOnlyDictionary<string, HeaderValue> Headers);

/// <summary>
/// <c>publish:</c> of a publish effect: the subject (a template: <c>{tenant}</c>, <c>{saga}</c>,
/// <c>{payload.a.b}</c> … each filling exactly one subject token) an event is published to, and
/// the CloudEvent type (a template too; the effect name when absent).
/// </summary>
internal sealed record PublishEffectConfig(string Subject, string? Type);

/// <summary>What an attempt's failure must be for a retry to follow.</summary>
internal static class RetryOn
{
    public const string ServerError = "5xx";
    public const string TooManyRequests = "429";
    public const string Timeout = "timeout";
    public const string Connection = "connection";

    public static readonly IReadOnlySet<string> All = new HashSet<string>(StringComparer.Ordinal) { ServerError, TooManyRequests, Timeout, Connection };
}

/// <summary><c>retry:</c> — attempts in total (1 = no retry), back-off between them, and which failures retry.</summary>
internal sealed record RetryPolicy(int MaxAttempts, string Backoff, int BaseMs, int MaxMs, bool Jitter, IReadOnlySet<string> On)
{
    public const string Exponential = "exponential";
    public const string Linear = "linear";
    public const string Constant = "constant";

    public static readonly RetryPolicy Default = new(3, Exponential, 200, 10_000, true, RetryOn.All);
}

/// <summary>
/// <c>circuit_breaker:</c> — opens when the failure ratio over the sampling window passes the
/// threshold; while open, commands are held back (not failed) and one probe goes through per break.
/// </summary>
internal sealed record CircuitBreakerPolicy(double FailureRatio, int MinimumThroughput, int SamplingMs, int BreakMs)
{
    /// <summary>
    /// Opens only for an upstream failing under load (100 calls in 30 s, half of them failed), so a
    /// burst of commands meeting a blip is left to their own retries; probes again after 5 s, so a
    /// recovered upstream costs held commands seconds, not minutes (docs/effects.md says why).
    /// </summary>
    public static readonly CircuitBreakerPolicy Default = new(0.5, 100, 30_000, 5_000);
}
