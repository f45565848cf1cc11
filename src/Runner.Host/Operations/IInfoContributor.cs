using System.Text.Json.Nodes;

namespace Runner.Host.Operations;

/// <summary>
/// Adds a section to <c>GET /info</c>. Registered in the service collection; the slice provider
/// contributes its isolation capabilities (section <c>slice_isolation</c>) this way.
/// </summary>
internal interface IInfoContributor
{
    /// <summary>The JSON property the section appears under.</summary>
    string Section { get; }

    /// <summary>The section now; null when it does not apply to this process.</summary>
    JsonNode? Describe();
}
