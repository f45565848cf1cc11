namespace Runner.Slice.Expressions;

/// <summary>Dead-letter reason codes carried by error values from evaluation.</summary>
internal static class ExpressionErrorCodes
{
    /// <summary>An operator or function got a kind it cannot work on, e.g. a string times 2.</summary>
    public const string TypeError = "expression_type_error";

    /// <summary>Division or remainder by zero, or a result that is not a finite number.</summary>
    public const string ArithmeticError = "expression_arithmetic_error";
}
