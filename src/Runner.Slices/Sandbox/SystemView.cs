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

    /// <summary>Held while the snapshot is in use: a lock next to it that another worker's sweep tests.</summary>
    private readonly FileStream? _lock;

    private SystemView(IReadOnlyList<string> bwrapArguments, string? snapshot, FileStream? @lock)
    {
        BwrapArguments = bwrapArguments;
        Snapshot = snapshot;
        _lock = @lock;
    }

    /// <summary>bwrap's arguments that build the view.</summary>
    public IReadOnlyList<string> BwrapArguments { get; }

    /// <summary>The host directory bound as the slice's <c>/etc</c>, if any <c>/etc</c> entry is configured.</summary>
    public string? Snapshot { get; }

    /// <summary>
    /// Builds the view of <paramref name="systemPaths"/>, with the <c>/etc</c> snapshot in a
    /// directory of its own under <paramref name="runDirectory"/>, locked while this view lives;
    /// snapshots whose lock nobody holds (their worker is gone) are removed.
    /// </summary>
    /// <exception cref="ArgumentException">A system path is one the sandbox builds itself (<c>/</c>, <c>/tmp</c>, <c>/run</c>, <c>/proc</c>, <c>/dev</c>).</exception>
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
            // The sandbox makes these itself; a waiting sandbox's sentinel relies on /tmp not existing before its slice's arguments.
            if (path.TrimEnd('/') is "" or "/tmp" or "/run" or "/proc" or "/dev" || path.StartsWith("/tmp/", StringComparison.Ordinal))
            {
                throw new ArgumentException($"'{path}' cannot be a system path: the sandbox builds it itself", nameof(systemPaths));
            }
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
            return new SystemView(arguments, null, null);
        }
        Directory.CreateDirectory(runDirectory);
        RemoveStale(runDirectory);
        var snapshot = Path.Combine(runDirectory, EtcPrefix + Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture) + "-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4)));
        var @lock = new FileStream(snapshot + ".lock", FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
        try
        {
            Directory.CreateDirectory(snapshot);
            SetReadable(snapshot);
            foreach (var path in etc.Where(Reachable))
            {
                var destination = path == "/etc" ? snapshot : Path.Combine(snapshot, path["/etc/".Length..]);
                MakeParents(snapshot, destination);
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
        }
        catch
        {
            @lock.Dispose();
            Delete(snapshot);
            throw;
        }
        arguments.AddRange(["--ro-bind", snapshot, "/etc"]);
        return new SystemView(arguments, snapshot, @lock);
    }

    /// <summary>Removes this view's snapshot and its lock.</summary>
    public void Remove()
    {
        if (Snapshot is not null)
        {
            Delete(Snapshot);
            _lock?.Dispose();
        }
    }

    private static void Delete(string snapshot)
    {
        if (Directory.Exists(snapshot))
        {
            Directory.Delete(snapshot, recursive: true);
        }
        File.Delete(snapshot + ".lock");
    }

    /// <summary>Every directory from <c>/etc</c> down to <paramref name="path"/> can be entered by others (as the slice uid could on the host).</summary>
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    private static bool Reachable(string path)
    {
        for (var parent = Path.GetDirectoryName(path); parent is not null && parent != "/"; parent = Path.GetDirectoryName(parent))
        {
            if (Directory.Exists(parent) && !File.GetUnixFileMode(parent).HasFlag(UnixFileMode.OtherExecute))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>The directories between the snapshot and <paramref name="destination"/>, readable by others whatever the worker's umask.</summary>
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    private static void MakeParents(string snapshot, string destination)
    {
        var parents = new Stack<string>();
        for (var parent = Path.GetDirectoryName(destination)!; parent.Length > snapshot.Length; parent = Path.GetDirectoryName(parent)!)
        {
            parents.Push(parent);
        }
        foreach (var parent in parents)
        {
            if (!Directory.Exists(parent))
            {
                Directory.CreateDirectory(parent);
                SetReadable(parent);
            }
        }
    }

    /// <summary>
    /// A symlink as the same symlink; a directory and a file only if others may read them; an entry
    /// already copied (overlapping system paths) or gone meanwhile is skipped.
    /// </summary>
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    private static void Copy(string source, string destination)
    {
        try
        {
            var info = new FileInfo(source);
            if (Path.Exists(destination) || new FileInfo(destination).LinkTarget is not null)
            {
                if (!Directory.Exists(source) || info.LinkTarget is not null)
                {
                    return;
                }
            }
            else if (info.LinkTarget is { } target)
            {
                File.CreateSymbolicLink(destination, target);
                return;
            }
            else if (!info.Exists && !Directory.Exists(source))
            {
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
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            // Gone meanwhile: not part of the snapshot.
        }
    }

    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    private static void SetReadable(string path)
    {
        var read = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        File.SetUnixFileMode(path, Directory.Exists(path) ? read | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute : read);
    }

    /// <summary>
    /// Snapshots whose lock nobody holds: their worker is gone (a worker killed with SIGKILL leaves
    /// its own). The lock, not the pid, tells: workers in other pid namespaces may share the directory.
    /// </summary>
    private static void RemoveStale(string runDirectory)
    {
        foreach (var directory in Directory.EnumerateDirectories(runDirectory, EtcPrefix + "*"))
        {
            try
            {
                using (new FileStream(directory + ".lock", FileMode.Open, FileAccess.ReadWrite, FileShare.None))
                {
                    Directory.Delete(directory, recursive: true);
                }
                File.Delete(directory + ".lock");
            }
            catch (FileNotFoundException) when (Directory.GetLastWriteTimeUtc(directory) < DateTime.UtcNow.AddMinutes(-1))
            {
                // No lock and not being made right now: left by a worker that died as it made it.
                Directory.Delete(directory, recursive: true);
            }
            catch (IOException)
            {
                // Locked: in use by a running worker (or being made).
            }
        }
    }
}
