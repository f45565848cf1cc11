namespace Runner.Slice.Expressions;

internal sealed partial class ExpressionCompiler
{
    private Bound BindCall(CallNode node)
    {
        var arguments = node.Arguments.Select(Bind).ToArray();
        var column = node.Position + 1;
        var isConstant = arguments.All(a => a.IsConstant);
        var bound = node.Name switch
        {
            "if" => BindIf(node, arguments),
            "coalesce" => BindCoalesce(node, arguments),
            _ => BindBuiltIn(node, arguments),
        };
        return Fold(node, bound with { IsConstant = isConstant });

        Bound BindIf(CallNode call, Bound[] args)
        {
            CheckArity(call, args.Length, 3, 3);
            Expect(args[0].Type, StaticType.Bool, "the condition of if()", call.Arguments[0].Position + 1);
            var (condition, then, otherwise) = (args[0].Evaluate, args[1].Evaluate, args[2].Evaluate);
            return new Bound(
                record =>
                {
                    var test = condition(record);
                    return test.Kind switch
                    {
                        ValueKind.Bool => test.AsBool ? then(record) : otherwise(record),
                        ValueKind.Null => otherwise(record),
                        ValueKind.Error => test,
                        _ => Value.TypeError($"the condition of if() must be a boolean, got {test.KindName}", column),
                    };
                },
                Unify([args[1].Type, args[2].Type]),
                false);
        }

        Bound BindCoalesce(CallNode call, Bound[] args)
        {
            CheckArity(call, args.Length, 1, int.MaxValue);
            var evaluators = args.Select(a => a.Evaluate).ToArray();
            return new Bound(
                record =>
                {
                    foreach (var evaluate in evaluators)
                    {
                        var value = evaluate(record);
                        if (!value.IsNull)
                        {
                            return value;
                        }
                    }

                    return Value.Null;
                },
                Unify(args.Select(a => a.Type)),
                false);
        }
    }

    private static Bound BindBuiltIn(CallNode node, Bound[] arguments)
    {
        if (!Functions.All.TryGetValue(node.Name, out var function))
        {
            var known = string.Join(", ", Functions.All.Keys.Append("if").Append("coalesce").Order(StringComparer.Ordinal));
            throw new ExpressionException($"unknown function '{node.Name}' (known: {known})", node.Position + 1);
        }

        CheckArity(node, arguments.Length, function.RequiredCount, function.Parameters.Length);
        for (var i = 0; i < arguments.Length; i++)
        {
            if (function.Parameters[i] != StaticType.Any)
            {
                Expect(arguments[i].Type, function.Parameters[i], $"argument {i + 1} of {node.Name}()",
                    node.Arguments[i].Position + 1);
            }
        }

        var column = node.Position + 1;
        Func<IRecord, Value> evaluate = arguments.Length switch
        {
            1 => Strict(function.Body1!, arguments[0].Evaluate, column),
            2 => Strict(function.Body2!, arguments[0].Evaluate, arguments[1].Evaluate, column),
            _ => Strict(function.Body3!, arguments[0].Evaluate, arguments[1].Evaluate, arguments[2].Evaluate, column),
        };
        return new Bound(evaluate, function.Returns, false);
    }

    private static Func<IRecord, Value> Strict(Function1 body, Func<IRecord, Value> a, int column) => record =>
    {
        var x = a(record);
        return x.IsError || x.IsNull ? x : body(x, column);
    };

    private static Func<IRecord, Value> Strict(
        Function2 body, Func<IRecord, Value> a, Func<IRecord, Value> b, int column) => record =>
    {
        var x = a(record);
        if (x.IsError)
        {
            return x;
        }

        var y = b(record);
        if (y.IsError)
        {
            return y;
        }

        return x.IsNull || y.IsNull ? Value.Null : body(x, y, column);
    };

    private static Func<IRecord, Value> Strict(
        Function3 body, Func<IRecord, Value> a, Func<IRecord, Value> b, Func<IRecord, Value> c, int column) => record =>
    {
        var x = a(record);
        if (x.IsError)
        {
            return x;
        }

        var y = b(record);
        if (y.IsError)
        {
            return y;
        }

        var z = c(record);
        if (z.IsError)
        {
            return z;
        }

        return x.IsNull || y.IsNull || z.IsNull ? Value.Null : body(x, y, z, column);
    };

    private static void CheckArity(CallNode node, int count, int min, int max)
    {
        if (count >= min && count <= max)
        {
            return;
        }

        var expected = min == max ? $"{min}" : max == int.MaxValue ? $"at least {min}" : $"{min} to {max}";
        throw new ExpressionException(
            $"{node.Name}() takes {expected} argument{(max == 1 ? "" : "s")}, got {count}", node.Position + 1);
    }
}
