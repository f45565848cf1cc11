namespace Runner.Slice.Expressions;

internal sealed partial class ExpressionCompiler
{
    private Bound BindUnary(UnaryNode node)
    {
        var operand = Bind(node.Operand);
        var evaluate = operand.Evaluate;
        var column = node.Position + 1;
        Bound bound;
        if (node.Op == UnaryOp.Negate)
        {
            Expect(operand.Type, StaticType.Number, "the operand of '-'", column);
            bound = new Bound(record => Operators.Negate(evaluate(record), column), Numeric(operand.Type), operand.IsConstant);
        }
        else
        {
            Expect(operand.Type, StaticType.Bool, "the operand of 'not'", column);
            bound = new Bound(record => Operators.Not(evaluate(record), column), StaticType.Bool, operand.IsConstant);
        }

        return Fold(node, bound);
    }

    private Bound BindBinary(BinaryNode node)
    {
        var left = Bind(node.Left);
        var right = Bind(node.Right);
        var l = left.Evaluate;
        var r = right.Evaluate;
        var op = node.Op;
        var column = node.Position + 1;
        var isConstant = left.IsConstant && right.IsConstant;
        var bound = op switch
        {
            BinaryOp.Add or BinaryOp.Subtract or BinaryOp.Multiply or BinaryOp.Divide or BinaryOp.Remainder =>
                new Bound(record => Operators.Arithmetic(op, l(record), r(record), column),
                    ArithmeticType(op, left.Type, right.Type, column), isConstant),
            BinaryOp.Equal => new Bound(record => Operators.Equal(l(record), r(record)),
                EqualityType(op, left.Type, right.Type, column), isConstant),
            BinaryOp.NotEqual => new Bound(record => Operators.NotEqual(l(record), r(record)),
                EqualityType(op, left.Type, right.Type, column), isConstant),
            BinaryOp.And => new Bound(And(l, r, column), LogicType(op, left.Type, right.Type, column), isConstant),
            BinaryOp.Or => new Bound(Or(l, r, column), LogicType(op, left.Type, right.Type, column), isConstant),
            _ => new Bound(record => Operators.Order(op, l(record), r(record), column),
                OrderType(op, left.Type, right.Type, column), isConstant),
        };
        return Fold(node, bound);
    }

    private Bound BindIn(InNode node)
    {
        var operand = Bind(node.Operand);
        var items = node.Items.Select(Bind).ToArray();
        var column = node.Position + 1;
        foreach (var item in items)
        {
            EqualityType(BinaryOp.Equal, operand.Type, item.Type, column);
        }

        var evaluate = operand.Evaluate;
        var negated = node.Negated;
        Func<IRecord, Value> body;
        if (items.All(i => i.IsConstant))
        {
            var values = items.Select(i => i.Evaluate(NoRecord.Instance)).ToArray();
            body = record =>
            {
                var value = evaluate(record);
                if (value.IsError || value.IsNull)
                {
                    return value.IsError ? value : Value.False;
                }

                foreach (var candidate in values)
                {
                    if (Operators.AreEqual(value, candidate))
                    {
                        return Value.FromBool(!negated);
                    }
                }

                return Value.FromBool(negated);
            };
        }
        else
        {
            var evaluators = items.Select(i => i.Evaluate).ToArray();
            body = record =>
            {
                var value = evaluate(record);
                if (value.IsError || value.IsNull)
                {
                    return value.IsError ? value : Value.False;
                }

                foreach (var item in evaluators)
                {
                    var candidate = item(record);
                    if (candidate.IsError)
                    {
                        return candidate;
                    }

                    if (Operators.AreEqual(value, candidate))
                    {
                        return Value.FromBool(!negated);
                    }
                }

                return Value.FromBool(negated);
            };
        }

        return Fold(node, new Bound(body, StaticType.Bool, operand.IsConstant && items.All(i => i.IsConstant)));
    }

    // Kleene logic: false and x = false, true or x = true (x is not evaluated), otherwise null wins.
    private static Func<IRecord, Value> And(Func<IRecord, Value> l, Func<IRecord, Value> r, int column) => record =>
    {
        var a = l(record);
        if (a.Kind == ValueKind.Bool && !a.AsBool)
        {
            return Value.False;
        }

        if (a.Kind is not (ValueKind.Bool or ValueKind.Null))
        {
            return a.IsError ? a : Value.TypeError($"'and' needs booleans, got {a.KindName}", column);
        }

        var b = r(record);
        return b.Kind switch
        {
            ValueKind.Bool => b.AsBool ? a : Value.False,
            ValueKind.Null or ValueKind.Error => b,
            _ => Value.TypeError($"'and' needs booleans, got {b.KindName}", column),
        };
    };

    private static Func<IRecord, Value> Or(Func<IRecord, Value> l, Func<IRecord, Value> r, int column) => record =>
    {
        var a = l(record);
        if (a.IsTrue)
        {
            return Value.True;
        }

        if (a.Kind is not (ValueKind.Bool or ValueKind.Null))
        {
            return a.IsError ? a : Value.TypeError($"'or' needs booleans, got {a.KindName}", column);
        }

        var b = r(record);
        return b.Kind switch
        {
            ValueKind.Bool => b.AsBool ? Value.True : a,
            ValueKind.Null or ValueKind.Error => b,
            _ => Value.TypeError($"'or' needs booleans, got {b.KindName}", column),
        };
    };

    private static StaticType Numeric(StaticType operand) =>
        operand == StaticType.Null ? StaticType.Null : StaticType.Number;

    private static StaticType ArithmeticType(BinaryOp op, StaticType left, StaticType right, int column)
    {
        var symbol = Operators.Symbol(op);
        if (op == BinaryOp.Add && left != right
            && left is StaticType.String or StaticType.Number && right is StaticType.String or StaticType.Number)
        {
            throw new ExpressionException(
                $"'+' cannot add {Name(left)} and {Name(right)}; use to_string() to join text with a number", column);
        }

        foreach (var side in new[] { left, right })
        {
            if (side is StaticType.Bool or StaticType.Timestamp || (side == StaticType.String && op != BinaryOp.Add))
            {
                var needs = op == BinaryOp.Add ? "two numbers or two strings" : "numbers";
                throw new ExpressionException($"'{symbol}' needs {needs}, got {Name(side)}", column);
            }
        }

        if (left == StaticType.Null || right == StaticType.Null)
        {
            return StaticType.Null;
        }

        if (op == BinaryOp.Add)
        {
            return left == StaticType.String || right == StaticType.String ? StaticType.String
                : left == StaticType.Number || right == StaticType.Number ? StaticType.Number
                : StaticType.Any;
        }

        return StaticType.Number;
    }

    private static StaticType EqualityType(BinaryOp op, StaticType left, StaticType right, int column)
    {
        if (Known(left) && Known(right) && left != right)
        {
            throw new ExpressionException(
                $"'{Operators.Symbol(op)}' compares {Name(left)} with {Name(right)}, which are never equal", column);
        }

        return StaticType.Bool;
    }

    private static StaticType OrderType(BinaryOp op, StaticType left, StaticType right, int column)
    {
        var symbol = Operators.Symbol(op);
        if (left == StaticType.Bool || right == StaticType.Bool)
        {
            throw new ExpressionException($"'{symbol}' cannot order booleans", column);
        }

        if (Known(left) && Known(right) && left != right)
        {
            throw new ExpressionException($"'{symbol}' cannot compare {Name(left)} with {Name(right)}", column);
        }

        return StaticType.Bool;
    }

    private static StaticType LogicType(BinaryOp op, StaticType left, StaticType right, int column)
    {
        Expect(left, StaticType.Bool, $"the left side of '{Operators.Symbol(op)}'", column);
        Expect(right, StaticType.Bool, $"the right side of '{Operators.Symbol(op)}'", column);
        return StaticType.Bool;
    }

    private static bool Known(StaticType type) => type is not (StaticType.Any or StaticType.Null);
}
