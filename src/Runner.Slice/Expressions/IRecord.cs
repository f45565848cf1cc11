namespace Runner.Slice.Expressions;

/// <summary>
/// What a compiled expression reads from: a record's fields by slot. Slots come from the field
/// resolver given at compile time, so evaluation never looks a name up. A missing value is
/// <see cref="Value.Null"/>.
/// </summary>
internal interface IRecord
{
    Value Get(int slot);

    /// <summary>Whether the field is present at all (an explicit <c>null</c> is present); contracts tell the two apart.</summary>
    bool Has(int slot) => !Get(slot).IsNull;

    /// <summary>
    /// The field's text as UTF-8 when the record holds it as plain, unescaped text, so checks can
    /// read it without making a string; false when it does not (absent, null, another kind, or escaped).
    /// </summary>
    bool TryGetUtf8(int slot, out ReadOnlySpan<byte> utf8)
    {
        utf8 = default;
        return false;
    }
}
