namespace Runner.Slice.Expressions;

/// <summary>A compile-time error: bad syntax, unknown field or function, or a static type error.</summary>
internal sealed class ExpressionException : Exception
{
    public ExpressionException(string reason, int column)
        : base($"column {column}: {reason}")
    {
        Reason = reason;
        Column = column;
    }

    /// <summary>What is wrong, without the position.</summary>
    public string Reason { get; }

    /// <summary>1-based column in the expression text where the problem is.</summary>
    public int Column { get; }
}
