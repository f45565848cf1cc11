using System.Globalization;

namespace Runner.Slices.Cgroups;

/// <summary>Reads and writes of cgroup control files, which hold one value or <c>key value</c> lines.</summary>
internal static class CgroupFiles
{
    public static void Write(string directory, string file, string value) =>
        File.WriteAllText(Path.Combine(directory, file), value);

    public static bool TryWrite(string directory, string file, string value)
    {
        var path = Path.Combine(directory, file);
        if (!File.Exists(path))
        {
            return false;
        }
        File.WriteAllText(path, value);
        return true;
    }

    public static long? ReadLong(string directory, string file)
    {
        var path = Path.Combine(directory, file);
        if (!File.Exists(path))
        {
            return null;
        }
        return long.TryParse(File.ReadAllText(path).Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value : null;
    }

    /// <summary>The value of <paramref name="key"/> in a flat-keyed file (<c>cpu.stat</c>, <c>memory.events</c>, <c>memory.oom_control</c>).</summary>
    public static long? ReadKey(string directory, string file, string key) => ReadKeys(directory, file, key)[0];

    /// <summary>The values of <paramref name="keys"/> in one read of a flat-keyed file, in their order; null for one it lacks (all when the file is missing).</summary>
    public static long?[] ReadKeys(string directory, string file, params ReadOnlySpan<string> keys)
    {
        var values = new long?[keys.Length];
        var path = Path.Combine(directory, file);
        if (!File.Exists(path))
        {
            return values;
        }
        foreach (var line in File.ReadLines(path))
        {
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 2 && keys.IndexOf(parts[0]) is var at and >= 0 && values[at] is null
                && long.TryParse(parts[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
            {
                values[at] = value;
            }
        }
        return values;
    }

    public static IEnumerable<int> ReadPids(string procsFile)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(procsFile);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return [];
        }
        return lines.Select(l => int.TryParse(l.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid) ? pid : 0).Where(p => p > 0);
    }

    /// <summary>
    /// Removes a cgroup directory and its child cgroups, deepest first. A cgroup directory is
    /// removed with rmdir even though it lists control files (they are not real files). For a
    /// cgroup nothing has joined; one that held processes goes through <see cref="RemoveTreeAsync"/>.
    /// </summary>
    public static void RemoveTree(string directory)
    {
        if (!Directory.Exists(directory))
        {
            return;
        }
        foreach (var child in Directory.GetDirectories(directory))
        {
            RemoveTree(child);
        }
        try
        {
            Directory.Delete(directory);
        }
        catch (IOException) when (!IsCgroupFs(directory))
        {
            // A plain directory (tests fake the cgroup tree): its "control files" are real files.
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>
    /// <see cref="RemoveTree"/> for a cgroup that held processes. A killed process leaves
    /// <c>cgroup.procs</c> as soon as it dies, but the kernel counts it in the cgroup until its
    /// parent has reaped it, and rmdir fails with EBUSY until then: the removal is retried, with a
    /// bound, while the kernel answers busy.
    /// </summary>
    public static async Task RemoveTreeAsync(string directory, TimeProvider time, CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromMilliseconds(5);
        var deadline = time.GetTimestamp() + (long)(BusyBound.TotalSeconds * time.TimestampFrequency);
        while (true)
        {
            try
            {
                RemoveTree(directory);
                return;
            }
            catch (IOException ex) when (ex.HResult == Ebusy && time.GetTimestamp() < deadline)
            {
                await Task.Delay(delay, time, cancellationToken);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxBusyDelay.Ticks));
            }
        }
    }

    /// <summary>How long a removal waits for the kernel to release a cgroup's reaped processes.</summary>
    internal static readonly TimeSpan BusyBound = TimeSpan.FromSeconds(10);

    private static readonly TimeSpan MaxBusyDelay = TimeSpan.FromMilliseconds(200);

    /// <summary>errno EBUSY, which .NET carries as the <see cref="IOException.HResult"/> of an unmapped error.</summary>
    private const int Ebusy = 16;

    private static bool IsCgroupFs(string directory) =>
        directory.StartsWith("/sys/fs/cgroup", StringComparison.Ordinal);
}
