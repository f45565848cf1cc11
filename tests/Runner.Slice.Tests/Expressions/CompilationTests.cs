using Runner.Slice.Expressions;
using Xunit;
using static Runner.Slice.Tests.Expressions.TestRecords;

namespace Runner.Slice.Tests.Expressions;

public sealed class CompilationTests
{
    [Theory]
    [InlineData("nope > 1", 1, "unknown field 'nope'")]
    [InlineData("qty + customer.name", 7, "unknown field 'customer.name'")]
    [InlineData("`first  name`", 1, "unknown field 'first  name'")]
    public void Unknown_fields_are_compile_errors(string expression, int column, string fragment)
    {
        var error = CompileError(expression);
        Assert.Equal(column, error.Column);
        Assert.Contains(fragment, error.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("'abc' * 2", 7, "'*' needs numbers, got a string")]
    [InlineData("'a' + 1", 5, "use to_string()")]
    [InlineData("qty + (1 > 0)", 5, "'+' needs two numbers or two strings, got a boolean")]
    [InlineData("qty > 1 and 'x'", 9, "the right side of 'and' must be a boolean, got a string")]
    [InlineData("not qty + 1", 1, "the operand of 'not' must be a boolean")]
    [InlineData("-'x'", 1, "the operand of '-' must be a number")]
    [InlineData("1 == 'a'", 3, "never equal")]
    [InlineData("1 in (qty, 'a')", 3, "never equal")]
    [InlineData("true < false", 6, "cannot order booleans")]
    [InlineData("1 < 'a'", 3, "cannot compare a number with a string")]
    [InlineData("qty + 1 / 0", 9, "division by zero")]
    [InlineData("1 % (2 - 2)", 3, "division by zero")]
    public void Static_type_errors_are_compile_errors_with_positions(string expression, int column, string fragment)
    {
        var error = CompileError(expression);
        Assert.Equal(column, error.Column);
        Assert.Contains(fragment, error.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("qty * 2")]
    [InlineData("'x'")]
    [InlineData("null")]
    public void A_filter_must_be_boolean(string expression)
    {
        var error = Assert.Throws<ExpressionException>(() => ExpressionCompiler.CompileFilter(expression, Resolve));
        Assert.Contains("a filter must be a boolean expression", error.Reason, StringComparison.Ordinal);
        Assert.Equal(1, error.Column);
    }

    [Fact]
    public void A_filter_over_an_untyped_field_is_accepted_and_checked_per_record()
    {
        var filter = ExpressionCompiler.CompileFilter("coalesce(flag, qty)", Resolve);
        Assert.Equal(FilterOutcome.Keep, filter.Test(Standard, out _));
        Assert.Equal(FilterOutcome.Error, filter.Test(new SlotRecord(Standard.WithNull(6)), out var error));
        Assert.Equal(ExpressionErrorCodes.TypeError, error.ErrorCode);
    }

    [Theory]
    [InlineData("1 + 2 * 3", "7")]
    [InlineData("upper('a' + 'b')", "'AB'")]
    [InlineData("if(1 > 2, 'x', 'y')", "'y'")]
    [InlineData("coalesce(null, 2)", "2")]
    [InlineData("3 in (1, 2, 3)", "true")]
    [InlineData("null is null", "true")]
    [InlineData("round(2.5) + abs(-1)", "4")]
    public void Constant_expressions_are_folded_and_read_no_record(string expression, string expected)
    {
        var compiled = ExpressionCompiler.Compile(expression, _ => throw new InvalidOperationException("no fields"));
        Assert.True(compiled.IsConstant);
        Assert.Equal(expected, Show(compiled.Evaluate(ThrowingRecord.Instance)));
    }

    [Fact]
    public void Constant_parts_of_an_expression_are_folded_too()
    {
        var compiled = ExpressionCompiler.Compile("qty * (60 * 60 * 24)", Resolve);
        Assert.False(compiled.IsConstant);
        Assert.Equal("259200", Show(compiled.Evaluate(Standard)));
    }

    [Fact]
    public void The_resolver_is_asked_once_per_field_reference_at_compile_time_only()
    {
        var asked = new List<string>();
        var compiled = ExpressionCompiler.Compile("qty * 2 + qty", name =>
        {
            asked.Add(name);
            return Resolve(name);
        });
        Assert.Equal(["qty", "qty"], asked);

        compiled.Evaluate(Standard);
        compiled.Evaluate(Standard);
        Assert.Equal(2, asked.Count);
    }

    private sealed class ThrowingRecord : IRecord
    {
        public static ThrowingRecord Instance { get; } = new();

        public Value Get(int slot) => throw new InvalidOperationException("a folded expression read a field");
    }
}
