namespace Runner.Slice.Expressions;

/// <summary>
/// Compiles expression text once per run: parse, resolve fields to slots, check types where
/// they are known, fold constant sub-expressions, and build a tree of closures.
/// Every problem found here is an <see cref="ExpressionException"/> with a column.
/// </summary>
internal sealed partial class ExpressionCompiler
{
    private readonly Func<string, int?> _resolveField;

    private ExpressionCompiler(Func<string, int?> resolveField)
    {
        _resolveField = resolveField;
    }

    /// <summary>Compiles a value expression (e.g. a <c>map</c> <c>set:</c> entry).</summary>
    /// <param name="resolveField">Maps a field name to its slot in <see cref="IRecord"/>; null means no such field.</param>
    public static CompiledExpression Compile(string source, Func<string, int?> resolveField, ExpressionLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(resolveField);
        var tree = Parser.Parse(source, limits ?? ExpressionLimits.Default);
        var bound = new ExpressionCompiler(resolveField).Bind(tree);
        return new CompiledExpression(source, bound.Evaluate, bound.Type, bound.IsConstant);
    }

    /// <summary>Compiles a condition (a <c>filter</c> <c>where:</c>); it must be boolean, or depend on the data.</summary>
    public static CompiledExpression CompileFilter(string source, Func<string, int?> resolveField, ExpressionLimits? limits = null)
    {
        var compiled = Compile(source, resolveField, limits);
        if (compiled.ResultType is not (StaticType.Bool or StaticType.Any))
        {
            throw new ExpressionException(
                $"a filter must be a boolean expression; this one is {Name(compiled.ResultType)}", 1);
        }

        return compiled;
    }

    private readonly record struct Bound(Func<IRecord, Value> Evaluate, StaticType Type, bool IsConstant);

    private Bound Bind(Node node) => node switch
    {
        LiteralNode literal => Constant(literal.Value),
        FieldNode field => BindField(field),
        UnaryNode unary => BindUnary(unary),
        BinaryNode binary => BindBinary(binary),
        IsNullNode isNull => BindIsNull(isNull),
        InNode inList => BindIn(inList),
        CallNode call => BindCall(call),
        _ => throw new ExpressionException($"unsupported syntax {node.GetType().Name}", node.Position + 1),
    };

    private static Bound Constant(Value value)
    {
        var type = value.Kind switch
        {
            ValueKind.Null => StaticType.Null,
            ValueKind.Bool => StaticType.Bool,
            ValueKind.Integer or ValueKind.Double => StaticType.Number,
            ValueKind.String => StaticType.String,
            ValueKind.Timestamp => StaticType.Timestamp,
            _ => StaticType.Any,
        };
        return new Bound(_ => value, type, IsConstant: true);
    }

    private Bound BindField(FieldNode field)
    {
        var slot = _resolveField(field.Name)
            ?? throw new ExpressionException($"unknown field '{field.Name}'", field.Position + 1);
        return new Bound(record => record.Get(slot), StaticType.Any, IsConstant: false);
    }

    private Bound BindIsNull(IsNullNode node)
    {
        var operand = Bind(node.Operand);
        var evaluate = operand.Evaluate;
        var negated = node.Negated;
        return Fold(node, new Bound(
            record =>
            {
                var value = evaluate(record);
                return value.IsError ? value : Value.FromBool(value.IsNull != negated);
            },
            StaticType.Bool,
            operand.IsConstant));
    }

    /// <summary>
    /// Replaces a node whose inputs are all constant with its value. A constant that fails
    /// (e.g. <c>1 / 0</c>) is a compile error rather than an error on every record.
    /// </summary>
    private static Bound Fold(Node node, Bound bound)
    {
        if (!bound.IsConstant)
        {
            return bound;
        }

        var value = bound.Evaluate(NoRecord.Instance);
        if (value.IsError)
        {
            var column = value.ErrorColumn > 0 ? value.ErrorColumn : node.Position + 1;
            throw new ExpressionException($"this constant expression fails: {value.ErrorReason}", column);
        }

        return Constant(value);
    }

    private static void Expect(StaticType actual, StaticType wanted, string what, int column)
    {
        if (actual is not (StaticType.Any or StaticType.Null) && actual != wanted)
        {
            throw new ExpressionException($"{what} must be {Name(wanted)}, got {Name(actual)}", column);
        }
    }

    private static StaticType Unify(IEnumerable<StaticType> types)
    {
        var known = types.Where(t => t != StaticType.Null).Distinct().ToList();
        return known.Count switch
        {
            0 => StaticType.Null,
            1 => known[0],
            _ => StaticType.Any,
        };
    }

    internal static string Name(StaticType type) => type switch
    {
        StaticType.Any => "any value",
        StaticType.Null => "always null",
        StaticType.Bool => "a boolean",
        StaticType.Number => "a number",
        StaticType.String => "a string",
        _ => "a timestamp",
    };

    /// <summary>The record constant folding evaluates against: a folded node never reads a field.</summary>
    private sealed class NoRecord : IRecord
    {
        public static NoRecord Instance { get; } = new();

        public Value Get(int slot) => throw new InvalidOperationException("a constant expression read a field");
    }
}
