using Runner.Slices.Sandbox;
using Runner.Testing;
using Xunit;

namespace Runner.Slices.Tests;

/// <summary>The host's system files as slices see them: binds and a snapshot of the /etc entries.</summary>
public sealed class SystemViewTests
{
    [Fact]
    public void Etc_entries_are_copied_once_into_a_snapshot_bound_as_etc_with_only_what_others_may_read()
    {
        Assert.True(OperatingSystem.IsLinux());
        using var dir = new TempDirectory("runner-system-view");
        var run = dir.File("run");

        var view = SystemView.Create(["/usr", "/etc/passwd", "/etc/shadow", "/etc/ssl", "/etc/missing-entry"], run);

        var snapshot = Assert.IsType<string>(view.Snapshot);
        Assert.Equal(Path.Combine(run, ".etc-" + Environment.ProcessId), snapshot);
        Assert.Equal(["--ro-bind-try", "/usr", "/usr", "--ro-bind", snapshot, "/etc"], view.BwrapArguments);
        Assert.Equal(File.ReadAllText("/etc/passwd"), File.ReadAllText(Path.Combine(snapshot, "passwd")));
        // Readable by root and its group only on the host: the slice uid could not read it there either.
        Assert.False(Path.Exists(Path.Combine(snapshot, "shadow")));
        Assert.False(Path.Exists(Path.Combine(snapshot, "missing-entry")));
        // Placeholders a network: host slice binds resolv.conf and hosts onto.
        Assert.Equal(0, new FileInfo(Path.Combine(snapshot, "resolv.conf")).Length);
        Assert.True(File.Exists(Path.Combine(snapshot, "hosts")));
        if (OperatingSystem.IsLinux())
        {
            Assert.Equal(UnixFileMode.OtherRead, File.GetUnixFileMode(Path.Combine(snapshot, "passwd")) & UnixFileMode.OtherRead);
        }
        // Symlinks stay symlinks with the same target; a directory others cannot enter is left out.
        var hostLinks = Directory.EnumerateFileSystemEntries("/etc/ssl/certs").Where(e => new FileInfo(e).LinkTarget is not null).Take(5).ToList();
        Assert.NotEmpty(hostLinks);
        foreach (var link in hostLinks)
        {
            Assert.Equal(new FileInfo(link).LinkTarget, new FileInfo(Path.Combine(snapshot, "ssl", "certs", Path.GetFileName(link))).LinkTarget);
        }
        Assert.Equal(Directory.Exists("/etc/ssl/private") && IsOthersDirectory("/etc/ssl/private"), Directory.Exists(Path.Combine(snapshot, "ssl", "private")));

        view.Remove();
        Assert.False(Directory.Exists(snapshot));
    }

    [Fact]
    public void A_snapshot_of_a_process_that_is_gone_is_removed_and_without_etc_entries_none_is_made()
    {
        using var dir = new TempDirectory("runner-system-view");
        var run = Directory.CreateDirectory(dir.File("run")).FullName;
        var stale = Directory.CreateDirectory(Path.Combine(run, ".etc-" + int.MaxValue)).FullName;
        File.WriteAllText(Path.Combine(stale, "passwd"), "old");
        var live = Directory.CreateDirectory(Path.Combine(run, ".etc-1")).FullName;

        var view = SystemView.Create(["/etc/group"], run);
        Assert.False(Directory.Exists(stale));
        Assert.True(Directory.Exists(live), "pid 1 runs: its snapshot stays");
        view.Remove();

        var bare = SystemView.Create(["/usr"], dir.File("other"));
        Assert.Null(bare.Snapshot);
        Assert.Equal(["--ro-bind-try", "/usr", "/usr"], bare.BwrapArguments);
    }

    private static bool IsOthersDirectory(string path) =>
        OperatingSystem.IsLinux() && (File.GetUnixFileMode(path) & (UnixFileMode.OtherRead | UnixFileMode.OtherExecute)) == (UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
}
