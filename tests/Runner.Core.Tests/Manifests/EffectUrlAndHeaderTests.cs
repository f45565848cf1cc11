using Runner.Core.Manifests;

namespace Runner.Core.Tests.Manifests;

/// <summary>Effect URLs (environment expansion, placeholders) and headers (names, secrets) as the parser reads them.</summary>
public sealed class EffectUrlAndHeaderTests
{
    private const string File = "manifests/effects.yaml";

    private static Func<string, string?> Environment(params (string Name, string Value)[] variables) =>
        name => variables.Where(v => v.Name == name).Select(v => v.Value).FirstOrDefault();

    /// <summary>An http effect whose <c>url</c> is on line 5.</summary>
    private static string WithUrl(string url) => $$"""
        kind: effect
        name: e
        provider: http
        http:
          url: '{{url}}'
        """;

    /// <summary>An http effect whose header <c>x-h</c> is on line 7.</summary>
    private static string WithHeader(string value) => $$"""
        kind: effect
        name: e
        provider: http
        http:
          url: "http://h/x"
          headers:
            x-h: {{value}}
        """;

    private static string Url(string yaml, Func<string, string?>? environment = null)
    {
        var result = ManifestParser.Parse(yaml, File, environment ?? (_ => null));
        Assert.True(result.Errors.Count == 0, "expected no errors, got: " + string.Join("; ", result.Errors));
        return Assert.Single(result.Effects).Http!.Url;
    }

    private static List<(int Line, string Message)> Errors(string yaml, Func<string, string?>? environment = null) =>
        ManifestParser.Parse(yaml, File, environment ?? (_ => null)).Errors.Select(e => (e.Line, e.Message)).ToList();

    [Fact]
    public void Url_takes_environment_variables_from_the_given_environment()
    {
        var env = Environment(("STUB_URL", "https://stub.example:8443"), ("TENANT_PATH", "t"));

        Assert.Equal("https://stub.example:8443/t/charges", Url(WithUrl("${STUB_URL:-http://127.0.0.1:8089}/${TENANT_PATH}/charges"), env));
    }

    [Fact]
    public void Url_default_applies_when_the_variable_is_unset()
    {
        Assert.Equal("http://127.0.0.1:8089/charges", Url(WithUrl("${STUB_URL:-http://127.0.0.1:8089}/charges"), Environment(("OTHER", "x"))));
    }

    [Fact]
    public void Url_default_applies_when_the_variable_is_set_but_empty()
    {
        Assert.Equal("http://127.0.0.1:8089/charges", Url(WithUrl("${STUB_URL:-http://127.0.0.1:8089}/charges"), Environment(("STUB_URL", ""))));
    }

    [Fact]
    public void Without_an_environment_function_references_take_their_defaults()
    {
        var result = ManifestParser.Parse(WithUrl("${SURELY_UNSET_RUNNER_TEST_VARIABLE:-http://fallback.internal}/x"), File);

        Assert.Empty(result.Errors);
        Assert.Equal("http://fallback.internal/x", Assert.Single(result.Effects).Http!.Url);
    }

    [Fact]
    public void Unset_variable_without_default_is_an_error_naming_it_at_the_url_line()
    {
        Assert.Equal(
            [
                (5, "http.url: environment variable 'PAYMENTS_URL' is not set and has no default (write ${PAYMENTS_URL:-default})"),
                (5, "http.url: environment variable 'PAYMENTS_PATH' is not set and has no default (write ${PAYMENTS_PATH:-default})"),
            ],
            Errors(WithUrl("${PAYMENTS_URL}/${PAYMENTS_PATH}"), Environment(("STUB_URL", "http://stub"))));
    }

    [Theory]
    [InlineData("${STUB_URL/charges", "http.url: '${' at position 1 is not closed with '}'")]
    [InlineData("${1BAD:-http://h}/x", "http.url: '${1BAD:-http://h}': '1BAD' is not an environment variable name")]
    [InlineData("${}/x", "http.url: '${}': '' is not an environment variable name")]
    public void Malformed_environment_reference_is_an_error(string url, string message)
    {
        Assert.Equal([(5, message)], Errors(WithUrl(url)));
    }

    [Fact]
    public void Url_from_the_environment_must_still_be_absolute_http()
    {
        Assert.Equal(
            [(5, "http.url: 'payments/charges' is not an absolute http or https URL")],
            Errors(WithUrl("${PAYMENTS_HOST}/charges"), Environment(("PAYMENTS_HOST", "payments"))));
    }

    [Fact]
    public void Every_placeholder_is_allowed_and_kept_for_the_provider()
    {
        const string template = "http://{tenant}.svc.internal/{saga}/{effect}/{command_id}?c={correlation_id}&id={payload.order_id}&n={payload.a.b-c.0}";

        Assert.Equal(template, Url(WithUrl(template)));
    }

    [Theory]
    [InlineData("http://h/{user}", "unknown placeholder '{user}'")]
    [InlineData("http://h/{payload}", "unknown placeholder '{payload}'")]
    [InlineData("http://h/{payload.}", "unknown placeholder '{payload.}'")]
    [InlineData("http://h/{payload..a}", "unknown placeholder '{payload..a}'")]
    [InlineData("http://h/{Tenant}", "unknown placeholder '{Tenant}'")]
    [InlineData("http://h/{tenant", "'{' at position 10 is not closed with '}'")]
    [InlineData("http://h/tenant}", "'}' at position 16 has no matching '{'")]
    public void Bad_placeholder_is_an_error_at_the_url_line(string url, string problem)
    {
        var error = Assert.Single(Errors(WithUrl(url)));

        Assert.Equal(5, error.Line);
        Assert.StartsWith("http.url: " + problem, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/charges")]
    [InlineData("charges")]
    [InlineData("ftp://files.internal/x")]
    [InlineData("file:///etc/passwd")]
    [InlineData("http://")]
    [InlineData("{payload.url}")]
    public void Url_that_is_not_absolute_http_or_https_is_an_error(string url)
    {
        Assert.Equal([(5, $"http.url: '{url}' is not an absolute http or https URL")], Errors(WithUrl(url)));
    }

    [Fact]
    public void Url_with_credentials_is_an_error()
    {
        Assert.Equal(
            [(5, "http.url: a URL must not carry credentials: send them in a header from a secret")],
            Errors(WithUrl("https://user:hunter2@payments.internal/charges")));
    }

    [Theory]
    [InlineData("payments_key")]
    [InlineData("a.b-c_1")]
    [InlineData("..hidden")]
    [InlineData("K")]
    public void Valid_secret_name_is_a_secret_header(string name)
    {
        var result = ManifestParser.Parse(WithHeader($"{{ secret: \"{name}\" }}"), File);

        Assert.Empty(result.Errors);
        Assert.Equal(HeaderValue.FromSecret(name), Assert.Single(result.Effects).Http!.Headers["x-h"]);
    }

    [Fact]
    public void Secret_name_of_128_characters_is_accepted_and_of_129_is_an_error()
    {
        Assert.Empty(Errors(WithHeader($"{{ secret: {new string('s', 128)} }}")));
        Assert.Equal(7, Assert.Single(Errors(WithHeader($"{{ secret: {new string('s', 129)} }}"))).Line);
    }

    [Theory]
    [InlineData("..")]
    [InlineData(".")]
    [InlineData("../etc/passwd")]
    [InlineData("/run/secrets/key")]
    [InlineData("a/b")]
    [InlineData("key with space")]
    [InlineData("")]
    public void Secret_name_that_could_leave_the_secrets_directory_is_an_error(string name)
    {
        Assert.Equal(
            [(7, $"http.headers.x-h: secret name '{name}' must be 1 to 128 letters, digits, '.', '_' or '-', and not '.' or '..'")],
            Errors(WithHeader($"{{ secret: \"{name}\" }}")));
    }

    [Fact]
    public void Literal_header_value_is_kept_as_written()
    {
        var result = ManifestParser.Parse(WithHeader("\"application/json; charset=utf-8\""), File);

        Assert.Empty(result.Errors);
        Assert.Equal(HeaderValue.Literal("application/json; charset=utf-8"), Assert.Single(result.Effects).Http!.Headers["x-h"]);
    }

    [Theory]
    [InlineData("[a, b]", "http.headers.x-h: a header value must be a string or { secret: NAME }")]
    [InlineData("{ name: k }", "http.headers.x-h: unknown field 'name'")]
    [InlineData("\"a\\r\\nInjected: yes\"", "http.headers.x-h: a header value must not contain control characters (line breaks, NUL...)")]
    public void Bad_header_value_is_an_error_at_its_line(string value, string message)
    {
        Assert.Contains((7, message), Errors(WithHeader(value)));
    }

    [Fact]
    public void Secret_mapping_without_secret_is_an_error()
    {
        Assert.Equal([(7, "http.headers.x-h: missing 'secret'")], Errors(WithHeader("{}")));
    }

    [Theory]
    [InlineData("\"x key\"")]
    [InlineData("\"x:key\"")]
    [InlineData("\"x(key)\"")]
    [InlineData("\"\"")]
    public void Header_name_that_is_not_an_http_token_is_an_error(string name)
    {
        var yaml = $"kind: effect\nname: e\nprovider: gateway\ngateway:\n  url: \"http://h/x\"\n  headers:\n    {name}: v\n";

        var error = Assert.Single(Errors(yaml));
        Assert.Equal(7, error.Line);
        Assert.EndsWith("is not a valid HTTP header name", error.Message, StringComparison.Ordinal);
        Assert.StartsWith("gateway.headers: ", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Header_given_twice_in_different_case_is_an_error_at_the_second()
    {
        Assert.Equal(
            [(8, "http.headers: 'X-Api-Key' is given twice (header names are case-insensitive)")],
            Errors("""
                kind: effect
                name: e
                provider: http
                http:
                  url: "http://h/x"
                  headers:
                    x-api-key: a
                    X-Api-Key: b
                """));
    }

    [Fact]
    public void Headers_that_are_not_a_mapping_are_an_error()
    {
        Assert.Equal(
            [(6, "http.headers must be a mapping of header name to a string or { secret: NAME }")],
            Errors("kind: effect\nname: e\nprovider: http\nhttp:\n  url: \"http://h/x\"\n  headers: [x-api-key]\n"));
    }
}
