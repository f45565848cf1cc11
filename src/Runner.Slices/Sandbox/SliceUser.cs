namespace Runner.Slices.Sandbox;

/// <summary>
/// The account a slice process starts as, when the worker (root) can start it as that user itself —
/// .NET sets the uid, gid and supplementary groups between fork and exec — instead of through
/// <c>setpriv</c>: one program fewer per launch. That needs a passwd entry with the slice uid, the
/// slice gid as its primary group and no supplementary groups (setpriv clears them).
/// </summary>
internal static class SliceUser
{
    public static string? Resolve(int uid, int gid, string passwd = "/etc/passwd", string group = "/etc/group")
    {
        if (Native.GetEuid() != 0 || !File.Exists(passwd))
        {
            return null;
        }
        var id = uid.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var primary = gid.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var name = File.ReadLines(passwd).Select(l => l.Split(':')).FirstOrDefault(f => f.Length >= 4 && f[2] == id && f[3] == primary)?[0];
        if (string.IsNullOrEmpty(name))
        {
            return null;
        }
        var member = File.Exists(group) && File.ReadLines(group).Select(l => l.Split(':'))
            .Any(f => f.Length >= 4 && f[2] != primary && f[3].Split(',').Contains(name, StringComparer.Ordinal));
        return member ? null : name;
    }

    /// <summary>A program named without a directory, found on <c>PATH</c> once rather than by every exec.</summary>
    public static string Which(string program)
    {
        if (program.Contains('/', StringComparison.Ordinal))
        {
            return program;
        }
        foreach (var directory in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/bin:/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(directory, program);
            if (File.Exists(candidate) && OperatingSystem.IsLinux() && (File.GetUnixFileMode(candidate) & UnixFileMode.UserExecute) != 0)
            {
                return candidate;
            }
        }
        return program;
    }
}
