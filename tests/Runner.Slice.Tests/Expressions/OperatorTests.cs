using Runner.Slice.Expressions;
using Xunit;
using static Runner.Slice.Tests.Expressions.TestRecords;

namespace Runner.Slice.Tests.Expressions;

public sealed class OperatorTests
{
    [Theory]
    [InlineData("qty + 2", "5")]
    [InlineData("qty - 5", "-2")]
    [InlineData("qty * 4", "12")]
    [InlineData("qty / 3", "1")]
    [InlineData("qty / 2", "1.5d")]
    [InlineData("qty % 2", "1")]
    [InlineData("-qty % 2", "-1")]
    [InlineData("amount * 100", "1250d")]
    [InlineData("amount + qty", "15.5d")]
    [InlineData("amount % 5", "2.5d")]
    [InlineData("-amount", "-12.5d")]
    [InlineData("order_id * 1", "9007199254740993")]
    [InlineData("order_id + 1", "9007199254740994")]
    [InlineData("9223372036854775807 + qty", "9.223372036854776E+18d")]
    [InlineData("name + '!'", "'Alice!'")]
    [InlineData("'a' + 'b' + name", "'abAlice'")]
    public void Arithmetic_keeps_integers_exact_and_widens_on_overflow(string expression, string expected)
    {
        Assert.Equal(expected, Show(Eval(expression)));
    }

    [Fact]
    public void Integer_results_stay_integers()
    {
        Assert.Equal(ValueKind.Integer, Eval("order_id * 1").Kind);
        Assert.Equal(ValueKind.Integer, Eval("qty * 4 / 2").Kind);
        Assert.Equal(ValueKind.Double, Eval("qty / 2").Kind);
    }

    [Theory]
    [InlineData("qty == 3", "true")]
    [InlineData("qty == 3.0", "true")]
    [InlineData("qty != 3", "false")]
    [InlineData("amount > qty", "true")]
    [InlineData("amount >= 12.5", "true")]
    [InlineData("amount < 12.5", "false")]
    [InlineData("qty <= 2", "false")]
    [InlineData("name == 'Alice'", "true")]
    [InlineData("name == 'alice'", "false")]
    [InlineData("name < 'Bob'", "true")]
    [InlineData("'B' < 'a'", "true")]
    [InlineData("ts < later", "true")]
    [InlineData("ts == ts", "true")]
    [InlineData("flag == true", "true")]
    [InlineData("flag != off", "true")]
    [InlineData("qty == name", "false")]
    [InlineData("order_id == 9007199254740992", "false")]
    public void Comparisons(string expression, string expected)
    {
        Assert.Equal(expected, Show(Eval(expression)));
    }

    [Theory]
    [InlineData("flag and off", "false")]
    [InlineData("flag and flag", "true")]
    [InlineData("off or flag", "true")]
    [InlineData("off or off", "false")]
    [InlineData("not flag", "false")]
    [InlineData("!off", "true")]
    [InlineData("qty in (1, 2, 3)", "true")]
    [InlineData("qty in (1, 2.5)", "false")]
    [InlineData("qty not in (1, 2)", "true")]
    [InlineData("name in ('Bob', lower('ALICE'), 'Alice')", "true")]
    [InlineData("name in (qty + 0, 'Alice')", "true")]
    [InlineData("name is null", "false")]
    [InlineData("name is not null", "true")]
    public void Boolean_membership_and_null_tests(string expression, string expected)
    {
        Assert.Equal(expected, Show(Eval(expression)));
    }
}
