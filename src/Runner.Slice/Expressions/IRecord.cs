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
}
