using System.Text.Json;
using Runner.Core.Manifests;
using Runner.Core.Transitions;
using Runner.Testing;

namespace Runner.Effects.Tests;

/// <summary>Manifests and commands for effect tests: fast retries, a breaker that stays out of the way.</summary>
internal static class Effects
{
    private static readonly IReadOnlyDictionary<string, HeaderValue> s_noHeaders = new Dictionary<string, HeaderValue>();

    /// <summary>Constant 5 ms back-off without jitter, retrying on everything.</summary>
    public static RetryPolicy Retry(int maxAttempts, params string[] on) =>
        new(maxAttempts, RetryPolicy.Constant, 5, 20, false, on.Length == 0 ? RetryOn.All : new HashSet<string>(on, StringComparer.Ordinal));

    /// <summary>A breaker that needs 1,000 calls to open: tests that are not about it never trip it.</summary>
    public static readonly CircuitBreakerPolicy LenientBreaker = new(0.5, 1000, 60_000, 60_000);

    /// <summary>Opens on two failures out of two, and stays open for a minute.</summary>
    public static readonly CircuitBreakerPolicy TwoStrikeBreaker = new(0.5, 2, 60_000, 60_000);

    /// <summary><c>payment.charge</c> posting to <c>{upstream}/charges</c>, one attempt: what worker tests run.</summary>
    public static EffectManifest Charge(Uri upstream, int concurrency = 16) =>
        new("payment.charge", EffectManifest.HttpProvider, null, "test.yaml", 1)
        {
            Http = new HttpEffectConfig(new Uri(upstream, "/charges").ToString(), "POST", s_noHeaders),
            Retry = RetryPolicy.Default with { MaxAttempts = 1 },
            Concurrency = concurrency,
        };

    public static EffectManifest Http(string url, string method = "POST", IReadOnlyDictionary<string, HeaderValue>? headers = null, string name = "payment.charge") =>
        new(name, EffectManifest.HttpProvider, null, "effects.yaml", 1)
        {
            Http = new HttpEffectConfig(url, method, headers ?? s_noHeaders),
            Retry = Retry(3),
            TimeoutMs = 10_000,
            CircuitBreaker = LenientBreaker,
        };

    public static EffectManifest Gateway(string url, string? command = null, IReadOnlyDictionary<string, HeaderValue>? headers = null, string name = "order.cancel") =>
        new(name, EffectManifest.GatewayProvider, null, "effects.yaml", 1)
        {
            Gateway = new GatewayEffectConfig(url, command, headers ?? s_noHeaders),
            Retry = Retry(3),
            TimeoutMs = 10_000,
            CircuitBreaker = LenientBreaker,
        };

    public static CommandMessage Command(string payloadJson = """{"order":{"id":"o/1","total":12.5}}""", string? traceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", string effect = "payment.charge")
    {
        using var document = JsonDocument.Parse(payloadJson);
        return new CommandMessage
        {
            CommandId = "cmd-" + Guid.NewGuid().ToString("N")[..12],
            Tenant = "acme",
            Effect = effect,
            Saga = "order-fulfillment",
            CorrelationId = "order 42",
            CausationId = "evt-7",
            Payload = document.RootElement.Clone(),
            CreatedAt = "2026-01-01T00:00:00Z",
            TraceParent = traceParent,
        };
    }

    /// <summary>A loopback URL where nothing listens, nor will (a port reserved for this test process): connections are refused at once.</summary>
    public static string DeadUrl() => $"http://127.0.0.1:{TestPorts.Reserve()}/";
}
