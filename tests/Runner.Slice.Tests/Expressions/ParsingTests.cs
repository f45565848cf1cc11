using Xunit;
using Runner.Slice.Expressions;
using static Runner.Slice.Tests.Expressions.TestRecords;

namespace Runner.Slice.Tests.Expressions;

public sealed class ParsingTests
{
    [Theory]
    [InlineData("1 + 2 * 3", "7")]
    [InlineData("(1 + 2) * 3", "9")]
    [InlineData("10 - 4 - 3", "3")]
    [InlineData("2 * 3 % 4", "2")]
    [InlineData("-2 * 3", "-6")]
    [InlineData("- -2", "2")]
    [InlineData("1 + 2 == 3", "true")]
    [InlineData("(1 < 2) == true", "true")]
    [InlineData("true or false and false", "true")]
    [InlineData("(true or false) and false", "false")]
    [InlineData("not 1 == 2", "true")]
    [InlineData("not true or true", "true")]
    [InlineData("not (true or true)", "false")]
    [InlineData("!false && !false", "true")]
    [InlineData("true || false && false", "true")]
    [InlineData("1 + 1 in (2, 3)", "true")]
    [InlineData("missing is null and qty is not null", "true")]
    [InlineData("1.5e2", "150d")]
    [InlineData(".5", "0.5d")]
    [InlineData("'it\\'s' + \"\\\"q\\\"\"", "'it's\"q\"'")]
    [InlineData("'tab\\there'", "'tab\there'")]
    [InlineData("customer.id", "'c-1'")]
    [InlineData("`first name`", "'Bob'")]
    [InlineData("  qty  ", "3")]
    public void Parses_with_the_documented_precedence(string expression, string expected)
    {
        Assert.Equal(expected, Show(Eval(expression)));
    }

    [Theory]
    [InlineData("", 1, "empty")]
    [InlineData("   ", 1, "empty")]
    [InlineData("1 +", 4, "found the end")]
    [InlineData("(1 + 2", 7, "expected ')'")]
    [InlineData("1 + 2)", 6, "found ')'")]
    [InlineData("qty = 3", 5, "use '=='")]
    [InlineData("qty <> 3", 5, "use '!='")]
    [InlineData("flag & off", 6, "'and'")]
    [InlineData("qty # 3", 5, "unexpected character '#'")]
    [InlineData("'abc", 1, "unterminated string")]
    [InlineData("name + 'a\\q'", 10, "unknown escape")]
    [InlineData("1 < 2 < 3", 7, "do not chain")]
    [InlineData("qty is 3", 8, "'null'")]
    [InlineData("qty in 3", 8, "'('")]
    [InlineData("qty in ()", 9, "found ')'")]
    [InlineData("lower(name", 11, "arguments of lower()")]
    [InlineData("12abc", 1, "run into a name")]
    [InlineData("1e", 1, "exponent")]
    [InlineData("`name", 1, "unterminated")]
    [InlineData("and", 1, "keyword")]
    [InlineData("1e999", 1, "out of range")]
    public void Syntax_errors_name_the_column(string expression, int column, string fragment)
    {
        var error = CompileError(expression);
        Assert.Equal(column, error.Column);
        Assert.Contains(fragment, error.Reason, StringComparison.Ordinal);
        Assert.StartsWith($"column {column}: ", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Text_longer_than_the_limit_is_rejected_before_parsing()
    {
        var error = CompileError(string.Join(" + ", Enumerable.Repeat("qty", 2000)));
        Assert.Contains("limit is 4096", error.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(100_000)]
    [InlineData(65)]
    public void Deep_parentheses_are_rejected_without_overflowing_the_stack(int depth)
    {
        var text = new string('(', depth) + "1" + new string(')', depth);
        var error = CompileError(text, new ExpressionLimits(MaxLength: 1_000_000));
        Assert.Contains("deeper than 64", error.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("-", 100_000)]
    [InlineData("not ", 50_000)]
    [InlineData("!", 100_000)]
    [InlineData("abs(", 100_000)]
    public void Deep_prefix_chains_are_rejected_without_overflowing_the_stack(string prefix, int count)
    {
        var text = string.Concat(Enumerable.Repeat(prefix, count)) + "1";
        var error = CompileError(text, new ExpressionLimits(MaxLength: 1_000_000));
        Assert.Contains("deeper than", error.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Long_operator_chains_are_bounded_by_tree_height()
    {
        var text = string.Join(" + ", Enumerable.Repeat("qty", 100_000));
        var error = CompileError(text, new ExpressionLimits(MaxLength: 1_000_000));
        Assert.Contains("deeper than 64", error.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Nesting_up_to_the_limit_compiles()
    {
        var text = new string('(', 60) + "qty" + new string(')', 60);
        Assert.Equal("3", Show(Eval(text)));
        Assert.Equal("63", Show(Eval(string.Join(" + ", Enumerable.Repeat("1", 63)))));
    }
}
