using Xunit;
using static Runner.Slice.Tests.Expressions.TestRecords;

namespace Runner.Slice.Tests.Expressions;

public sealed class NullTests
{
    [Theory]
    [InlineData("missing + 1", "null")]
    [InlineData("1 * missing", "null")]
    [InlineData("-missing", "null")]
    [InlineData("name + missing", "null")]
    [InlineData("missing > 1", "false")]
    [InlineData("missing < 1", "false")]
    [InlineData("missing == null", "true")]
    [InlineData("null == null", "true")]
    [InlineData("missing != null", "false")]
    [InlineData("qty == null", "false")]
    [InlineData("qty != null", "true")]
    [InlineData("missing == 1", "false")]
    [InlineData("missing != 1", "true")]
    [InlineData("missing in (1, null)", "false")]
    [InlineData("missing not in (1, 2)", "false")]
    [InlineData("qty in (null, 3)", "true")]
    [InlineData("missing is null", "true")]
    [InlineData("lower(missing)", "null")]
    [InlineData("substring(name, missing, 2)", "null")]
    [InlineData("to_number(missing)", "null")]
    public void Null_propagates_through_arithmetic_and_makes_comparisons_false(string expression, string expected)
    {
        Assert.Equal(expected, Show(Eval(expression)));
    }

    [Theory]
    [InlineData("missing and flag", "null")]
    [InlineData("missing and off", "false")]
    [InlineData("off and missing", "false")]
    [InlineData("flag and missing", "null")]
    [InlineData("missing or flag", "true")]
    [InlineData("flag or missing", "true")]
    [InlineData("missing or off", "null")]
    [InlineData("off or missing", "null")]
    [InlineData("not missing", "null")]
    [InlineData("!missing", "null")]
    public void And_or_not_use_three_valued_logic(string expression, string expected)
    {
        Assert.Equal(expected, Show(Eval(expression)));
    }

    [Theory]
    [InlineData("off and qty * name > 0")]
    [InlineData("flag or qty * name > 0")]
    [InlineData("if(flag, 1, qty * name)")]
    [InlineData("coalesce(qty, qty * name)")]
    public void Short_circuits_do_not_evaluate_the_other_side(string expression)
    {
        Assert.False(Eval(expression).IsError);
    }
}
