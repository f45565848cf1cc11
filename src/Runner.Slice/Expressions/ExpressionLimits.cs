namespace Runner.Slice.Expressions;

/// <summary>
/// Bounds on what the compiler accepts, so a hostile spec cannot exhaust the stack or the
/// compile step. Depth counts nesting (parentheses, unary operators, call arguments) and the
/// height of the syntax tree, so a long chain like <c>a + a + a ...</c> is bounded too.
/// </summary>
internal sealed record ExpressionLimits(int MaxLength = 4096, int MaxDepth = 64)
{
    public static ExpressionLimits Default { get; } = new();
}
