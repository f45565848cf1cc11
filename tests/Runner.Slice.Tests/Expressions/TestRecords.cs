using Xunit;
using System.Globalization;
using Runner.Slice.Expressions;

namespace Runner.Slice.Tests.Expressions;

/// <summary>A record whose fields are a fixed array of slots, and the names that resolve to them.</summary>
internal sealed class SlotRecord(Value[] values) : IRecord
{
    public Value Get(int slot) => values[slot];

    /// <summary>A copy of the values with one slot set to null.</summary>
    public Value[] WithNull(int slot)
    {
        var copy = (Value[])values.Clone();
        copy[slot] = Value.Null;
        return copy;
    }
}

internal static class TestRecords
{
    public static readonly DateTimeOffset Time = new(2024, 1, 2, 3, 4, 5, TimeSpan.Zero);

    private static readonly (string Name, Value Value)[] s_fields =
    [
        ("amount", Value.FromDouble(12.5)),
        ("qty", Value.FromInteger(3)),
        ("zero", Value.FromInteger(0)),
        ("name", Value.FromString("Alice")),
        ("padded", Value.FromString("  hi  ")),
        ("order_id", Value.FromInteger(9007199254740993)),
        ("flag", Value.True),
        ("off", Value.False),
        ("missing", Value.Null),
        ("ts", Value.FromTimestamp(Time)),
        ("later", Value.FromTimestamp(Time.AddHours(1))),
        ("text_num", Value.FromString("42")),
        ("customer.id", Value.FromString("c-1")),
        ("first name", Value.FromString("Bob")),
    ];

    public static SlotRecord Standard { get; } = new(s_fields.Select(f => f.Value).ToArray());

    public static int? Resolve(string name)
    {
        var index = Array.FindIndex(s_fields, f => f.Name == name);
        return index < 0 ? null : index;
    }

    public static Value Eval(string expression) =>
        ExpressionCompiler.Compile(expression, Resolve).Evaluate(Standard);

    /// <summary>A value as a test expects to read it: strings quoted, errors by code.</summary>
    public static string Show(Value value) => value.Kind switch
    {
        ValueKind.String => $"'{value.AsString}'",
        ValueKind.Error => $"error:{value.ErrorCode}",
        ValueKind.Double => value.AsDouble.ToString("R", CultureInfo.InvariantCulture) + "d",
        _ => value.ToString(),
    };

    public static ExpressionException CompileError(string expression, ExpressionLimits? limits = null) =>
        Assert.Throws<ExpressionException>(() => ExpressionCompiler.Compile(expression, Resolve, limits));
}
