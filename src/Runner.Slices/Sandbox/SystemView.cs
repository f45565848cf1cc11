namespace Runner.Slices.Sandbox;

/// <summary>
/// The host's system files as every slice sees them, read-only. Directories such as <c>/usr</c> are
/// bound as they are (a symlink such as a merged <c>/bin</c> becomes the same symlink); the few
/// <c>/etc</c> entries a program needs are copied once, when the launcher starts, into a snapshot
/// that is bound as the slice's whole <c>/etc</c>. Each bind is a mount at every launch (about
/// 0.13 ms each): one mount for <c>/etc</c> instead of one per file. Only what any unprivileged user
/// may read is copied. A change to those files on the host reaches slices when the worker restarts.
/// </summary>
internal sealed class SystemView
{
    private const string EtcPrefix = ".etc-";

    /// <summary>Files in <c>/etc</c> that a <c>network: host</c> slice gets bound from the host over the snapshot.</summary>
    public static readonly IReadOnlyList<string> NetworkFiles = ["/etc/resolv.conf", "/etc/hosts"];

    private SystemView(IReadOnlyList<string> bwrapArguments, string? snapshot)
    {
        BwrapArguments = bwrapArguments;
        Snapshot = snapshot;
    }

    /// <summary>bwrap's arguments that build the view.</summary>
    public IReadOnlyList<string> BwrapArguments { get; }

    /// <summary>The host directory bound as the slice's <c>/etc</c>, if any <c>/etc</c> entry is configured.</summary>
    public string? Snapshot { get; }

    /// <summary>
    /// Builds the view of <paramref name="systemPaths"/>, with the <c>/etc</c> snapshot under
    /// <paramref name="runDirectory"/> (named after this process; snapshots of processes that are
    /// gone are removed).
    /// </summary>
    public static SystemView Create(IReadOnlyList<string> systemPaths, string runDirectory)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("slices run on Linux only");
        }
        var arguments = new List<string>(systemPaths.Count * 3);
        var etc = new List<string>();
        foreach (var path in systemPaths)
        {
            if (path == "/etc" || path.StartsWith("/etc/", StringComparison.Ordinal))
            {
                etc.Add(path);
            }
            else if (new FileInfo(path).LinkTarget is { } target)
            {
                arguments.AddRange(["--symlink", target, path]);
            }
            else
            {
                arguments.AddRange(["--ro-bind-try", path, path]);
            }
        }
        if (etc.Count == 0)
        {
            return new SystemView(arguments, null);
        }
        Directory.CreateDirectory(runDirectory);
        RemoveStale(runDirectory);
        var snapshot = Path.Combine(runDirectory, EtcPrefix + Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (Directory.Exists(snapshot))
        {
            Directory.Delete(snapshot, recursive: true);
        }
        Directory.CreateDirectory(snapshot);
        SetReadable(snapshot);
        foreach (var path in etc)
        {
            var destination = path == "/etc" ? snapshot : Path.Combine(snapshot, path["/etc/".Length..]);
            Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
            Copy(path, destination);
        }
        // Mount points for what a network: host slice binds from the host (a read-only /etc cannot get new files).
        foreach (var file in NetworkFiles)
        {
            var placeholder = Path.Combine(snapshot, Path.GetFileName(file));
            if (!Path.Exists(placeholder))
            {
                File.WriteAllBytes(placeholder, []);
                SetReadable(placeholder);
            }
        }
        arguments.AddRange(["--ro-bind", snapshot, "/etc"]);
        return new SystemView(arguments, snapshot);
    }

    /// <summary>Removes this process's snapshot.</summary>
    public void Remove()
    {
        if (Snapshot is not null && Directory.Exists(Snapshot))
        {
            Directory.Delete(Snapshot, recursive: true);
        }
    }

    /// <summary>A symlink as the same symlink; a directory and a file only if others may read them; nothing else.</summary>
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    private static void Copy(string source, string destination)
    {
        var info = new FileInfo(source);
        if (!info.Exists && !Directory.Exists(source) && info.LinkTarget is null)
        {
            return;
        }
        if (info.LinkTarget is { } target)
        {
            File.CreateSymbolicLink(destination, target);
            return;
        }
        var mode = File.GetUnixFileMode(source);
        if (Directory.Exists(source))
        {
            if (!mode.HasFlag(UnixFileMode.OtherRead) || !mode.HasFlag(UnixFileMode.OtherExecute))
            {
                return;
            }
            Directory.CreateDirectory(destination);
            SetReadable(destination);
            foreach (var entry in Directory.EnumerateFileSystemEntries(source))
            {
                Copy(entry, Path.Combine(destination, Path.GetFileName(entry)));
            }
        }
        else if (mode.HasFlag(UnixFileMode.OtherRead))
        {
            File.Copy(source, destination);
            SetReadable(destination);
        }
    }

    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    private static void SetReadable(string path)
    {
        var read = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        File.SetUnixFileMode(path, Directory.Exists(path) ? read | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute : read);
    }

    /// <summary>Snapshots named after processes that no longer run (a worker killed with SIGKILL leaves its own).</summary>
    private static void RemoveStale(string runDirectory)
    {
        foreach (var directory in Directory.EnumerateDirectories(runDirectory, EtcPrefix + "*"))
        {
            var name = Path.GetFileName(directory);
            if (int.TryParse(name.AsSpan(EtcPrefix.Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var pid)
                && pid != Environment.ProcessId && !Directory.Exists("/proc/" + pid.ToString(System.Globalization.CultureInfo.InvariantCulture)))
            {
                Directory.Delete(directory, recursive: true);
            }
        }
    }
}
