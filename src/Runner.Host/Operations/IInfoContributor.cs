namespace Runner.Host.Operations;

/// <summary>
/// Adds a section to <c>GET /info</c>. Registered in the service collection; the slice provider
/// contributes its isolation capabilities (section <c>slice_isolation</c>) this way.
/// </summary>
internal interface IInfoContributor
{
    /// <summary>The JSON property the section appears under.</summary>
    string Section { get; }

    /// <summary>A JSON-serializable value describing the section now.</summary>
    object? Describe();
}
