using System.Text.Json.Nodes;

namespace Runner.Host.Operations;

/// <summary>
/// <c>slice_isolation</c> in <c>GET /info</c>: what the capability probe found on this node — the
/// sandbox tool, the namespaces a slice gets, the cgroup version and controllers, and why isolation
/// is unavailable when it is. Null on a node that runs no slice effect.
/// </summary>
internal sealed class SliceInfoContributor(RunnerControl control) : IInfoContributor
{
    public string Section => InfoReport.SliceIsolationSection;

    public JsonNode? Describe()
    {
        if (control.Components?.Slices is not { } slices)
        {
            return null;
        }
        var capabilities = slices.Capabilities;
        return new JsonObject
        {
            ["isolated"] = capabilities.Isolated,
            ["sandbox"] = capabilities.Sandbox,
            ["sandbox_version"] = capabilities.SandboxVersion,
            ["namespaces"] = JsonNodes.Array(capabilities.Namespaces, v => v),
            ["cgroup_version"] = capabilities.CgroupVersion,
            ["cgroup_controllers"] = JsonNodes.Array(capabilities.CgroupControllers, v => v),
            ["uid"] = capabilities.Uid,
            ["problems"] = JsonNodes.Array(capabilities.Problems, v => v),
        };
    }
}
