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
        Assert.StartsWith(Path.Combine(run, ".etc-" + Environment.ProcessId + "-"), snapshot, StringComparison.Ordinal);
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
        Assert.False(File.Exists(snapshot + ".lock"));
    }

    [Fact]
    public void An_etc_entry_in_a_directory_others_cannot_enter_is_not_copied_and_parents_are_readable()
    {
        Assert.True(OperatingSystem.IsLinux());
        using var dir = new TempDirectory("runner-system-view");
        var host = "/etc/runner-test-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            Directory.CreateDirectory(Path.Combine(host, "private"));
            Directory.CreateDirectory(Path.Combine(host, "public"));
            File.WriteAllText(Path.Combine(host, "private", "key.pem"), "secret");
            File.WriteAllText(Path.Combine(host, "public", "ca.pem"), "cert");
            if (OperatingSystem.IsLinux())
            {
                File.SetUnixFileMode(Path.Combine(host, "private"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute);
                File.SetUnixFileMode(Path.Combine(host, "private", "key.pem"), (UnixFileMode)0x1A4); // 0644, but its directory is 0710
            }
            var name = Path.GetFileName(host);

            var view = SystemView.Create([host + "/private/key.pem", host + "/public/ca.pem"], dir.File("run"));

            Assert.False(Path.Exists(Path.Combine(view.Snapshot!, name, "private")));
            Assert.Equal("cert", File.ReadAllText(Path.Combine(view.Snapshot!, name, "public", "ca.pem")));
            if (OperatingSystem.IsLinux())
            {
                Assert.True(File.GetUnixFileMode(Path.Combine(view.Snapshot!, name)).HasFlag(UnixFileMode.OtherExecute));
                Assert.True(File.GetUnixFileMode(Path.Combine(view.Snapshot!, name, "public")).HasFlag(UnixFileMode.OtherRead));
            }
            view.Remove();
        }
        finally
        {
            Directory.Delete(host, recursive: true);
        }
    }

    [Theory]
    [InlineData("/tmp")]
    [InlineData("/tmp/tools")]
    [InlineData("/run")]
    [InlineData("/")]
    public void A_system_path_the_sandbox_builds_itself_is_refused(string path)
    {
        using var dir = new TempDirectory("runner-system-view");
        var error = Assert.Throws<ArgumentException>(() => SystemView.Create(["/usr", path], dir.File("run")));
        Assert.Contains("the sandbox builds it itself", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Snapshots_whose_lock_nobody_holds_are_removed_and_without_etc_entries_none_is_made()
    {
        using var dir = new TempDirectory("runner-system-view");
        var run = Directory.CreateDirectory(dir.File("run")).FullName;
        var dead = Directory.CreateDirectory(Path.Combine(run, ".etc-7-dead")).FullName;
        File.WriteAllText(dead + ".lock", "");
        var held = Directory.CreateDirectory(Path.Combine(run, ".etc-8-held")).FullName;
        using var holder = new FileStream(held + ".lock", FileMode.Create, FileAccess.ReadWrite, FileShare.None);
        var making = Directory.CreateDirectory(Path.Combine(run, ".etc-9-making")).FullName;
        var abandoned = Directory.CreateDirectory(Path.Combine(run, ".etc-10-abandoned")).FullName;
        Directory.SetLastWriteTimeUtc(abandoned, DateTime.UtcNow.AddMinutes(-5));

        var view = SystemView.Create(["/etc/group"], run);

        Assert.False(Directory.Exists(dead), "its worker is gone: nobody holds its lock");
        Assert.False(File.Exists(dead + ".lock"));
        Assert.True(Directory.Exists(held), "a running worker holds its lock, whatever its pid namespace");
        Assert.True(Directory.Exists(making), "no lock yet, but just made: a worker may be making it");
        Assert.False(Directory.Exists(abandoned), "no lock and minutes old: its worker died making it");
        // A second view in the same process is a second holder, not a stale snapshot.
        var second = SystemView.Create(["/etc/group"], run);
        Assert.True(Directory.Exists(view.Snapshot));
        second.Remove();
        view.Remove();

        var bare = SystemView.Create(["/usr"], dir.File("other"));
        Assert.Null(bare.Snapshot);
        Assert.Equal(["--ro-bind-try", "/usr", "/usr"], bare.BwrapArguments);
    }

    private static bool IsOthersDirectory(string path) =>
        OperatingSystem.IsLinux() && (File.GetUnixFileMode(path) & (UnixFileMode.OtherRead | UnixFileMode.OtherExecute)) == (UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
}
