using System.Globalization;

namespace Runner.Slice.Expressions;

/// <summary>
/// One value of the expression language. Integer and Double are both the language's "number":
/// the integer form only keeps 64-bit ids exact. Errors are values too, so evaluation never
/// throws on bad data; they propagate through every operator until the caller sees them.
/// <see cref="Equals(Value)"/> is structural (kind and payload), for tests and caching; the
/// language's <c>==</c> lives in <see cref="Operators"/>.
/// </summary>
internal readonly struct Value : IEquatable<Value>
{
    private readonly long _bits;
    private readonly string? _text;
    private readonly string? _code;

    private Value(ValueKind kind, long bits, string? text, string? code = null)
    {
        Kind = kind;
        _bits = bits;
        _text = text;
        _code = code;
    }

    public static Value Null => default;

    public static Value True { get; } = new(ValueKind.Bool, 1, null);

    public static Value False { get; } = new(ValueKind.Bool, 0, null);

    public ValueKind Kind { get; }

    public bool IsNull => Kind == ValueKind.Null;

    public bool IsError => Kind == ValueKind.Error;

    public bool IsNumber => Kind is ValueKind.Integer or ValueKind.Double;

    /// <summary>True only for the boolean <c>true</c>: null, false and every other kind are not.</summary>
    public bool IsTrue => Kind == ValueKind.Bool && _bits != 0;

    public bool AsBool => Kind == ValueKind.Bool ? _bits != 0 : throw Wrong(ValueKind.Bool);

    public long AsInteger => Kind == ValueKind.Integer ? _bits : throw Wrong(ValueKind.Integer);

    /// <summary>The number as a double, whichever form holds it.</summary>
    public double AsDouble => Kind switch
    {
        ValueKind.Integer => _bits,
        ValueKind.Double => BitConverter.Int64BitsToDouble(_bits),
        _ => throw Wrong(ValueKind.Double),
    };

    public string AsString => Kind == ValueKind.String ? _text! : throw Wrong(ValueKind.String);

    public DateTimeOffset AsTimestamp =>
        Kind == ValueKind.Timestamp ? new DateTimeOffset(_bits, TimeSpan.Zero) : throw Wrong(ValueKind.Timestamp);

    internal long TimestampTicks => _bits;

    /// <summary>The dead-letter reason code of an error value (see <see cref="ExpressionErrorCodes"/>).</summary>
    public string? ErrorCode => _code;

    /// <summary>What went wrong, without the position.</summary>
    public string? ErrorReason => Kind == ValueKind.Error ? _text : null;

    /// <summary>1-based column of the operator or call that failed; 0 when not known.</summary>
    public int ErrorColumn => Kind == ValueKind.Error ? (int)_bits : 0;

    /// <summary>The reason with its column, as a dead-letter record would carry it.</summary>
    public string? ErrorMessage => Kind switch
    {
        ValueKind.Error when _bits > 0 => $"{_text} (column {_bits})",
        ValueKind.Error => _text,
        _ => null,
    };

    public static Value FromBool(bool value) => value ? True : False;

    public static Value FromInteger(long value) => new(ValueKind.Integer, value, null);

    public static Value FromDouble(double value) =>
        new(ValueKind.Double, BitConverter.DoubleToInt64Bits(value), null);

    public static Value FromString(string? value) =>
        value is null ? Null : new(ValueKind.String, 0, value);

    public static Value FromTimestamp(DateTimeOffset value) => new(ValueKind.Timestamp, value.UtcTicks, null);

    public static Value Error(string code, string reason, int column = 0) =>
        new(ValueKind.Error, column, reason, code);

    internal static Value TypeError(string reason, int column) =>
        Error(ExpressionErrorCodes.TypeError, reason, column);

    internal static Value ArithmeticError(string reason, int column) =>
        Error(ExpressionErrorCodes.ArithmeticError, reason, column);

    /// <summary>The language's name for this value's kind, as used in messages.</summary>
    public string KindName => KindNameOf(Kind);

    internal static string KindNameOf(ValueKind kind) => kind switch
    {
        ValueKind.Integer or ValueKind.Double => "number",
        _ => kind.ToString().ToLowerInvariant(),
    };

    public bool Equals(Value other) =>
        Kind == other.Kind && _bits == other._bits
        && string.Equals(_text, other._text, StringComparison.Ordinal)
        && string.Equals(_code, other._code, StringComparison.Ordinal);

    public override bool Equals(object? obj) => obj is Value other && Equals(other);

    public override int GetHashCode() => HashCode.Combine(Kind, _bits, _text, _code);

    public static bool operator ==(Value left, Value right) => left.Equals(right);

    public static bool operator !=(Value left, Value right) => !left.Equals(right);

    public override string ToString() => Kind switch
    {
        ValueKind.Null => "null",
        ValueKind.Bool => _bits != 0 ? "true" : "false",
        ValueKind.Integer => _bits.ToString(CultureInfo.InvariantCulture),
        ValueKind.Double => AsDouble.ToString("R", CultureInfo.InvariantCulture),
        ValueKind.String => _text!,
        ValueKind.Timestamp => AsTimestamp.ToString("O", CultureInfo.InvariantCulture),
        _ => $"error {_code}: {ErrorMessage}",
    };

    private InvalidOperationException Wrong(ValueKind wanted) =>
        new($"value is {Kind}, not {wanted}");
}
