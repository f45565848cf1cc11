using Runner.Effects.Providers;
using Xunit;

namespace Runner.Effects.Tests.Providers;

public sealed class UrlTemplateTests
{
    private static string Expand(string template, string payloadJson = """{"order":{"id":"o/1","n":7,"paid":true,"lines":[{"sku":"A 1"}],"empty":"","none":null,"tags":["x"]}}""")
    {
        Assert.True(CommandUrl.TryExpand(template, Effects.Command(payloadJson), out var url, out var error), error);
        return url;
    }

    private static string Error(string template, string payloadJson = """{"order":{"id":"o/1","tags":["x"],"none":null,"empty":""}}""")
    {
        Assert.False(CommandUrl.TryExpand(template, Effects.Command(payloadJson), out var url, out var error));
        Assert.Null(url);
        return error;
    }

    [Fact]
    public void Command_fields_are_substituted()
    {
        var command = Effects.Command();
        Assert.True(CommandUrl.TryExpand("http://h/{tenant}/{saga}/{effect}/{command_id}?c={correlation_id}", command, out var url, out _));
        Assert.Equal($"http://h/acme/order-fulfillment/payment.charge/{command.CommandId}?c=order%2042", url);
    }

    [Theory]
    [InlineData("http://h/orders/{payload.order.id}", "http://h/orders/o%2F1")]
    [InlineData("http://h/n/{payload.order.n}", "http://h/n/7")]
    [InlineData("http://h/p/{payload.order.paid}", "http://h/p/true")]
    [InlineData("http://h/sku/{payload.order.lines[0].sku}", "http://h/sku/A%201")]
    [InlineData("http://h/plain", "http://h/plain")]
    [InlineData("http://h/{tenant}{tenant}", "http://h/acmeacme")]
    public void Payload_paths_are_substituted_and_encoded(string template, string expected) =>
        Assert.Equal(expected, Expand(template));

    [Fact]
    public void A_value_cannot_add_a_query_a_segment_or_a_host()
    {
        var url = Expand("http://h/x/{payload.v}", """{"v":"../../admin?x=1&y=2#f@evil.example"}""");
        Assert.Equal("http://h/x/..%2F..%2Fadmin%3Fx%3D1%26y%3D2%23f%40evil.example", url);
    }

    [Fact]
    public void A_scalar_payload_itself_can_be_used() =>
        Assert.Equal("http://h/42", Expand("http://h/{payload}", "42"));

    [Theory]
    [InlineData("http://h/{payload.order.missing}")]
    [InlineData("http://h/{payload.nothing.at.all}")]
    [InlineData("http://h/{payload.order.tags}")]
    [InlineData("http://h/{payload.order}")]
    [InlineData("http://h/{payload.order.none}")]
    [InlineData("http://h/{payload.order.empty}")]
    public void A_missing_path_or_a_non_scalar_value_is_refused_with_the_placeholder_named(string template)
    {
        var error = Error(template);
        Assert.Contains(template[(template.IndexOf('{', StringComparison.Ordinal))..], error, StringComparison.Ordinal);
        Assert.Contains("payload", error, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_placeholder_is_refused() =>
        Assert.Contains("unknown url placeholder '{host}'", Error("http://{host}/x"), StringComparison.Ordinal);

    [Fact]
    public void An_unclosed_brace_is_refused() =>
        Assert.Contains("unclosed", Error("http://h/{tenant"), StringComparison.Ordinal);

    [Fact]
    public void A_bad_array_index_is_refused() =>
        Assert.Contains("bad index", Error("http://h/{payload.order.tags[x]}"), StringComparison.Ordinal);
}
