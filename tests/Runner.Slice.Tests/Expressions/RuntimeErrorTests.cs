using Runner.Slice.Expressions;
using Xunit;
using static Runner.Slice.Tests.Expressions.TestRecords;

namespace Runner.Slice.Tests.Expressions;

public sealed class RuntimeErrorTests
{
    private static readonly string[] s_fields = ["a", "b"];

    private static Value Run(string expression, Value a, Value b) =>
        ExpressionCompiler.Compile(expression, n => Array.IndexOf(s_fields, n) is var i and >= 0 ? i : null)
            .Evaluate(new SlotRecord([a, b]));

    [Theory]
    [InlineData("a * 2", 3, "'*' needs numbers, got string and number")]
    [InlineData("a + b", 3, "'+' needs two numbers or two strings, got string and number")]
    [InlineData("-a", 1, "'-' needs a number, got string")]
    [InlineData("a > b", 3, "'>' cannot compare string with number")]
    [InlineData("a and true", 3, "'and' needs booleans, got string")]
    [InlineData("false or a", 7, "'or' needs booleans, got string")]
    [InlineData("not a", 1, "'not' needs a boolean, got string")]
    [InlineData("abs(a)", 1, "abs() needs a number, got string")]
    [InlineData("lower(b)", 1, "lower() needs a string, got number")]
    [InlineData("if(a, 1, 2)", 1, "the condition of if() must be a boolean, got string")]
    [InlineData("round(b, 99)", 1, "round() needs a number and 0 to 15 digits")]
    [InlineData("substring(a, 0.5)", 1, "substring() needs a string and whole numbers")]
    public void Type_errors_on_data_come_back_as_error_values(string expression, int column, string reason)
    {
        var result = Run(expression, Value.FromString("abc"), Value.FromInteger(7));
        Assert.True(result.IsError);
        Assert.Equal(ExpressionErrorCodes.TypeError, result.ErrorCode);
        Assert.Equal(column, result.ErrorColumn);
        Assert.StartsWith(reason, result.ErrorReason, StringComparison.Ordinal);
        Assert.EndsWith($"(column {column})", result.ErrorMessage, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("a / b")]
    [InlineData("a % b")]
    [InlineData("1.5 / b")]
    [InlineData("a * 1e308 * 1e308")]
    public void Arithmetic_failures_come_back_as_error_values(string expression)
    {
        var result = Run(expression, Value.FromInteger(4), Value.FromInteger(0));
        Assert.Equal(ExpressionErrorCodes.ArithmeticError, result.ErrorCode);
    }

    [Theory]
    [InlineData("(a * 2) + 1 > 0")]
    [InlineData("lower(to_string(a * 2))")]
    [InlineData("a * 2 is null")]
    [InlineData("a * 2 in (1, 2)")]
    [InlineData("coalesce(a * 2, 1)")]
    [InlineData("if(a * 2 > 1, 1, 2)")]
    [InlineData("true and a * 2 > 1")]
    public void Errors_propagate_to_the_top_instead_of_being_hidden(string expression)
    {
        var result = Run(expression, Value.FromString("x"), Value.Null);
        Assert.Equal(ExpressionErrorCodes.TypeError, result.ErrorCode);
    }

    [Fact]
    public void A_filter_reports_an_error_outcome_with_a_dead_letter_code()
    {
        var filter = ExpressionCompiler.CompileFilter("amount > 0", n => n == "amount" ? 0 : null);

        Assert.Equal(FilterOutcome.Keep, filter.Test(new SlotRecord([Value.FromInteger(5)]), out _));
        Assert.Equal(FilterOutcome.Drop, filter.Test(new SlotRecord([Value.FromInteger(-5)]), out _));
        Assert.Equal(FilterOutcome.Drop, filter.Test(new SlotRecord([Value.Null]), out _));
        Assert.Equal(FilterOutcome.Error, filter.Test(new SlotRecord([Value.FromString("x")]), out var error));
        Assert.Equal("expression_type_error", error.ErrorCode);
        Assert.Equal("'>' cannot compare string with number (column 8)", error.ErrorMessage);
    }
}
