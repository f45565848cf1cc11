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
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("slices run on Linux only");
        }
        Directory.CreateDirectory(runDirectory);
        var directory = Path.Combine(runDirectory, request.Id);
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }
        Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var slice = Directory.CreateDirectory(Path.Combine(directory, "slice")).FullName;
        var secrets = Directory.CreateDirectory(Path.Combine(directory, "secrets")).FullName;
        foreach (var (name, content) in request.Files)
        {
            File.WriteAllBytes(Path.Combine(slice, CheckName(name)), content);
        }
        foreach (var (name, content) in request.Secrets)
        {
            var path = Path.Combine(secrets, CheckName(name));
            File.WriteAllBytes(path, content);
            File.SetUnixFileMode(path, UnixFileMode.UserRead);
        }
        GiveTo(directory, uid, gid);
        return directory;
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
