namespace Runner.Slice.Contracts;

/// <summary>
/// The contracts of one run, loaded from their files: the source's, checked on every record read
/// before any transform, and the sink's, checked on what leaves the transforms.
/// </summary>
internal sealed record RunContracts(Contract? Source, Contract? Sink)
{
    public static readonly RunContracts None = new(null, null);
}
