using Runner.Core.Manifests;

namespace Runner.Core.Tests.Manifests;

public sealed class EffectManifestParserTests
{
    private const string File = "manifests/effects.yaml";

    private static readonly Func<string, string?> s_noEnvironment = _ => null;

    private static EffectManifest Valid(string yaml, Func<string, string?>? environment = null)
    {
        var result = ManifestParser.Parse(yaml, File, environment ?? s_noEnvironment);
        Assert.True(result.Errors.Count == 0, "expected no errors, got: " + string.Join("; ", result.Errors));
        return Assert.Single(result.Effects);
    }

    private static List<(int Line, string Message)> Errors(string yaml, Func<string, string?>? environment = null) =>
        ManifestParser.Parse(yaml, File, environment ?? s_noEnvironment).Errors.Select(e => (e.Line, e.Message)).ToList();

    /// <summary>An http effect whose line 5 is <paramref name="line"/>.</summary>
    private static string HttpEffectWith(string line) => $$"""
        kind: effect
        name: payment.charge
        provider: http
        http: { url: "http://payments.internal/charges" }
        {{line}}
        """;

    [Fact]
    public void Http_effect_with_every_field_is_parsed()
    {
        var effect = Valid("""
            kind: effect
            name: payment.charge
            provider: http
            pool: eu-west
            http:
              url: "http://payments.internal/tenants/{tenant}/charges/{command_id}?order={payload.order.id}"
              method: put
              headers:
                x-api-key: { secret: payments_key }
                X-Source: runner
            retry:
              max_attempts: 7
              backoff: linear
              base_ms: 50
              max_ms: 2000
              jitter: false
              on: [5xx, timeout]
            timeout_ms: 2500
            give_up_after_ms: 600000
            concurrency: 4
            circuit_breaker:
              failure_ratio: 0.25
              minimum_throughput: 20
              sampling_ms: 60000
              break_ms: 15000
            """);

        Assert.Equal(("payment.charge", "http", "eu-west"), (effect.Name, effect.Provider, effect.Pool));
        Assert.Equal("http://payments.internal/tenants/{tenant}/charges/{command_id}?order={payload.order.id}", effect.Http!.Url);
        Assert.Equal("PUT", effect.Http.Method);
        Assert.Equal(HeaderValue.FromSecret("payments_key"), effect.Http.Headers["x-api-key"]);
        Assert.Equal(HeaderValue.Literal("runner"), effect.Http.Headers["x-source"]);
        Assert.Null(effect.Gateway);
        Assert.Equal((7, RetryPolicy.Linear, 50, 2000, false), (effect.Retry.MaxAttempts, effect.Retry.Backoff, effect.Retry.BaseMs, effect.Retry.MaxMs, effect.Retry.Jitter));
        Assert.Equal(["5xx", "timeout"], effect.Retry.On.Order(StringComparer.Ordinal));
        Assert.Equal(2500, effect.TimeoutMs);
        Assert.Equal(600_000, effect.GiveUpAfterMs);
        Assert.Equal(4, effect.Concurrency);
        Assert.Equal(new CircuitBreakerPolicy(0.25, 20, 60_000, 15_000), effect.CircuitBreaker);
    }

    [Fact]
    public void Effect_with_only_its_url_takes_every_default()
    {
        var effect = Valid(HttpEffectWith("# nothing else"));

        Assert.Equal("POST", effect.Http!.Method);
        Assert.Empty(effect.Http.Headers);
        Assert.Equal(RetryPolicy.Default, effect.Retry);
        Assert.Equal(10_000, effect.TimeoutMs);
        Assert.Equal(64, effect.Concurrency);
        Assert.Equal(CircuitBreakerPolicy.Default, effect.CircuitBreaker);
        Assert.Null(effect.GiveUpAfterMs);
        Assert.Null(effect.Pool);
    }

    [Fact]
    public void The_default_breaker_opens_only_under_load_and_probes_again_after_five_seconds()
    {
        // What docs/effects.md promises a user who declares no circuit_breaker block.
        Assert.Equal(new CircuitBreakerPolicy(0.5, 100, 30_000, 5_000), Valid(HttpEffectWith("# no breaker")).CircuitBreaker);
    }

    [Fact]
    public void Missing_retry_and_breaker_fields_take_the_default_values()
    {
        var effect = Valid("""
            kind: effect
            name: e
            provider: http
            http: { url: "http://h/x" }
            retry: { max_attempts: 1 }
            circuit_breaker: { break_ms: 1000 }
            """);

        Assert.Equal(RetryPolicy.Default with { MaxAttempts = 1 }, effect.Retry);
        Assert.Equal(CircuitBreakerPolicy.Default with { BreakMs = 1000 }, effect.CircuitBreaker);
    }

    [Theory]
    [InlineData("get", "GET")]
    [InlineData("Post", "POST")]
    [InlineData("PUT", "PUT")]
    [InlineData("patch", "PATCH")]
    [InlineData("delete", "DELETE")]
    public void Http_method_is_case_insensitive_and_stored_upper_case(string written, string stored)
    {
        var effect = Valid($$"""
            kind: effect
            name: e
            provider: http
            http: { url: "http://h/x", method: {{written}} }
            """);

        Assert.Equal(stored, effect.Http!.Method);
    }

    [Fact]
    public void Gateway_effect_is_parsed()
    {
        var effect = Valid("""
            kind: effect
            name: order.cancel
            provider: gateway
            gateway:
              url: "https://gateway.internal/commands"
              command: CancelOrder
              headers: { authorization: { secret: gateway_token } }
            """);

        Assert.Equal("gateway", effect.Provider);
        Assert.Null(effect.Http);
        Assert.Equal(new GatewayEffectConfig("https://gateway.internal/commands", "CancelOrder", effect.Gateway!.Headers), effect.Gateway);
        Assert.Equal(HeaderValue.FromSecret("gateway_token"), Assert.Single(effect.Gateway.Headers).Value);
    }

    [Fact]
    public void Gateway_command_and_headers_are_optional()
    {
        var effect = Valid("""
            kind: effect
            name: order.cancel
            provider: gateway
            gateway: { url: "http://gateway.internal/commands" }
            """);

        Assert.Null(effect.Gateway!.Command);
        Assert.Empty(effect.Gateway.Headers);
    }

    [Fact]
    public void Slice_effect_parses_its_blocks()
    {
        var effect = Valid("""
            kind: effect
            name: slice.launch
            provider: slice
            pool: gpu
            slice: { paths: { ro: [/data] } }
            isolation: none
            defaults: { cpu: 1, memory: 536870912 }
            maximums: { cpu: 4 }
            timeout_ms: 600000
            """);

        Assert.Equal("slice", effect.Provider);
        Assert.Null(effect.Http);
        Assert.Null(effect.Gateway);
        Assert.Equal(600_000, effect.TimeoutMs);
        Assert.False(effect.Slice!.Policy.Isolated);
        Assert.Equal(["/data"], effect.Slice.ReadOnlyRoots);
    }

    [Fact]
    public void Unknown_provider_is_an_error_at_its_line()
    {
        Assert.Equal(
            [(3, "effect: unknown provider 'grpc' (expected http, gateway, publish or slice)")],
            Errors("kind: effect\nname: e\nprovider: grpc\n"));
    }

    [Fact]
    public void Missing_provider_is_an_error_at_the_effect()
    {
        Assert.Equal([(2, "effect: missing 'provider'")], Errors("# the effect\nkind: effect\nname: e\n"));
    }

    [Fact]
    public void Http_effect_without_an_http_block_is_an_error()
    {
        Assert.Equal(
            [(1, "effect: provider http needs a 'http' block with at least a 'url'")],
            Errors("kind: effect\nname: e\nprovider: http\n"));
    }

    [Fact]
    public void Gateway_effect_without_a_gateway_block_is_an_error()
    {
        Assert.Equal(
            [(1, "effect: provider gateway needs a 'gateway' block with at least a 'url'")],
            Errors("kind: effect\nname: e\nprovider: gateway\n"));
    }

    [Fact]
    public void Http_effect_without_url_is_an_error_with_its_line()
    {
        Assert.Equal(
            [(5, "http: missing 'url'")],
            Errors("""
                kind: effect
                name: e
                provider: http
                http:
                  method: GET
                """));
    }

    [Fact]
    public void Gateway_effect_without_url_is_an_error_with_its_line()
    {
        Assert.Equal(
            [(4, "gateway: missing 'url'")],
            Errors("kind: effect\nname: e\nprovider: gateway\ngateway: { command: Cancel, url: \"\" }\n"));
    }

    [Fact]
    public void Blocks_of_another_provider_are_errors_at_their_keys()
    {
        Assert.Equal(
            [
                (5, "effect: 'gateway' is only for provider gateway, not http"),
                (6, "effect: 'isolation' is only for provider slice, not http"),
            ],
            Errors("""
                kind: effect
                name: e
                provider: http
                http: { url: "http://h/x" }
                gateway: { url: "http://h/y" }
                isolation: { network: false }
                """));
    }

    [Fact]
    public void Unknown_fields_in_every_sub_mapping_are_errors_at_their_lines()
    {
        Assert.Equal(
            [
                (5, "effect: unknown field 'priority'"),
                (7, "http: unknown field 'verb'"),
                (9, "http.headers.x-key: unknown field 'file'"),
                (11, "retry: unknown field 'attempts'"),
                (13, "circuit_breaker: unknown field 'threshold'"),
            ],
            Errors("""
                kind: effect
                name: e
                provider: http
                concurrency: 2
                priority: high
                http:
                  verb: POST
                  url: "http://h/x"
                  headers: { x-key: { secret: k, file: /etc/passwd } }
                retry:
                  attempts: 3
                circuit_breaker:
                  threshold: 0.5
                """));
    }

    [Fact]
    public void Unknown_field_of_a_gateway_is_an_error_at_its_line()
    {
        Assert.Equal(
            [(6, "gateway: unknown field 'method'")],
            Errors("""
                kind: effect
                name: e
                provider: gateway
                gateway:
                  url: "http://h/x"
                  method: POST
                """));
    }

    [Theory]
    [InlineData("http: { url: \"http://h/x\", method: FETCH }", "http.method must be one of GET, POST, PUT, PATCH, DELETE")]
    [InlineData("retry: { max_attempts: 0 }", "retry.max_attempts must be an integer in [1, 100]")]
    [InlineData("retry: { max_attempts: 101 }", "retry.max_attempts must be an integer in [1, 100]")]
    [InlineData("retry: { max_attempts: three }", "retry.max_attempts must be an integer in [1, 100]")]
    [InlineData("retry: { backoff: fibonacci }", "retry.backoff must be one of exponential, linear, constant")]
    [InlineData("retry: { base_ms: 0 }", "retry.base_ms must be an integer in [1, 600000]")]
    [InlineData("retry: { base_ms: 600001, max_ms: 700000 }", "retry.base_ms must be an integer in [1, 600000]")]
    [InlineData("retry: { max_ms: 3600001 }", "retry.max_ms must be an integer in [1, 3600000]")]
    [InlineData("retry: { jitter: yes }", "retry.jitter must be true or false")]
    [InlineData("retry: { on: 5xx }", "retry.on must be a list of: 429, 5xx, connection, timeout")]
    [InlineData("retry: [3]", "'retry' must be a mapping")]
    [InlineData("timeout_ms: 0", "effect: timeout_ms must be an integer in [10, 3600000]")]
    [InlineData("timeout_ms: 3600001", "effect: timeout_ms must be an integer in [10, 3600000]")]
    [InlineData("concurrency: 0", "effect: concurrency must be an integer in [1, 1024]")]
    [InlineData("concurrency: 1025", "effect: concurrency must be an integer in [1, 1024]")]
    [InlineData("give_up_after_ms: 0", "effect: give_up_after_ms must be an integer in [1, 604800000]")]
    [InlineData("give_up_after_ms: -5000", "effect: give_up_after_ms must be an integer in [1, 604800000]")]
    [InlineData("give_up_after_ms: 604800001", "effect: give_up_after_ms must be an integer in [1, 604800000]")]
    [InlineData("give_up_after_ms: 10m", "effect: give_up_after_ms must be an integer in [1, 604800000]")]
    [InlineData("give_up_after_ms: ~", "effect: give_up_after_ms must be an integer in [1, 604800000]")]
    [InlineData("circuit_breaker: { failure_ratio: 0 }", "circuit_breaker.failure_ratio must be a number greater than 0 and at most 1")]
    [InlineData("circuit_breaker: { failure_ratio: 1.01 }", "circuit_breaker.failure_ratio must be a number greater than 0 and at most 1")]
    [InlineData("circuit_breaker: { failure_ratio: half }", "circuit_breaker.failure_ratio must be a number greater than 0 and at most 1")]
    [InlineData("circuit_breaker: { failure_ratio: NaN }", "circuit_breaker.failure_ratio must be a number greater than 0 and at most 1")]
    [InlineData("circuit_breaker: { minimum_throughput: 1 }", "circuit_breaker.minimum_throughput must be an integer of at least 2")]
    [InlineData("circuit_breaker: { sampling_ms: 499 }", "circuit_breaker.sampling_ms must be an integer in [500, 86400000]")]
    [InlineData("circuit_breaker: { sampling_ms: 86400001 }", "circuit_breaker.sampling_ms must be an integer in [500, 86400000]")]
    [InlineData("circuit_breaker: { break_ms: 499 }", "circuit_breaker.break_ms must be an integer in [500, 86400000]")]
    [InlineData("circuit_breaker: 0.5", "'circuit_breaker' must be a mapping")]
    public void Bad_value_is_an_error_at_its_line(string line, string message)
    {
        var yaml = line.StartsWith("http:", StringComparison.Ordinal)
            ? $"kind: effect\nname: e\nprovider: http\n\n{line}\n"
            : HttpEffectWith(line);

        Assert.Equal([(5, message)], Errors(yaml));
    }

    [Theory]
    [InlineData("retry: { max_attempts: 1, base_ms: 1, max_ms: 1 }")]
    [InlineData("retry: { max_attempts: 100, base_ms: 600000, max_ms: 3600000, backoff: constant, jitter: true }")]
    [InlineData("retry: { on: [] }")]
    [InlineData("timeout_ms: 10")]
    [InlineData("timeout_ms: 3600000")]
    [InlineData("concurrency: 1")]
    [InlineData("concurrency: 1024")]
    [InlineData("give_up_after_ms: 1")]
    [InlineData("give_up_after_ms: 604800000")]
    [InlineData("circuit_breaker: { failure_ratio: 1, minimum_throughput: 2, sampling_ms: 500, break_ms: 500 }")]
    [InlineData("circuit_breaker: { failure_ratio: 0.001, sampling_ms: 86400000, break_ms: 86400000 }")]
    public void Values_at_the_ends_of_their_ranges_are_accepted(string line)
    {
        Assert.Empty(Errors(HttpEffectWith(line)));
    }

    [Fact]
    public void Empty_retry_on_list_means_no_failure_is_retried()
    {
        Assert.Empty(Valid(HttpEffectWith("retry: { on: [] }")).Retry.On);
    }

    [Fact]
    public void Retry_on_values_outside_the_known_set_are_errors_at_their_items()
    {
        Assert.Equal(
            [(7, "retry.on: '4xx' is not one of 429, 5xx, connection, timeout"), (9, "retry.on: 'Timeout' is not one of 429, 5xx, connection, timeout")],
            Errors(HttpEffectWith("""
                retry:
                  on:
                    - 4xx
                    - 5xx
                    - Timeout
                """)));
    }

    [Fact]
    public void Retry_max_ms_below_base_ms_is_an_error_at_max_ms()
    {
        Assert.Equal(
            [(7, "retry.max_ms (500) must not be less than retry.base_ms (1000)")],
            Errors(HttpEffectWith("retry:\n  base_ms: 1000\n  max_ms: 500")));
    }

    [Fact]
    public void Retry_base_ms_above_the_default_max_ms_is_an_error_at_base_ms()
    {
        Assert.Equal(
            [(6, "retry.base_ms (20000) is more than the default retry.max_ms (10000): set max_ms too")],
            Errors(HttpEffectWith("retry:\n  base_ms: 20000")));
    }

    [Fact]
    public void Every_error_of_an_effect_is_reported_at_once_with_its_line()
    {
        Assert.Equal(
            [
                (4, "effect: 'slice' is only for provider slice, not http"),
                (6, "http.url: unknown placeholder '{user}' (expected {tenant}, {command_id}, {correlation_id}, {saga}, {effect} or {payload.a.b})"),
                (7, "http.method must be one of GET, POST, PUT, PATCH, DELETE"),
                (9, "http.headers: 'x key' is not a valid HTTP header name"),
                (10, "http.headers.x-token: secret name '../token' must be 1 to 128 letters, digits, '.', '_' or '-', and not '.' or '..'"),
                (12, "retry.max_attempts must be an integer in [1, 100]"),
                (13, "retry.backoff must be one of exponential, linear, constant"),
                (14, "effect: timeout_ms must be an integer in [10, 3600000]"),
                (15, "effect: concurrency must be an integer in [1, 1024]"),
                (17, "circuit_breaker.minimum_throughput must be an integer of at least 2"),
            ],
            Errors("""
                kind: effect
                name: e
                provider: http
                slice: {}
                http:
                  url: "http://h/users/{user}"
                  method: SEND
                  headers:
                    "x key": v
                    x-token: { secret: ../token }
                retry:
                  max_attempts: 0
                  backoff: random
                timeout_ms: -1
                concurrency: many
                circuit_breaker:
                  minimum_throughput: 0
                """));
    }

    [Fact]
    public void Errors_of_several_effects_in_one_file_carry_their_own_lines()
    {
        var result = ManifestParser.Parse("""
            kind: effect
            name: a
            provider: http
            http: { url: "http://h/a" }
            timeout_ms: 0
            ---
            kind: effect
            name: b
            provider: gateway
            gateway: { url: "/relative" }
            """, File, s_noEnvironment);

        Assert.Equal(
            [(5, "effect: timeout_ms must be an integer in [10, 3600000]"), (10, "gateway.url: '/relative' is not an absolute http or https URL")],
            result.Errors.Select(e => (e.Line, e.Message)));
        Assert.All(result.Errors, e => Assert.Equal(File, e.File));
    }
}
