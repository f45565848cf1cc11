using System.Runtime.InteropServices;

namespace Runner.Slices;

/// <summary>
/// The libc calls .NET does not offer: chown (per-slice directories), kill (cgroup sweeps), gettid
/// (the launcher thread joining a v1 cgroup), mkfifo and a non-blocking FIFO write (the trigger of
/// a sandbox started ahead).
/// </summary>
internal static partial class Native
{
    public const int SigKill = 9;
    public const int SigTerm = 15;

    [LibraryImport("libc", EntryPoint = "chown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int ChownNative(string path, uint owner, uint group);

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int KillNative(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "mkfifo", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int MkfifoNative(string path, uint mode);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenNative(string path, int flags);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static unsafe partial nint WriteNative(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int CloseNative(int fd);

    [LibraryImport("libc", EntryPoint = "gettid")]
    public static partial int GetTid();

    [LibraryImport("libc", EntryPoint = "geteuid")]
    public static partial uint GetEuid();

    public static void Chown(string path, int uid, int gid)
    {
        if (ChownNative(path, (uint)uid, (uint)gid) != 0)
        {
            throw new IOException($"chown {path} to {uid}:{gid} failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>Sends a signal; a process that is already gone is not an error.</summary>
    public static void Kill(int pid, int signal) => _ = KillNative(pid, signal);

    /// <summary>Makes a FIFO readable and writable by its owner only.</summary>
    public static void MakeFifo(string path)
    {
        if (MkfifoNative(path, 0x180) != 0)
        {
            throw new IOException($"mkfifo {path} failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>
    /// Writes one byte to a FIFO without waiting: a FIFO nobody reads (its sandbox died) fails with
    /// ENXIO instead of blocking.
    /// </summary>
    public static unsafe void Trigger(string fifo)
    {
        const int WriteOnly = 0x1;
        const int NonBlocking = 0x800;
        const int CloseOnExec = 0x80000;
        var fd = OpenNative(fifo, WriteOnly | NonBlocking | CloseOnExec);
        if (fd < 0)
        {
            throw new IOException($"open {fifo} failed: errno {Marshal.GetLastPInvokeError()}");
        }
        try
        {
            byte go = 1;
            if (WriteNative(fd, &go, 1) != 1)
            {
                throw new IOException($"write {fifo} failed: errno {Marshal.GetLastPInvokeError()}");
            }
        }
        finally
        {
            _ = CloseNative(fd);
        }
    }
}
