using System.Text.Json.Nodes;
using Runner.Core.Manifests;
using Runner.Effects.Providers;
using Runner.Testing;
using Xunit;

namespace Runner.Effects.Tests.Providers;

public sealed class HttpProviderTests : EffectsHarness
{
    [Fact]
    public async Task Upstream_receives_method_path_headers_secret_and_payload()
    {
        await File.WriteAllTextAsync(Secrets.File("payments-token"), "s3cr3t\n", TestToken);
        var headers = new Dictionary<string, HeaderValue>
        {
            ["Authorization"] = HeaderValue.FromSecret("payments-token"),
            ["X-Client"] = HeaderValue.Literal("runner"),
        };
        var effect = Effects.Http(UrlOf("orders/{tenant}/{payload.order.id}/charge?c={correlation_id}"), "POST", headers);
        var command = Effects.Command();

        var result = await ExecuteAsync(effect, command);

        Assert.True(result.Succeeded, result.Error?.Message);
        var request = Assert.Single(Stub.Requests);
        Assert.Equal("POST", request.Method);
        Assert.Equal("/orders/acme/o%2F1/charge?c=order%2042", request.PathAndQuery);
        Assert.Equal(command.CommandId, request.Headers["Idempotency-Key"]);
        Assert.Equal("acme", request.Headers["tenant-id"]);
        Assert.Equal("order 42", request.Headers["correlation-id"]);
        Assert.Equal(command.CommandId, request.Headers["causation-id"]);
        Assert.Equal(command.TraceParent, request.Headers["traceparent"]);
        Assert.Equal("s3cr3t", request.Headers["Authorization"]);
        Assert.Equal("runner", request.Headers["X-Client"]);
        Assert.Equal("application/json", request.Headers["Content-Type"]);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(command.Payload.GetRawText()), JsonNode.Parse(request.Body)), request.Body);
    }

    [Theory]
    [InlineData("GET")]
    [InlineData("DELETE")]
    [InlineData("get")]
    public async Task Get_and_delete_send_no_body(string method)
    {
        var result = await ExecuteAsync(Effects.Http(UrlOf("orders/{payload.order.id}"), method), Effects.Command(traceParent: null));

        Assert.True(result.Succeeded, result.Error?.Message);
        var request = Assert.Single(Stub.Requests);
        Assert.Equal(method.ToUpperInvariant(), request.Method);
        Assert.Equal(string.Empty, request.Body);
        Assert.False(request.Headers.ContainsKey("Content-Type"));
        Assert.False(request.Headers.ContainsKey("traceparent"));
    }

    [Theory]
    [InlineData("PUT")]
    [InlineData("PATCH")]
    public async Task Put_and_patch_send_the_payload(string method)
    {
        var result = await ExecuteAsync(Effects.Http(UrlOf("orders"), method), Effects.Command("""{"a":1}"""));

        Assert.True(result.Succeeded, result.Error?.Message);
        Assert.Equal("""{"a":1}""", Assert.Single(Stub.Requests).Body);
    }

    [Fact]
    public async Task A_manifest_content_type_replaces_the_default()
    {
        var headers = new Dictionary<string, HeaderValue> { ["Content-Type"] = HeaderValue.Literal("application/vnd.acme+json") };

        var result = await ExecuteAsync(Effects.Http(UrlOf("charges"), "POST", headers), Effects.Command());

        Assert.True(result.Succeeded, result.Error?.Message);
        Assert.Equal("application/vnd.acme+json", Assert.Single(Stub.Requests).Headers["Content-Type"]);
    }

    [Theory]
    [InlineData("bad name", "x")]
    [InlineData("X-Note", "café")]
    [InlineData("Content-Type", "text/plain")]
    public async Task A_header_that_cannot_be_sent_fails_without_a_call(string name, string value)
    {
        var headers = new Dictionary<string, HeaderValue> { [name] = HeaderValue.Literal(value) };

        var result = await ExecuteAsync(Effects.Http(UrlOf("charges"), "GET", headers), Effects.Command());

        Assert.Equal(EffectErrorCodes.ProviderError, result.Error!.Code);
        Assert.Contains($"'{name}'", result.Error.Message, StringComparison.Ordinal);
        Assert.Empty(Stub.Requests);
    }

    [Fact]
    public async Task A_redirect_is_a_permanent_failure_and_is_not_followed()
    {
        Stub.Respond("/charges", (_, _) => new StubResponse(302, null) { Headers = new Dictionary<string, string> { ["Location"] = UrlOf("elsewhere") } });

        var result = await ExecuteAsync(Effects.Http(UrlOf("charges")), Effects.Command());

        Assert.False(result.Succeeded);
        Assert.Equal("http_302", result.Error!.Code);
        Assert.Equal(1, result.Attempts);
        Assert.Equal(["/charges"], Stub.Requests.Select(r => r.PathAndQuery));
    }

    [Fact]
    public async Task A_retry_waits_as_long_as_the_upstreams_retry_after_says()
    {
        Stub.Respond("/charges", (_, call) => call == 1
            ? new StubResponse(503, """{"error":"busy"}""") { Headers = new Dictionary<string, string> { ["Retry-After"] = "1" } }
            : new StubResponse(201, """{"ok":true}"""));
        var effect = Effects.Http(UrlOf("charges")) with { Retry = Effects.Retry(3) with { MaxMs = 5_000 } };

        var result = await ExecuteAsync(effect, Effects.Command());

        Assert.True(result.Succeeded, result.Error?.Message);
        Assert.Equal(2, result.Attempts);
        var calls = Stub.Requests.ToList();
        // The effect's own back-off is 5 ms; the upstream asked for a second.
        Assert.True(calls[1].Time - calls[0].Time >= TimeSpan.FromMilliseconds(900), $"{(calls[1].Time - calls[0].Time).TotalMilliseconds} ms between attempts");
    }

    [Fact]
    public async Task A_rotated_secret_is_sent_on_the_next_call()
    {
        var headers = new Dictionary<string, HeaderValue> { ["X-Api-Key"] = HeaderValue.FromSecret("api-key") };
        var effect = Effects.Http(UrlOf("charges"), "POST", headers);
        await File.WriteAllTextAsync(Secrets.File("api-key"), "one\n", TestToken);
        await ExecuteAsync(effect, Effects.Command());
        await File.WriteAllTextAsync(Secrets.File("api-key"), "two\n", TestToken);
        await ExecuteAsync(effect, Effects.Command());

        Assert.Equal(["one", "two"], Stub.Requests.Select(r => r.Headers["X-Api-Key"]));
    }

    [Fact]
    public async Task A_missing_secret_fails_permanently_and_sends_nothing()
    {
        var headers = new Dictionary<string, HeaderValue> { ["Authorization"] = HeaderValue.FromSecret("payments-token") };
        var command = Effects.Command();

        var result = await ExecuteAsync(Effects.Http(UrlOf("charges"), "POST", headers), command);

        Assert.False(result.Succeeded);
        Assert.Equal(EffectErrorCodes.SecretUnavailable, result.Error!.Code);
        Assert.Contains("'payments-token'", result.Error.Message, StringComparison.Ordinal);
        Assert.Equal(1, result.Attempts);
        Assert.Empty(Stub.Requests);
    }

    [Theory]
    [InlineData("""{"charge":"ch_1","amount":12.5}""", """{"charge":"ch_1","amount":12.5}""")]
    [InlineData("[1,2]", "[1,2]")]
    [InlineData("plain text", "\"plain text\"")]
    [InlineData("{\"unterminated\":", "\"{\\\"unterminated\\\":\"")]
    [InlineData(null, "null")]
    public async Task A_2xx_result_is_the_body_as_json(string? body, string expected)
    {
        Stub.Respond("/charges", (_, _) => new StubResponse(201, body));

        var result = await ExecuteAsync(Effects.Http(UrlOf("charges")), Effects.Command());

        Assert.True(result.Succeeded, result.Error?.Message);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(expected), JsonNode.Parse(result.ResultJson!)), result.ResultJson);
        Assert.Equal(1, result.Attempts);
    }

    [Fact]
    public async Task A_body_over_one_mebibyte_fails_as_too_large()
    {
        var huge = "\"" + new string('a', HttpExchange.MaxResponseBytes) + "\"";
        Stub.Respond("/charges", (_, _) => new StubResponse(200, huge));

        var result = await ExecuteAsync(Effects.Http(UrlOf("charges")), Effects.Command());

        Assert.False(result.Succeeded);
        Assert.Equal(EffectErrorCodes.ResponseTooLarge, result.Error!.Code);
        Assert.Equal(1, result.Attempts);
    }

    [Fact]
    public async Task A_4xx_fails_permanently_after_one_call_with_the_start_of_the_body()
    {
        var body = "\"" + new string('x', 5000) + "\"";
        Stub.Respond("/charges", (_, _) => new StubResponse(422, body));
        var command = Effects.Command();

        var result = await ExecuteAsync(Effects.Http(UrlOf("charges")), command);

        Assert.False(result.Succeeded);
        Assert.Equal("http_422", result.Error!.Code);
        Assert.Equal(422, result.Error.Status);
        Assert.StartsWith("HTTP 422", result.Error.Message, StringComparison.Ordinal);
        Assert.Contains("\"" + new string('x', 511), result.Error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(new string('x', 512), result.Error.Message, StringComparison.Ordinal);
        Assert.Equal(1, result.Attempts);
        Assert.Equal(1, Stub.CallsFor(command.CommandId));
    }

    [Fact]
    public async Task A_payload_that_cannot_fill_the_url_fails_as_invalid_command_without_a_call()
    {
        var result = await ExecuteAsync(Effects.Http(UrlOf("orders/{payload.order.customer}")), Effects.Command());

        Assert.False(result.Succeeded);
        Assert.Equal(EffectErrorCodes.InvalidCommand, result.Error!.Code);
        Assert.Contains("{payload.order.customer}", result.Error.Message, StringComparison.Ordinal);
        Assert.Empty(Stub.Requests);
    }

    [Fact]
    public async Task Non_ascii_ids_are_percent_encoded_in_headers()
    {
        var command = Effects.Command() with { CorrelationId = "commande-été" };

        var result = await ExecuteAsync(Effects.Http(UrlOf("charges")), command);

        Assert.True(result.Succeeded, result.Error?.Message);
        Assert.Equal("commande-%C3%A9t%C3%A9", Assert.Single(Stub.Requests).Headers["correlation-id"]);
    }

    [Theory]
    [InlineData("http://payments.internal:8080/charges/{tenant}", "http://payments.internal:8080")]
    [InlineData("https://payments.internal/charges", "https://payments.internal:443")]
    [InlineData("http://{payload.host}/x", "http://{payload.host}/x")]
    public void Upstream_is_scheme_host_and_port(string template, string expected) =>
        Assert.Equal(expected, HttpExchange.Upstream(template, Effects.Command()));
}
