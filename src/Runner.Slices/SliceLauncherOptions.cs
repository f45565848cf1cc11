namespace Runner.Slices;

/// <summary>How a worker launches slices on its node; immutable once the worker starts.</summary>
internal sealed record SliceLauncherOptions
{
    /// <summary>bubblewrap, which builds the namespaces and the filesystem view.</summary>
    public string Bwrap { get; init; } = "bwrap";

    /// <summary>util-linux setpriv, which drops to <see cref="Uid"/> before bubblewrap runs.</summary>
    public string Setpriv { get; init; } = "setpriv";

    /// <summary>The shell that joins the cgroup and execs the sandbox (its <c>echo</c> is a builtin: the write is its own pid).</summary>
    public string Shell { get; init; } = "/bin/sh";

    /// <summary>The unprivileged uid outside that root inside the slice's user namespace maps to.</summary>
    public int Uid { get; init; } = 65534;

    public int Gid { get; init; } = 65534;

    /// <summary>Per-slice directories (spec, secrets) are made here; a tmpfs keeps secrets off disk.</summary>
    public string RunDirectory { get; init; } = "/dev/shm/runner-slices";

    /// <summary>The base cgroup of this worker's slices, relative to each hierarchy (v1) or to the worker's cgroup (v2).</summary>
    public string CgroupBase { get; init; } = "runner-slices";

    /// <summary>Host paths every slice sees read-only (what a dynamically linked program needs); missing ones are skipped.</summary>
    public IReadOnlyList<string> SystemPaths { get; init; } =
    [
        "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
        "/etc/ld.so.cache", "/etc/localtime", "/etc/passwd", "/etc/group",
        "/etc/nsswitch.conf", "/etc/ssl", "/etc/ca-certificates", "/etc/alternatives",
    ];

    /// <summary>Log lines per second a slice may write (stdout and stderr together); more are counted and dropped.</summary>
    public int LogLinesPerSecond { get; init; } = 200;

    /// <summary>Lines a slice may write at once before the per-second rate applies.</summary>
    public int LogBurst { get; init; } = 1_000;

    /// <summary>A longer output line is cut here (the result line included: keep it under this).</summary>
    public int MaxLineBytes { get; init; } = 1024 * 1024;

    /// <summary>Lines of stderr kept for a failed result.</summary>
    public int StderrTailLines { get; init; } = 20;
}
