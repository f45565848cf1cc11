using System.Globalization;

namespace Runner.Core.Manifests;

/// <summary>The ranges a slice resource may take, and the checks shared by manifests and commands.</summary>
internal static class SliceLimits
{
    public const double MinCpu = 0.01;
    public const double MaxCpu = 1024;
    public const long MinMemory = 4L * 1024 * 1024;
    public const int MinPids = 4;
    public const int MaxPids = 1_000_000;
    public const int MinTimeoutMs = 100;
    public const int MaxTimeoutMs = 86_400_000;

    /// <summary>
    /// Directories the slice sandbox builds itself (its <c>/etc</c> snapshot, <c>/run</c> with the
    /// spec and secrets, <c>/proc</c>, <c>/dev</c>, the read-only system directories): a declared
    /// path cannot be bound into them (the launcher's <c>SandboxLayout.Reserved</c> is the same list).
    /// </summary>
    private static readonly string[] s_sandboxDirectories = ["/etc", "/run", "/proc", "/dev", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

    /// <summary>The first field of <paramref name="request"/> over <paramref name="maximums"/>, said plainly; null when all fit.</summary>
    public static string? OverMaximum(SliceResources request, SliceResources maximums)
    {
        var invariant = CultureInfo.InvariantCulture;
        if (request.Cpu > maximums.Cpu)
        {
            return string.Create(invariant, $"cpu {request.Cpu} is over the maximum of {maximums.Cpu}");
        }
        if (request.Memory > maximums.Memory)
        {
            return string.Create(invariant, $"memory {request.Memory} is over the maximum of {maximums.Memory} bytes");
        }
        if (request.Pids > maximums.Pids)
        {
            return string.Create(invariant, $"pids {request.Pids} is over the maximum of {maximums.Pids}");
        }
        if (request.TimeoutMs > maximums.TimeoutMs)
        {
            return string.Create(invariant, $"timeout_ms {request.TimeoutMs} is over the maximum of {maximums.TimeoutMs}");
        }
        if (request.Network == SliceResources.NetworkHost && maximums.Network != SliceResources.NetworkHost)
        {
            return "network host is not allowed (maximums.network is none)";
        }
        return null;
    }

    /// <summary>
    /// An absolute, normalized path that is not the root, nor inside what the sandbox builds: null
    /// when it is one. A manifest's allowed <paramref name="root"/> may be <c>/tmp</c> itself (the
    /// paths under it are what slices declare); a declared path may not.
    /// </summary>
    public static string? PathProblem(string path, bool root = false)
    {
        if (!path.StartsWith('/'))
        {
            return $"'{path}' is not an absolute path";
        }
        var segments = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (segments.Length == 0)
        {
            return "'/' cannot be bound";
        }
        if (segments.Any(s => s is "." or "..") || path.Contains("//", StringComparison.Ordinal) || path.Any(char.IsControl))
        {
            return $"'{path}' is not a normalized path ('.', '..', '//' and control characters are refused)";
        }
        if (!root && path.TrimEnd('/') == "/tmp")
        {
            return "'/tmp' cannot be bound: it is each slice's own tmpfs (a directory under it can be)";
        }
        if (s_sandboxDirectories.FirstOrDefault(d => Under(path, [d])) is { } reserved)
        {
            return $"'{path}' is inside {reserved}, which the slice sandbox builds itself: declare data paths elsewhere";
        }
        return null;
    }

    /// <summary>True when <paramref name="path"/> is one of <paramref name="roots"/> or under one.</summary>
    public static bool Under(string path, IEnumerable<string> roots)
    {
        var trimmed = path.TrimEnd('/');
        return roots.Any(root => trimmed == root || trimmed.StartsWith(root + "/", StringComparison.Ordinal));
    }
}
