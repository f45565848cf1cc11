using Runner.Slices.Cgroups;

namespace Runner.Slices;

/// <summary>Whether a slice reaches the network: <c>none</c> is a new network namespace with loopback only.</summary>
internal enum SliceNetwork
{
    None,
    Host,
}

/// <summary>What a log line is tagged with: the slice run, and the command's tenant and correlation id.</summary>
internal sealed record SliceTags(string RunId, string Tenant, string CorrelationId);

/// <summary>
/// One program to run in a sandbox. <see cref="Files"/> appear read-only under
/// <see cref="SandboxLayout.SliceDirectory"/>, <see cref="Secrets"/> under
/// <see cref="SandboxLayout.SecretsDirectory"/>; declared paths are bound at the same location.
/// </summary>
internal sealed record SandboxRequest
{
    /// <summary>Names the cgroup and the per-slice directory: letters, digits, <c>-</c>, <c>_</c>, <c>.</c>.</summary>
    public required string Id { get; init; }

    public required IReadOnlyList<string> Argv { get; init; }

    public required CgroupLimits Limits { get; init; }

    public required TimeSpan Timeout { get; init; }

    public SliceNetwork Network { get; init; } = SliceNetwork.None;

    /// <summary>False only where the pool is configured <c>isolation: none</c> (development).</summary>
    public bool Isolated { get; init; } = true;

    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();

    public IReadOnlyDictionary<string, byte[]> Files { get; init; } = new Dictionary<string, byte[]>();

    public IReadOnlyDictionary<string, byte[]> Secrets { get; init; } = new Dictionary<string, byte[]>();

    public IReadOnlyList<string> ReadOnlyPaths { get; init; } = [];

    public IReadOnlyList<string> ReadWritePaths { get; init; } = [];

    public SliceTags Tags { get; init; } = new("-", "-", "-");
}

/// <summary>Where things are inside the sandbox.</summary>
internal static class SandboxLayout
{
    /// <summary>The per-slice host directory, with <c>slice/</c> and <c>secrets/</c>, is bound here.</summary>
    public const string RunDirectory = "/run";
    public const string SliceDirectory = RunDirectory + "/slice";
    public const string SecretsDirectory = RunDirectory + "/secrets";

    /// <summary>
    /// Directories the sandbox builds itself; a declared path cannot be bound into them, nor over
    /// <c>/tmp</c> (the manifest check, <c>SliceLimits.PathProblem</c>, refuses the same).
    /// </summary>
    public static readonly IReadOnlyList<string> Reserved = ["/etc", "/run", "/proc", "/dev", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

    /// <summary>The system directories every sandbox shows read-only (of <see cref="Reserved"/>).</summary>
    private static readonly string[] s_system = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

    /// <summary>True when every sandbox already shows <paramref name="path"/> (a program installed under <c>/usr</c>): it needs no bind of its own.</summary>
    public static bool InSystemDirectories(string path) =>
        s_system.Any(r => path == r || path.StartsWith(r + "/", StringComparison.Ordinal));

    /// <summary>Why <paramref name="path"/> cannot be a declared path, or null.</summary>
    public static string? PathProblem(string path)
    {
        var trimmed = path.TrimEnd('/');
        if (!trimmed.StartsWith('/') || trimmed == "/tmp")
        {
            return $"'{path}' cannot be bound: it is not absolute, or it is the slice's own /tmp";
        }
        return Reserved.FirstOrDefault(r => trimmed == r || trimmed.StartsWith(r + "/", StringComparison.Ordinal)) is { } reserved
            ? $"'{path}' is inside {reserved}, which the sandbox builds itself"
            : null;
    }
}

/// <summary>
/// How a slice ended. <see cref="ExitCode"/> is the program's, <see cref="Signal"/> the signal that
/// killed it; <see cref="SetupError"/> says the sandbox itself could not be built (nothing ran).
/// </summary>
internal sealed record SliceExit
{
    public int? ExitCode { get; init; }

    public int? Signal { get; init; }

    public bool TimedOut { get; init; }

    public bool OomKilled { get; init; }

    /// <summary>The pids limit refused a fork.</summary>
    public bool PidsLimited { get; init; }

    public long WallMs { get; init; }

    public long? CpuMs { get; init; }

    /// <summary>How long the CPU limit held the slice back (the cgroup's throttled time, summed over CPUs, rounded up to a millisecond); null without a cgroup.</summary>
    public long? CpuThrottledMs { get; init; }

    public long? PeakMemoryBytes { get; init; }

    public IReadOnlyList<string> StderrTail { get; init; } = [];

    public long DroppedLines { get; init; }

    public string? SetupError { get; init; }
}
