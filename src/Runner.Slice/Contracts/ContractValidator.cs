using System.Globalization;
using System.Text.RegularExpressions;
using Runner.Slice.Expressions;

namespace Runner.Slice.Contracts;

/// <summary>A record breaking one rule of the contract: the field, a stable code and a message.</summary>
internal sealed record Violation(string Field, string Code, string Message);

/// <summary>Stable codes of contract violations (what dead-letter records carry).</summary>
internal static class ViolationCodes
{
    public const string MissingField = "missing_field";
    public const string NullNotAllowed = "null_not_allowed";
    public const string TypeMismatch = "type_mismatch";
    public const string BelowMin = "below_min";
    public const string AboveMax = "above_max";
    public const string NotInEnum = "not_in_enum";
    public const string PatternMismatch = "pattern_mismatch";
    public const string PatternTimeout = "pattern_timeout";
    public const string TooLong = "too_long";
}

/// <summary>
/// A contract compiled for one run: fields resolved to record slots once, so checking a record
/// does no name lookups. Checks every rule of every field and reports every violation, not just
/// the first, so a dead-letter record says all that is wrong with it.
/// </summary>
internal sealed class ContractValidator
{
    private readonly (FieldRule Rule, int Slot, HashSet<string>? Enum)[] _fields;
    private readonly byte[][]?[] _enumUtf8;

    private ContractValidator((FieldRule, int, HashSet<string>?)[] fields, Contract contract)
    {
        _fields = fields;
        Contract = contract;
        _enumUtf8 = [.. _fields.Select(f => f.Rule.Enum is { } values ? values.Select(System.Text.Encoding.UTF8.GetBytes).ToArray() : null)];
    }

    public Contract Contract { get; }

    public static ContractValidator Compile(Contract contract, Func<string, int?> resolveField) =>
        new(contract.Fields
            .Select(f => (f, resolveField(f.Name) ?? throw new InvalidOperationException($"field '{f.Name}' of contract '{contract.Name}' has no slot"),
                f.Enum is null ? null : new HashSet<string>(f.Enum, StringComparer.Ordinal)))
            .ToArray(), contract);

    /// <summary>Adds every violation of <paramref name="record"/> to <paramref name="violations"/>; true when there is none.</summary>
    public bool Validate(IRecord record, List<Violation> violations)
    {
        var before = violations.Count;
        for (var i = 0; i < _fields.Length; i++)
        {
            var (rule, slot, enumValues) = _fields[i];
            if (rule.Type is FieldType.String or FieldType.Timestamp && record.TryGetUtf8(slot, out var utf8) && PassesAsText(rule, utf8, _enumUtf8[i]))
            {
                continue;
            }
            if (!record.Has(slot))
            {
                if (rule.Required)
                {
                    violations.Add(new Violation(rule.Name, ViolationCodes.MissingField, $"required field '{rule.Name}' is missing"));
                }
                continue;
            }
            var value = record.Get(slot);
            if (value.IsNull)
            {
                if (!rule.Nullable || rule.Required)
                {
                    violations.Add(new Violation(rule.Name, ViolationCodes.NullNotAllowed, $"field '{rule.Name}' is null"));
                }
                continue;
            }
            Check(rule, value, enumValues, violations);
        }
        return violations.Count == before;
    }

    private static void Check(FieldRule rule, Value value, HashSet<string>? enumValues, List<Violation> violations)
    {
        switch (rule.Type)
        {
            case FieldType.String when value.Kind != ValueKind.String:
            case FieldType.Bool when value.Kind != ValueKind.Bool:
            case FieldType.Number when value.Kind is not (ValueKind.Integer or ValueKind.Double):
            case FieldType.Int when !IsWhole(value):
            case FieldType.Timestamp when !IsTimestamp(value):
                violations.Add(new Violation(rule.Name, ViolationCodes.TypeMismatch, $"field '{rule.Name}' must be {Describe(rule.Type)}, not {value.Kind.ToString().ToLowerInvariant()}"));
                return;
        }
        if (rule.Min is { } min && value.AsDouble < min)
        {
            violations.Add(new Violation(rule.Name, ViolationCodes.BelowMin, $"field '{rule.Name}' is {Number(value)}, below the minimum {min.ToString(CultureInfo.InvariantCulture)}"));
        }
        if (rule.Max is { } max && value.AsDouble > max)
        {
            violations.Add(new Violation(rule.Name, ViolationCodes.AboveMax, $"field '{rule.Name}' is {Number(value)}, above the maximum {max.ToString(CultureInfo.InvariantCulture)}"));
        }
        if (enumValues is not null)
        {
            var text = value.Kind == ValueKind.String ? value.AsString : Number(value);
            if (!enumValues.Contains(text))
            {
                violations.Add(new Violation(rule.Name, ViolationCodes.NotInEnum, $"field '{rule.Name}' is '{Clip(text)}', not one of {string.Join(", ", rule.Enum!)}"));
            }
        }
        if (rule.Type != FieldType.String)
        {
            return;
        }
        var s = value.AsString;
        if (rule.MaxLength is { } maxLength && s.Length > maxLength)
        {
            violations.Add(new Violation(rule.Name, ViolationCodes.TooLong, $"field '{rule.Name}' has {s.Length} characters, more than {maxLength}"));
        }
        if (rule.Pattern is { } pattern)
        {
            try
            {
                if (!pattern.IsMatch(s))
                {
                    violations.Add(new Violation(rule.Name, ViolationCodes.PatternMismatch, $"field '{rule.Name}' is '{Clip(s)}', which does not match {pattern}"));
                }
            }
            catch (RegexMatchTimeoutException)
            {
                violations.Add(new Violation(rule.Name, ViolationCodes.PatternTimeout, $"field '{rule.Name}': the pattern took longer than {ContractParser.PatternTimeout.TotalMilliseconds} ms"));
            }
        }
    }

    /// <summary>
    /// The fast path for text held as UTF-8: true when the field passes every rule without making a
    /// string. False sends it down the full check, which also words the violation.
    /// </summary>
    private static bool PassesAsText(FieldRule rule, ReadOnlySpan<byte> utf8, byte[][]? enumValues)
    {
        if (rule.Type == FieldType.Timestamp && !Rfc3339.IsValid(utf8))
        {
            return false;
        }
        if (enumValues is not null)
        {
            var found = false;
            foreach (var candidate in enumValues)
            {
                if (utf8.SequenceEqual(candidate))
                {
                    found = true;
                    break;
                }
            }
            if (!found)
            {
                return false;
            }
        }
        if (rule.Type != FieldType.String || (rule.MaxLength is null && rule.Pattern is null))
        {
            return true;
        }
        var ascii = System.Text.Ascii.IsValid(utf8);
        var length = ascii ? utf8.Length : System.Text.Encoding.UTF8.GetCharCount(utf8);
        if (rule.MaxLength is { } maxLength && length > maxLength)
        {
            return false;
        }
        if (rule.Pattern is not { } pattern)
        {
            return true;
        }
        var rented = length <= 256 ? null : System.Buffers.ArrayPool<char>.Shared.Rent(length);
        try
        {
            Span<char> chars = rented is null ? stackalloc char[256] : rented;
            var written = System.Text.Encoding.UTF8.GetChars(utf8, chars);
            return pattern.IsMatch(chars[..written]);
        }
        catch (RegexMatchTimeoutException)
        {
            return false;
        }
        finally
        {
            if (rented is not null)
            {
                System.Buffers.ArrayPool<char>.Shared.Return(rented);
            }
        }
    }

    private static bool IsWhole(Value value) =>
        value.Kind == ValueKind.Integer || (value.Kind == ValueKind.Double && double.IsFinite(value.AsDouble) && Math.Floor(value.AsDouble) == value.AsDouble);

    /// <summary>JSON has no timestamp type: an RFC 3339 string with an offset counts.</summary>
    private static bool IsTimestamp(Value value) =>
        value.Kind == ValueKind.Timestamp
        || (value.Kind == ValueKind.String && value.AsString.Contains('T', StringComparison.Ordinal)
            && DateTimeOffset.TryParse(value.AsString, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out _)
            && (value.AsString.EndsWith('Z') || value.AsString.LastIndexOfAny(['+', '-']) > value.AsString.IndexOf('T', StringComparison.Ordinal)));

    private static string Describe(FieldType type) => type switch
    {
        FieldType.Int => "an integer",
        FieldType.Number => "a number",
        FieldType.Bool => "a boolean",
        FieldType.Timestamp => "an RFC 3339 timestamp",
        _ => "a string",
    };

    private static string Number(Value value) => value.Kind == ValueKind.Integer
        ? value.AsInteger.ToString(CultureInfo.InvariantCulture)
        : value.AsDouble.ToString("R", CultureInfo.InvariantCulture);

    private static string Clip(string text) => text.Length <= 64 ? text : text[..64] + "…";
}
