using Runner.Slice.Expressions;
using Xunit;
using static Runner.Slice.Tests.Expressions.TestRecords;

namespace Runner.Slice.Tests.Expressions;

public sealed class FunctionTests
{
    [Theory]
    [InlineData("lower(name)", "'alice'")]
    [InlineData("upper(name)", "'ALICE'")]
    [InlineData("trim(padded)", "'hi'")]
    [InlineData("length(name)", "5")]
    [InlineData("length('')", "0")]
    [InlineData("contains(name, 'lic')", "true")]
    [InlineData("contains(name, 'LIC')", "false")]
    [InlineData("starts_with(name, 'Al')", "true")]
    [InlineData("ends_with(name, 'Al')", "false")]
    [InlineData("substring(name, 1, 3)", "'lic'")]
    [InlineData("substring(name, 2)", "'ice'")]
    [InlineData("substring(name, 3, 100)", "'ce'")]
    [InlineData("substring(name, 10, 2)", "''")]
    [InlineData("substring(name, -3, 2)", "'Al'")]
    [InlineData("substring(name, 0, -1)", "''")]
    [InlineData("coalesce(missing, qty)", "3")]
    [InlineData("coalesce(missing, missing)", "null")]
    [InlineData("coalesce(name)", "'Alice'")]
    [InlineData("abs(-qty)", "3")]
    [InlineData("abs(-amount)", "12.5d")]
    [InlineData("round(amount)", "13")]
    [InlineData("round(-amount)", "-13")]
    [InlineData("round(2.345, 2)", "2.35d")]
    [InlineData("round(qty, 2)", "3")]
    [InlineData("floor(amount)", "12")]
    [InlineData("floor(-amount)", "-13")]
    [InlineData("ceil(amount)", "13")]
    [InlineData("ceil(qty)", "3")]
    [InlineData("to_number(text_num) + 1", "43")]
    [InlineData("to_number(' 1.25 ')", "1.25d")]
    [InlineData("to_number('abc')", "null")]
    [InlineData("to_number('NaN')", "null")]
    [InlineData("to_number(flag)", "1")]
    [InlineData("to_number(ts)", "1704164645000")]
    [InlineData("to_string(qty) + 'x'", "'3x'")]
    [InlineData("to_string(amount)", "'12.5'")]
    [InlineData("to_string(off)", "'false'")]
    [InlineData("to_string(ts)", "'2024-01-02T03:04:05.0000000+00:00'")]
    [InlineData("to_string(missing)", "null")]
    [InlineData("if(qty > 2, 'big', 'small')", "'big'")]
    [InlineData("if(off, 'big', 'small')", "'small'")]
    [InlineData("if(missing, 'big', 'small')", "'small'")]
    public void Built_in_functions(string expression, string expected)
    {
        Assert.Equal(expected, Show(Eval(expression)));
    }

    [Theory]
    [InlineData("lower()", 1, "lower() takes 1 argument, got 0")]
    [InlineData("lower(name, name)", 1, "lower() takes 1 argument, got 2")]
    [InlineData("qty + substring(name)", 7, "substring() takes 2 to 3 arguments, got 1")]
    [InlineData("if(flag, 1)", 1, "if() takes 3 arguments, got 2")]
    [InlineData("coalesce()", 1, "coalesce() takes at least 1 arguments, got 0")]
    [InlineData("frobnicate(qty)", 1, "unknown function 'frobnicate'")]
    [InlineData("lower(3)", 7, "argument 1 of lower() must be a string, got a number")]
    [InlineData("round(qty, 'x')", 12, "argument 2 of round() must be a number")]
    [InlineData("if(1, 2, 3)", 4, "the condition of if() must be a boolean")]
    public void Function_misuse_is_a_compile_error_with_its_column(string expression, int column, string fragment)
    {
        var error = CompileError(expression);
        Assert.Equal(column, error.Column);
        Assert.Contains(fragment, error.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Result_types_are_known_at_compile_time_where_they_can_be()
    {
        Assert.Equal(StaticType.String, ExpressionCompiler.Compile("lower(name)", Resolve).ResultType);
        Assert.Equal(StaticType.Number, ExpressionCompiler.Compile("qty * 2", Resolve).ResultType);
        Assert.Equal(StaticType.Bool, ExpressionCompiler.Compile("qty > 2", Resolve).ResultType);
        Assert.Equal(StaticType.Any, ExpressionCompiler.Compile("coalesce(qty, name)", Resolve).ResultType);
        Assert.Equal(StaticType.String, ExpressionCompiler.Compile("if(flag, lower(name), null)", Resolve).ResultType);
    }
}
