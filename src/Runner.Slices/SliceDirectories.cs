namespace Runner.Slices;

/// <summary>
/// The per-slice host directory: <c>slice/</c> (bound read-only at <c>/run/slice</c>) and
/// <c>secrets/</c> (at <c>/run/secrets</c>), owned by the slice uid with mode 0700 so no other
/// unprivileged user reads a secret.
/// </summary>
internal static class SliceDirectories
{
    public static string Create(string runDirectory, SandboxRequest request, int uid, int gid)
    {
        var directory = CreateEmpty(runDirectory, request.Id, uid, gid);
        Fill(directory, request, uid, gid);
        return directory;
    }

    /// <summary>The directory <paramref name="id"/> with empty <c>slice/</c> and <c>secrets/</c>, owned by the slice uid.</summary>
    public static string CreateEmpty(string runDirectory, string id, int uid, int gid)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("slices run on Linux only");
        }
        Directory.CreateDirectory(runDirectory);
        var directory = Path.Combine(runDirectory, id);
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }
        Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Directory.CreateDirectory(Path.Combine(directory, "slice"));
        Directory.CreateDirectory(Path.Combine(directory, "secrets"));
        GiveTo(directory, uid, gid);
        return directory;
    }

    /// <summary>Writes the request's files and secrets (read-only to the slice uid) into <paramref name="directory"/>.</summary>
    public static void Fill(string directory, SandboxRequest request, int uid, int gid)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("slices run on Linux only");
        }
        foreach (var (name, content) in request.Files)
        {
            Write(Path.Combine(directory, "slice", CheckName(name)), content, UnixFileMode.UserRead | UnixFileMode.UserWrite, uid, gid);
        }
        foreach (var (name, content) in request.Secrets)
        {
            Write(Path.Combine(directory, "secrets", CheckName(name)), content, UnixFileMode.UserRead, uid, gid);
        }
    }

    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    private static void Write(string path, byte[] content, UnixFileMode mode, int uid, int gid)
    {
        File.WriteAllBytes(path, content);
        File.SetUnixFileMode(path, mode);
        if (Native.GetEuid() == 0)
        {
            Native.Chown(path, uid, gid);
        }
    }

    /// <summary>Hands the directory tree to the slice uid (only root may; otherwise it stays the worker's).</summary>
    public static void GiveTo(string directory, int uid, int gid)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("slices run on Linux only");
        }
        File.SetUnixFileMode(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        if (Native.GetEuid() != 0)
        {
            return;
        }
        Native.Chown(directory, uid, gid);
        foreach (var entry in Directory.EnumerateFileSystemEntries(directory, "*", SearchOption.AllDirectories))
        {
            Native.Chown(entry, uid, gid);
        }
    }

    public static void Remove(string directory)
    {
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static string CheckName(string name) =>
        name.Length is > 0 and <= 128 && name is not "." and not ".." && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')
            ? name
            : throw new ArgumentException($"'{name}' is not a plain file name", nameof(name));
}
