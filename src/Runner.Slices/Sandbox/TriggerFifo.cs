namespace Runner.Slices.Sandbox;

/// <summary>
/// The FIFO a sandbox built ahead blocks on before it execs its program. The launcher holds it
/// open from the start, so the byte that releases the sandbox stays in the FIFO even when it is
/// written before the sandbox has opened its side, and a write never waits. For the same reason
/// the write succeeds when the sandbox is already dead: only a byte still unread once the sandbox
/// has ended tells that it was never released (<see cref="TakeBack"/>).
/// </summary>
internal sealed class TriggerFifo : IDisposable
{
    private int _fd;

    private TriggerFifo(string path, int fd)
    {
        Path = path;
        _fd = fd;
    }

    public string Path { get; }

    /// <summary>Makes the FIFO (owned by the slice uid when the worker is root) and opens it.</summary>
    public static TriggerFifo Create(string path, int uid, int gid)
    {
        Native.MakeFifo(path);
        try
        {
            if (Native.GetEuid() == 0)
            {
                Native.Chown(path, uid, gid);
            }
            return new TriggerFifo(path, Native.OpenFifo(path));
        }
        catch
        {
            File.Delete(path);
            throw;
        }
    }

    /// <summary>Releases the sandbox into its program.</summary>
    public void Fire()
    {
        ObjectDisposedException.ThrowIf(_fd < 0, this);
        Native.WriteByte(_fd);
    }

    /// <summary>
    /// Takes the byte back if the sandbox has not read it: true for a sandbox that has ended means it
    /// never got past its block, so its program never ran, and with the byte gone it never can.
    /// </summary>
    public bool TakeBack()
    {
        ObjectDisposedException.ThrowIf(_fd < 0, this);
        return Native.TryReadByte(_fd);
    }

    public void Dispose()
    {
        if (_fd >= 0)
        {
            Native.Close(_fd);
            _fd = -1;
            File.Delete(Path);
        }
    }
}
