using System.Text.RegularExpressions;

namespace Runner.Slice.Contracts;

/// <summary>The type a contract field must have.</summary>
internal enum FieldType
{
    String,
    Int,
    Number,
    Bool,
    Timestamp,
}

/// <summary>One field's rules. Absent rules do not apply.</summary>
internal sealed record FieldRule(string Name, FieldType Type, int Line)
{
    public bool Required { get; init; }

    /// <summary>Whether an explicit <c>null</c> is allowed (a missing optional field always is).</summary>
    public bool Nullable { get; init; } = true;

    public IReadOnlyList<string>? Enum { get; init; }

    public double? Min { get; init; }

    public double? Max { get; init; }

    public Regex? Pattern { get; init; }

    public int? MaxLength { get; init; }
}

/// <summary>
/// A data contract: a name, a version, the fields' rules, and the SHA-256 of its file text — the
/// identity lineage events and dead-letter records point at.
/// </summary>
internal sealed record Contract(string Name, int Version, IReadOnlyList<FieldRule> Fields, string ContentHash, string File);
