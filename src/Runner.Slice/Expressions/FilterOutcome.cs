namespace Runner.Slice.Expressions;

/// <summary>What a filter does with one record.</summary>
internal enum FilterOutcome
{
    /// <summary>The condition is false or null (SQL <c>WHERE</c>: only true keeps a record).</summary>
    Drop,
    Keep,
    /// <summary>Evaluation failed; the record goes to the dead-letter output with the error's code.</summary>
    Error,
}
