using System.Runtime.InteropServices;

namespace Runner.Slices;

/// <summary>
/// The libc calls .NET does not offer: chown (per-slice directories), kill (cgroup sweeps), gettid
/// (the launcher thread joining a v1 cgroup), mkfifo, open, write, read and close (the trigger of a
/// sandbox built ahead), waitid (whether a sandbox built ahead still lives), stat (what a declared path is).
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

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static unsafe partial nint ReadNative(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "waitid", SetLastError = true)]
    private static unsafe partial int WaitidNative(int idType, int id, byte* info, int options);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int CloseNative(int fd);

    [LibraryImport("libc", EntryPoint = "stat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int StatNative(string path, byte* buffer);

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

    /// <summary>Opens a FIFO read-write without waiting for the other side (close-on-exec).</summary>
    public static int OpenFifo(string fifo)
    {
        const int ReadWrite = 0x2;
        const int NonBlocking = 0x800;
        const int CloseOnExec = 0x80000;
        var fd = OpenNative(fifo, ReadWrite | NonBlocking | CloseOnExec);
        return fd >= 0 ? fd : throw new IOException($"open {fifo} failed: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>Writes one byte, a newline (a whole line for the shell that reads it), to a descriptor.</summary>
    public static unsafe void WriteByte(int fd)
    {
        byte go = (byte)'\n';
        if (WriteNative(fd, &go, 1) != 1)
        {
            throw new IOException($"write to fd {fd} failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>Reads one byte from a non-blocking descriptor: false when there is none to read.</summary>
    public static unsafe bool TryReadByte(int fd)
    {
        const int WouldBlock = 11; // EAGAIN
        byte taken;
        var read = ReadNative(fd, &taken, 1);
        if (read >= 0)
        {
            return read == 1;
        }
        var errno = Marshal.GetLastPInvokeError();
        if (errno != WouldBlock)
        {
            throw new IOException($"read from fd {fd} failed: errno {errno}");
        }
        return false;
    }

    /// <summary>
    /// Whether the child <paramref name="pid"/> has ended, reaped or not: a zombie counts, and is left
    /// waitable (<c>WNOWAIT</c>) for .NET to reap and take its exit status from. A pid that is no
    /// child of this process (any more) counts too.
    /// </summary>
    public static unsafe bool ChildEnded(int pid)
    {
        const int ByPid = 1; // P_PID
        const int NoHang = 0x1, Exited = 0x4, NoWait = 0x1000000;
        const int NoChild = 10; // ECHILD
        // siginfo_t is 128 bytes; si_pid, set only for a child that can be waited for, is at offset 16 on x86-64 and arm64 alike.
        var info = stackalloc byte[128];
        new Span<byte>(info, 128).Clear();
        if (WaitidNative(ByPid, pid, info, Exited | NoHang | NoWait) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno != NoChild)
            {
                throw new IOException($"waitid for pid {pid} failed: errno {errno}");
            }
            return true;
        }
        return *(int*)(info + 16) != 0;
    }

    public static void Close(int fd) => _ = CloseNative(fd);

    /// <summary>
    /// The device and inode <paramref name="path"/> resolves to (the first two fields of struct
    /// stat on x86-64 and arm64 alike), or null when it does not exist.
    /// </summary>
    public static unsafe (ulong Device, ulong Inode)? Identity(string path)
    {
        var buffer = stackalloc byte[256];
        if (StatNative(path, buffer) != 0)
        {
            return null;
        }
        return (*(ulong*)buffer, *(ulong*)(buffer + 8));
    }
}
