namespace Runner.Slices;

/// <summary>
/// What this node can do for slices, probed once at start: the sandbox tool, the namespaces it
/// could create as the slice uid, the cgroup version and controllers the worker can write. A slice
/// that requires isolation runs only when <see cref="Isolated"/> is true (fail closed).
/// </summary>
internal sealed record SliceCapabilities
{
    public static readonly IReadOnlyList<string> AllNamespaces = ["user", "pid", "net", "mount", "uts", "ipc"];

    /// <summary>The sandbox tool that works (<c>bwrap</c>'s path), or null.</summary>
    public string? Sandbox { get; init; }

    public string? SandboxVersion { get; init; }

    /// <summary>Namespaces a slice gets, of <see cref="AllNamespaces"/>.</summary>
    public IReadOnlyList<string> Namespaces { get; init; } = [];

    /// <summary><c>v2</c>, <c>v1</c>, or null when no usable cgroup controllers were found.</summary>
    public string? CgroupVersion { get; init; }

    /// <summary>Usable controllers of <c>cpu</c>, <c>cpuacct</c>, <c>memory</c>, <c>pids</c>.</summary>
    public IReadOnlyList<string> CgroupControllers { get; init; } = [];

    /// <summary>Where slice cgroups are made (one per v1 hierarchy).</summary>
    public IReadOnlyList<string> CgroupBases { get; init; } = [];

    public int Uid { get; init; }

    /// <summary>Why isolation is not available; empty when it is.</summary>
    public IReadOnlyList<string> Problems { get; init; } = [];

    public bool Isolated => Problems.Count == 0;

    /// <summary>True when slices can at least be confined to a cgroup (also used without isolation).</summary>
    public bool Cgroups => CgroupVersion is not null;
}
