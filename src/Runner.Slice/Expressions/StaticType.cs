namespace Runner.Slice.Expressions;

/// <summary>
/// What the compiler knows about a node's kind before any record is seen. Fields are
/// <see cref="Any"/>; literals and most operators and functions have a known type, which lets
/// mistakes like <c>'abc' * 2</c> fail at compile time.
/// </summary>
internal enum StaticType
{
    Any,
    Null,
    Bool,
    Number,
    String,
    Timestamp,
}
