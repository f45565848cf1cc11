namespace Runner.Slice.Expressions;

/// <summary>
/// Run-time semantics of the operators. Each takes evaluated operands and the 1-based column to
/// name in an error, and never throws: errors propagate (left first), null propagates through
/// arithmetic, and a kind mismatch becomes an <see cref="ExpressionErrorCodes.TypeError"/> value.
/// </summary>
internal static class Operators
{
    public static Value Arithmetic(BinaryOp op, Value a, Value b, int column)
    {
        if (a.IsError)
        {
            return a;
        }

        if (b.IsError)
        {
            return b;
        }

        if (a.IsNull || b.IsNull)
        {
            return Value.Null;
        }

        if (op == BinaryOp.Add && a.Kind == ValueKind.String && b.Kind == ValueKind.String)
        {
            return Value.FromString(string.Concat(a.AsString, b.AsString));
        }

        if (!a.IsNumber || !b.IsNumber)
        {
            var needs = op == BinaryOp.Add ? "two numbers or two strings" : "numbers";
            return Value.TypeError($"'{Symbol(op)}' needs {needs}, got {a.KindName} and {b.KindName}", column);
        }

        if (a.Kind == ValueKind.Integer && b.Kind == ValueKind.Integer)
        {
            return IntegerArithmetic(op, a.AsInteger, b.AsInteger, column);
        }

        var x = a.AsDouble;
        var y = b.AsDouble;
        if (op is BinaryOp.Divide or BinaryOp.Remainder && y == 0)
        {
            return Value.ArithmeticError("division by zero", column);
        }

        var result = op switch
        {
            BinaryOp.Add => x + y,
            BinaryOp.Subtract => x - y,
            BinaryOp.Multiply => x * y,
            BinaryOp.Divide => x / y,
            _ => x % y,
        };
        return double.IsFinite(result)
            ? Value.FromDouble(result)
            : Value.ArithmeticError($"'{Symbol(op)}' result is out of range", column);
    }

    private static Value IntegerArithmetic(BinaryOp op, long x, long y, int column)
    {
        if (op is BinaryOp.Divide or BinaryOp.Remainder && y == 0)
        {
            return Value.ArithmeticError("division by zero", column);
        }

        Int128 wide = op switch
        {
            BinaryOp.Add => (Int128)x + y,
            BinaryOp.Subtract => (Int128)x - y,
            BinaryOp.Multiply => (Int128)x * y,
            BinaryOp.Remainder => (Int128)x % y,
            // Division stays exact only when it divides evenly; otherwise it is a fraction.
            _ => (Int128)x % y == 0 ? (Int128)x / y : Int128.MaxValue,
        };
        if (wide >= long.MinValue && wide <= long.MaxValue)
        {
            return Value.FromInteger((long)wide);
        }

        var result = op == BinaryOp.Divide ? (double)x / y : (double)wide;
        return double.IsFinite(result)
            ? Value.FromDouble(result)
            : Value.ArithmeticError($"'{Symbol(op)}' result is out of range", column);
    }

    public static Value Negate(Value a, int column) => a.Kind switch
    {
        ValueKind.Error or ValueKind.Null => a,
        ValueKind.Integer when a.AsInteger != long.MinValue => Value.FromInteger(-a.AsInteger),
        ValueKind.Integer => Value.FromDouble(-(double)a.AsInteger),
        ValueKind.Double => Value.FromDouble(-a.AsDouble),
        _ => Value.TypeError($"'-' needs a number, got {a.KindName}", column),
    };

    public static Value Not(Value a, int column) => a.Kind switch
    {
        ValueKind.Error or ValueKind.Null => a,
        ValueKind.Bool => Value.FromBool(!a.AsBool),
        _ => Value.TypeError($"'not' needs a boolean, got {a.KindName}", column),
    };

    /// <summary><c>==</c>: null equals only null; different kinds are never equal; numbers compare by value.</summary>
    public static Value Equal(Value a, Value b)
    {
        if (a.IsError)
        {
            return a;
        }

        return b.IsError ? b : Value.FromBool(AreEqual(a, b));
    }

    public static Value NotEqual(Value a, Value b)
    {
        if (a.IsError)
        {
            return a;
        }

        return b.IsError ? b : Value.FromBool(!AreEqual(a, b));
    }

    public static bool AreEqual(Value a, Value b)
    {
        if (a.Kind == ValueKind.Integer && b.Kind == ValueKind.Integer)
        {
            return a.AsInteger == b.AsInteger;
        }

        if (a.IsNumber && b.IsNumber)
        {
            return a.AsDouble == b.AsDouble;
        }

        return a.Kind == b.Kind && a.Kind switch
        {
            ValueKind.Null => true,
            ValueKind.Bool => a.AsBool == b.AsBool,
            ValueKind.String => string.Equals(a.AsString, b.AsString, StringComparison.Ordinal),
            ValueKind.Timestamp => a.TimestampTicks == b.TimestampTicks,
            _ => false,
        };
    }

    /// <summary><c>&lt; &lt;= &gt; &gt;=</c>: false when either side is null; numbers, strings (ordinal) and timestamps only.</summary>
    public static Value Order(BinaryOp op, Value a, Value b, int column)
    {
        if (a.IsError)
        {
            return a;
        }

        if (b.IsError)
        {
            return b;
        }

        if (a.IsNull || b.IsNull)
        {
            return Value.False;
        }

        int comparison;
        if (a.Kind == ValueKind.Integer && b.Kind == ValueKind.Integer)
        {
            comparison = a.AsInteger.CompareTo(b.AsInteger);
        }
        else if (a.IsNumber && b.IsNumber)
        {
            comparison = a.AsDouble.CompareTo(b.AsDouble);
        }
        else if (a.Kind == ValueKind.String && b.Kind == ValueKind.String)
        {
            comparison = string.CompareOrdinal(a.AsString, b.AsString);
        }
        else if (a.Kind == ValueKind.Timestamp && b.Kind == ValueKind.Timestamp)
        {
            comparison = a.TimestampTicks.CompareTo(b.TimestampTicks);
        }
        else
        {
            return Value.TypeError($"'{Symbol(op)}' cannot compare {a.KindName} with {b.KindName}", column);
        }

        return Value.FromBool(op switch
        {
            BinaryOp.Less => comparison < 0,
            BinaryOp.LessOrEqual => comparison <= 0,
            BinaryOp.Greater => comparison > 0,
            _ => comparison >= 0,
        });
    }

    public static string Symbol(BinaryOp op) => op switch
    {
        BinaryOp.Add => "+",
        BinaryOp.Subtract => "-",
        BinaryOp.Multiply => "*",
        BinaryOp.Divide => "/",
        BinaryOp.Remainder => "%",
        BinaryOp.Equal => "==",
        BinaryOp.NotEqual => "!=",
        BinaryOp.Less => "<",
        BinaryOp.LessOrEqual => "<=",
        BinaryOp.Greater => ">",
        BinaryOp.GreaterOrEqual => ">=",
        BinaryOp.And => "and",
        _ => "or",
    };
}
