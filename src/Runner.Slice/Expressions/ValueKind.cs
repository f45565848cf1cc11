namespace Runner.Slice.Expressions;

/// <summary>The run-time kind of a <see cref="Value"/>.</summary>
internal enum ValueKind : byte
{
    Null,
    Bool,
    /// <summary>A number held exactly as a 64-bit integer.</summary>
    Integer,
    /// <summary>A number held as a double.</summary>
    Double,
    String,
    /// <summary>An instant, held as UTC ticks.</summary>
    Timestamp,
    /// <summary>A failed evaluation: carries a dead-letter reason code and a message.</summary>
    Error,
}
