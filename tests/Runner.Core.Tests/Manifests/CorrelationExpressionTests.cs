using Runner.Core.Events;
using Runner.Core.Manifests;

namespace Runner.Core.Tests.Manifests;

public sealed class CorrelationExpressionTests
{
    private static SagaEvent Event(string dataJson = "null", Dictionary<string, string>? headers = null, string subject = "aggregate.acme.order.42.created") =>
        new(
            Id: "evt-1",
            Type: "order.created",
            Source: "/orders",
            CeSubject: "order/42",
            Time: DateTimeOffset.UnixEpoch,
            Tenant: "acme",
            DataContentType: "application/json",
            Data: System.Text.Encoding.UTF8.GetBytes(dataJson),
            Headers: headers ?? [],
            Origin: new MessageOrigin("AGGREGATE_EVENTS", 1, subject, DateTimeOffset.UnixEpoch));

    private static CorrelationExpression Parse(string text)
    {
        Assert.True(CorrelationExpression.TryParse(text, out var expression, out var error), error);
        Assert.Null(error);
        return expression!;
    }

    [Theory]
    [InlineData("subject[0]", "aggregate")]
    [InlineData("subject[1]", "acme")]
    [InlineData("subject[3]", "42")]
    [InlineData("subject[4]", "created")]
    public void Subject_token_selects_the_nth_token_from_zero(string text, string expected)
    {
        Assert.Equal(expected, Parse(text).Evaluate(Event()));
    }

    [Fact]
    public void Subject_token_past_the_end_gives_no_key()
    {
        Assert.Null(Parse("subject[5]").Evaluate(Event()));
    }

    [Theory]
    [InlineData("a..b", 1, "")]
    [InlineData("a..b", 2, "b")]
    [InlineData("a.b.", 2, "")]
    [InlineData("a.b.", 3, null)]
    [InlineData("single", 0, "single")]
    [InlineData("single", 1, null)]
    public void Subject_token_counts_empty_tokens_as_split_does(string subject, int index, string? expected)
    {
        var tokens = subject.Split('.');
        Assert.Equal(index < tokens.Length ? tokens[index] : null, expected);

        Assert.Equal(expected, Parse($"subject[{index}]").Evaluate(Event(subject: subject)));
    }

    [Fact]
    public void Data_path_walks_objects_and_array_indexes()
    {
        var evt = Event("""{"a":{"b":["first","second"]}}""");

        Assert.Equal("first", Parse("$.data.a.b[0]").Evaluate(evt));
        Assert.Equal("second", Parse("$.data.a.b[1]").Evaluate(evt));
    }

    [Fact]
    public void Data_path_renders_numbers_and_booleans_as_json_text()
    {
        var evt = Event("""{"n":42,"f":1.5,"ok":true}""");

        Assert.Equal("42", Parse("$.data.n").Evaluate(evt));
        Assert.Equal("1.5", Parse("$.data.f").Evaluate(evt));
        Assert.Equal("true", Parse("$.data.ok").Evaluate(evt));
    }

    [Theory]
    [InlineData("$.data.missing")]
    [InlineData("$.data.a.b[5]")]
    [InlineData("$.data.a")]
    [InlineData("$.data.empty")]
    [InlineData("$.data.nothing")]
    [InlineData("$.data.a.b[0].deeper")]
    public void Data_path_that_finds_no_scalar_gives_no_key(string text)
    {
        var evt = Event("""{"a":{"b":["first"]},"empty":"","nothing":null}""");

        Assert.Null(Parse(text).Evaluate(evt));
    }

    [Fact]
    public void Data_path_on_an_array_root_uses_the_index_of_the_data_segment()
    {
        var evt = Event("""[{"id":"x1"},{"id":"x2"}]""");

        Assert.Equal("x2", Parse("$.data[1].id").Evaluate(evt));
    }

    [Theory]
    [InlineData("$.id", "evt-1")]
    [InlineData("$.type", "order.created")]
    [InlineData("$.source", "/orders")]
    [InlineData("$.subject", "order/42")]
    [InlineData("$.tenant", "acme")]
    public void Event_attribute_paths_read_the_envelope(string text, string expected)
    {
        Assert.Equal(expected, Parse(text).Evaluate(Event()));
    }

    [Fact]
    public void Header_reads_the_named_header_case_insensitively()
    {
        var evt = Event(headers: new Dictionary<string, string> { ["Correlation-Id"] = "corr-7" });

        Assert.Equal("corr-7", Parse("header:correlation-id").Evaluate(evt));
        Assert.Equal("corr-7", Parse("header:CORRELATION-ID").Evaluate(evt));
    }

    [Fact]
    public void Missing_or_empty_header_gives_no_key()
    {
        var evt = Event(headers: new Dictionary<string, string> { ["empty"] = "" });

        Assert.Null(Parse("header:absent").Evaluate(evt));
        Assert.Null(Parse("header:empty").Evaluate(evt));
    }

    [Fact]
    public void Surrounding_whitespace_is_trimmed()
    {
        Assert.Equal("42", Parse("  subject[3] ").Evaluate(Event()));
    }

    [Theory]
    [InlineData("subject[-1]", "non-negative integer")]
    [InlineData("subject[x]", "non-negative integer")]
    [InlineData("subject[]", "non-negative integer")]
    [InlineData("header:", "header name is empty")]
    [InlineData("header:   ", "header name is empty")]
    [InlineData("$.data..a", "empty path segment")]
    [InlineData("$.data.items[x]", "bad index")]
    [InlineData("$.data.items[0", "bad index")]
    [InlineData("data.id", "must be subject[N], $.path or header:NAME")]
    [InlineData("", "must be subject[N], $.path or header:NAME")]
    public void Malformed_expressions_are_rejected_with_a_reason(string text, string reason)
    {
        Assert.False(CorrelationExpression.TryParse(text, out var expression, out var error));
        Assert.Null(expression);
        Assert.Contains(reason, error, StringComparison.Ordinal);
    }
}
