using System.Globalization;

namespace Runner.Slice.Expressions;

internal delegate Value Function1(Value a, int column);

internal delegate Value Function2(Value a, Value b, int column);

internal delegate Value Function3(Value a, Value b, Value c, int column);

/// <summary>
/// A strict built-in: its body only ever sees non-null, non-error arguments (null in gives null
/// out, an error argument is passed through), so each body only checks kinds.
/// </summary>
internal sealed record FunctionDefinition(
    string Name,
    StaticType[] Parameters,
    int RequiredCount,
    StaticType Returns,
    Function1? Body1 = null,
    Function2? Body2 = null,
    Function3? Body3 = null);

/// <summary>The built-in functions, except the lazy <c>if</c> and <c>coalesce</c>, which the compiler builds itself.</summary>
internal static class Functions
{
    private static readonly StaticType[] s_string = [StaticType.String];
    private static readonly StaticType[] s_number = [StaticType.Number];
    private static readonly StaticType[] s_any = [StaticType.Any];
    private static readonly StaticType[] s_twoStrings = [StaticType.String, StaticType.String];

    public static IReadOnlyDictionary<string, FunctionDefinition> All { get; } = new Dictionary<string, FunctionDefinition>(StringComparer.Ordinal)
    {
        ["lower"] = new("lower", s_string, 1, StaticType.String,
            Body1: (a, c) => Text(a, "lower", c, s => Value.FromString(s.ToLowerInvariant()))),
        ["upper"] = new("upper", s_string, 1, StaticType.String,
            Body1: (a, c) => Text(a, "upper", c, s => Value.FromString(s.ToUpperInvariant()))),
        ["trim"] = new("trim", s_string, 1, StaticType.String,
            Body1: (a, c) => Text(a, "trim", c, s => Value.FromString(s.Trim()))),
        ["length"] = new("length", s_string, 1, StaticType.Number,
            Body1: (a, c) => Text(a, "length", c, s => Value.FromInteger(s.Length))),
        ["contains"] = new("contains", s_twoStrings, 2, StaticType.Bool,
            Body2: (a, b, c) => TwoTexts(a, b, "contains", c, (s, t) => s.Contains(t, StringComparison.Ordinal))),
        ["starts_with"] = new("starts_with", s_twoStrings, 2, StaticType.Bool,
            Body2: (a, b, c) => TwoTexts(a, b, "starts_with", c, (s, t) => s.StartsWith(t, StringComparison.Ordinal))),
        ["ends_with"] = new("ends_with", s_twoStrings, 2, StaticType.Bool,
            Body2: (a, b, c) => TwoTexts(a, b, "ends_with", c, (s, t) => s.EndsWith(t, StringComparison.Ordinal))),
        ["substring"] = new("substring", [StaticType.String, StaticType.Number, StaticType.Number], 2, StaticType.String,
            Body2: (s, start, c) => Substring(s, start, Value.FromInteger(int.MaxValue), c),
            Body3: Substring),
        ["abs"] = new("abs", s_number, 1, StaticType.Number, Body1: Abs),
        ["round"] = new("round", s_number.Concat(s_number).ToArray(), 1, StaticType.Number,
            Body1: (a, c) => Round(a, Value.FromInteger(0), c), Body2: Round),
        ["floor"] = new("floor", s_number, 1, StaticType.Number, Body1: (a, c) => Whole(a, "floor", Math.Floor, c)),
        ["ceil"] = new("ceil", s_number, 1, StaticType.Number, Body1: (a, c) => Whole(a, "ceil", Math.Ceiling, c)),
        ["to_number"] = new("to_number", s_any, 1, StaticType.Number, Body1: ToNumber),
        ["to_string"] = new("to_string", s_any, 1, StaticType.String, Body1: (a, _) => Value.FromString(a.ToString())),
    };

    private static Value Text(Value a, string name, int column, Func<string, Value> body) =>
        a.Kind == ValueKind.String
            ? body(a.AsString)
            : Value.TypeError($"{name}() needs a string, got {a.KindName}", column);

    private static Value TwoTexts(Value a, Value b, string name, int column, Func<string, string, bool> test) =>
        a.Kind == ValueKind.String && b.Kind == ValueKind.String
            ? Value.FromBool(test(a.AsString, b.AsString))
            : Value.TypeError($"{name}() needs two strings, got {a.KindName} and {b.KindName}", column);

    private static Value Substring(Value s, Value start, Value length, int column)
    {
        if (s.Kind != ValueKind.String || start.Kind != ValueKind.Integer || length.Kind != ValueKind.Integer)
        {
            return Value.TypeError(
                $"substring() needs a string and whole numbers, got {s.KindName}, {start.KindName}, {length.KindName}", column);
        }

        // 0-based and clamped: out-of-range bounds give a shorter or empty string, not an error.
        var text = s.AsString;
        var from = Math.Clamp(start.AsInteger, 0, text.Length);
        var count = Math.Clamp(length.AsInteger, 0, text.Length - from);
        return Value.FromString(text.Substring((int)from, (int)count));
    }

    private static Value Abs(Value a, int column) => a.Kind switch
    {
        ValueKind.Integer when a.AsInteger != long.MinValue => Value.FromInteger(Math.Abs(a.AsInteger)),
        ValueKind.Integer or ValueKind.Double => Value.FromDouble(Math.Abs(a.AsDouble)),
        _ => Value.TypeError($"abs() needs a number, got {a.KindName}", column),
    };

    private static Value Round(Value a, Value digits, int column)
    {
        if (!a.IsNumber || digits.Kind != ValueKind.Integer || digits.AsInteger is < 0 or > 15)
        {
            return Value.TypeError(
                $"round() needs a number and 0 to 15 digits, got {a.KindName} and {digits}", column);
        }

        if (a.Kind == ValueKind.Integer)
        {
            return a;
        }

        // Half away from zero, as SQL and spreadsheets round, not banker's rounding.
        var rounded = Math.Round(a.AsDouble, (int)digits.AsInteger, MidpointRounding.AwayFromZero);
        return digits.AsInteger == 0 ? WholeValue(rounded) : Value.FromDouble(rounded);
    }

    private static Value Whole(Value a, string name, Func<double, double> body, int column) => a.Kind switch
    {
        ValueKind.Integer => a,
        ValueKind.Double => WholeValue(body(a.AsDouble)),
        _ => Value.TypeError($"{name}() needs a number, got {a.KindName}", column),
    };

    private static Value WholeValue(double whole) =>
        whole is >= -9223372036854775808.0 and < 9223372036854775808.0
            ? Value.FromInteger((long)whole)
            : Value.FromDouble(whole);

    private static Value ToNumber(Value a, int column)
    {
        switch (a.Kind)
        {
            case ValueKind.Integer or ValueKind.Double:
                return a;
            case ValueKind.Bool:
                return Value.FromInteger(a.AsBool ? 1 : 0);
            case ValueKind.Timestamp:
                return Value.FromInteger(a.AsTimestamp.ToUnixTimeMilliseconds());
            case ValueKind.String:
                var text = a.AsString.Trim();
                if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var whole))
                {
                    return Value.FromInteger(whole);
                }

                // Text that is not a finite number converts to null: to_number is how data gets cleaned.
                return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number)
                    && double.IsFinite(number)
                    ? Value.FromDouble(number)
                    : Value.Null;
            default:
                return Value.TypeError($"to_number() cannot convert {a.KindName}", column);
        }
    }
}
