namespace Runner.Slice.Expressions;

/// <summary>
/// An expression compiled once into a tree of closures. Evaluation reads fields by slot, does no
/// parsing or name lookup, allocates only for string results and errors, and never throws on
/// bad data: failures come back as error values. Safe to share between threads.
/// </summary>
internal sealed class CompiledExpression
{
    private readonly Func<IRecord, Value> _evaluate;

    internal CompiledExpression(string source, Func<IRecord, Value> evaluate, StaticType resultType, bool isConstant)
    {
        Source = source;
        _evaluate = evaluate;
        ResultType = resultType;
        IsConstant = isConstant;
    }

    public string Source { get; }

    /// <summary>The result kind known at compile time; <see cref="StaticType.Any"/> when it depends on the data.</summary>
    public StaticType ResultType { get; }

    /// <summary>True when the whole expression was folded to one value: evaluation reads no field.</summary>
    public bool IsConstant { get; }

    public Value Evaluate(IRecord record) => _evaluate(record);

    /// <summary>Applies the expression as a filter; on <see cref="FilterOutcome.Error"/>, <paramref name="error"/> says why.</summary>
    public FilterOutcome Test(IRecord record, out Value error)
    {
        var result = _evaluate(record);
        error = default;
        switch (result.Kind)
        {
            case ValueKind.Bool:
                return result.AsBool ? FilterOutcome.Keep : FilterOutcome.Drop;
            case ValueKind.Null:
                return FilterOutcome.Drop;
            case ValueKind.Error:
                error = result;
                return FilterOutcome.Error;
            default:
                error = Value.TypeError($"a filter must give a boolean, got {result.KindName}", 1);
                return FilterOutcome.Error;
        }
    }
}
