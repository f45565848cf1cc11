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

/// <summary><c>circuit_breaker:</c> — opens when the failure ratio over the sampling window passes the threshold.</summary>
internal sealed record CircuitBreakerPolicy(double FailureRatio, int MinimumThroughput, int SamplingMs, int BreakMs)
{
    public static readonly CircuitBreakerPolicy Default = new(0.5, 10, 30_000, 30_000);
}
