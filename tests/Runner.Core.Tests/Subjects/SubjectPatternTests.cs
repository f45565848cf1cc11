using Runner.Core.Subjects;

namespace Runner.Core.Tests.Subjects;

public sealed class SubjectPatternTests
{
    [Theory]
    [InlineData("aggregate.acme.order.42.created", "aggregate.acme.order.42.created")]
    [InlineData("aggregate.*.order.*.created", "aggregate.acme.order.42.created")]
    [InlineData("aggregate.*.order.>", "aggregate.acme.order.42.created")]
    [InlineData("aggregate.*.order.>", "aggregate.acme.order.42")]
    [InlineData(">", "anything.at.all")]
    [InlineData("*", "single")]
    [InlineData("a.*", "a.b")]
    public void Pattern_matches(string pattern, string subject)
    {
        Assert.True(SubjectPattern.Parse(pattern).Matches(subject));
    }

    [Theory]
    [InlineData("aggregate.acme.order.42.created", "aggregate.acme.order.42.updated")]
    [InlineData("aggregate.*.order.*.created", "aggregate.acme.invoice.42.created")]
    [InlineData("aggregate.*.order.>", "aggregate.acme.order")]
    [InlineData("a.*", "a")]
    [InlineData("a.*", "a.b.c")]
    [InlineData("a.*", "a.")]
    [InlineData("a.*.c", "a..c")]
    [InlineData("a.>", "a.")]
    [InlineData("a.b", "a.b.")]
    [InlineData("a.b", "a.bc")]
    [InlineData("a.b", "a")]
    [InlineData("*", "")]
    public void Pattern_does_not_match(string pattern, string subject)
    {
        Assert.False(SubjectPattern.Parse(pattern).Matches(subject));
    }

    [Theory]
    [InlineData("", "subject is empty")]
    [InlineData("a..b", "empty token")]
    [InlineData(".a", "empty token")]
    [InlineData("a.", "empty token")]
    [InlineData("a.>.b", "'>' must be the last token")]
    [InlineData("a.b*", "wildcards must be whole tokens")]
    [InlineData("a.>b", "wildcards must be whole tokens")]
    [InlineData("a b.c", "whitespace or control")]
    [InlineData("a.\tb", "whitespace or control")]
    public void Malformed_filters_are_rejected_with_a_reason(string text, string reason)
    {
        Assert.False(SubjectPattern.TryParse(text, out var pattern, out var error));
        Assert.Null(pattern);
        Assert.Contains(reason, error, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_throws_on_a_malformed_filter()
    {
        var ex = Assert.Throws<FormatException>(() => SubjectPattern.Parse("a..b"));
        Assert.Contains("empty token", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("a.*")]
    [InlineData("a.>")]
    public void Wildcards_are_rejected_where_a_concrete_subject_is_needed(string text)
    {
        Assert.Contains("may not contain wildcards", SubjectPattern.Validate(text, allowWildcards: false), StringComparison.Ordinal);
    }

    [Fact]
    public void Concrete_subject_is_valid_without_wildcards()
    {
        Assert.Null(SubjectPattern.Validate("workflow.cmd.acme.http", allowWildcards: false));
    }

    [Theory]
    [InlineData("a.b.c", "a.*.c", true)]
    [InlineData("a.b.c", "a.>", true)]
    [InlineData("a.*.c", "a.>", true)]
    [InlineData("a.*.c", "a.b.c", false)]
    [InlineData("a.>", "a.*", false)]
    [InlineData("a.b", "a.b.c", false)]
    [InlineData("a.b.c", "a.b", false)]
    public void Coverage_between_patterns(string narrow, string wide, bool covered)
    {
        Assert.Equal(covered, SubjectPattern.Parse(narrow).IsCoveredBy(SubjectPattern.Parse(wide)));
    }
}
