using LightningDB;
using Microsoft.Extensions.Logging;
using Runner.Core.Keys;

namespace Runner.Storage;

/// <summary>
/// The LMDB environment: one file, one named database per <see cref="KeySpace"/>. Reads run on
/// any thread in short read-only transactions; every write goes through <see cref="Writer"/>.
/// </summary>
internal sealed class LmdbStore : IDisposable
{
    private readonly LightningEnvironment _env;
    private readonly LightningDatabase[] _databases;
    private readonly ReaderWriterLockSlim _resizeGate = new(LockRecursionPolicy.NoRecursion);
    private readonly ILogger _logger;
    private int _disposed;

    /// <param name="time">The writer's clock, for how long a batch that may wait has waited (a test's own; the system's otherwise).</param>
    public LmdbStore(LmdbOptions options, ILogger<LmdbStore> logger, TimeProvider? time = null)
    {
        Options = options;
        _logger = logger;
        Directory.CreateDirectory(options.Path);
        _env = new LightningEnvironment(options.Path, new EnvironmentConfiguration
        {
            MapSize = options.InitialMapSize,
            MaxDatabases = KeySpaces.All.Count + 2,
            MaxReaders = options.MaxReaders,
        });
        var flags = EnvironmentOpenFlags.NoThreadLocalStorage | EnvironmentOpenFlags.NoReadAhead;
        if (!options.Durable)
        {
            flags |= EnvironmentOpenFlags.NoSync;
        }
        _env.Open(flags);

        // A reader slot left by a process that died (SIGKILL) pins old pages forever; clear it.
        var stale = _env.CheckStaleReaders();
        StorageLog.Opened(_logger, options.Path, _env.Info.MapSize, stale);

        _databases = new LightningDatabase[KeySpaces.All.Count];
        using (var txn = _env.BeginTransaction())
        {
            foreach (var space in KeySpaces.All)
            {
                _databases[(int)space] = txn.OpenDatabase(space.DatabaseName(), new DatabaseConfiguration { Flags = DatabaseOpenFlags.Create });
            }
            Check(txn.Commit(), "open databases");
        }
        Writer = new LmdbWriter(this, logger, time ?? TimeProvider.System);
    }

    public LmdbOptions Options { get; }

    public LmdbWriter Writer { get; }

    /// <summary>The map size LMDB really uses (at least the data file's size after a reopen).</summary>
    public long MapSize => OutsideGrowth(0, static (env, _) => env.Info.MapSize);

    /// <summary>Bytes of the map in use: up to the last page written.</summary>
    public long UsedBytes => OutsideGrowth(0, static (env, _) => (env.Info.LastPageNumber + 1) * (long)env.EnvironmentStats.PageSize);

    /// <summary>
    /// Runs <paramref name="read"/> while the map cannot be grown: every read of the map (a transaction, and
    /// the environment's figures, which LMDB reads from its meta pages in the map) goes through here, because
    /// growing the map unmaps and maps it again, and a read then would touch memory being unmapped (the
    /// process dies of it). Not from inside another read: the gate is not reentrant.
    /// </summary>
    private T OutsideGrowth<TState, T>(TState state, Func<LightningEnvironment, TState, T> read)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) == 1, this);
        _resizeGate.EnterReadLock();
        try
        {
            return read(_env, state);
        }
        finally
        {
            _resizeGate.ExitReadLock();
        }
    }

    internal LightningEnvironment Environment => _env;

    internal LightningDatabase Database(KeySpace space) => _databases[(int)space];

    /// <summary>Runs <paramref name="read"/> against a consistent snapshot. Never await inside.</summary>
    public T Read<T>(ReadFunc<T> read) => Read(read, static (reader, read) => read(reader));

    /// <summary>
    /// Runs <paramref name="read"/> with <paramref name="state"/> against a consistent snapshot, so a
    /// hot path's read needs no closure (a static lambda). Never await inside.
    /// </summary>
    public T Read<TState, T>(TState state, ReadFunc<TState, T> read) =>
        OutsideGrowth((store: this, state, read), static (env, s) =>
        {
            using var txn = env.BeginTransaction(TransactionBeginFlags.ReadOnly);
            return s.read(new LmdbReader(txn, s.store), s.state);
        });

    internal delegate T ReadFunc<out T>(LmdbReader reader);

    internal delegate T ReadFunc<in TState, out T>(LmdbReader reader, TState state);

    /// <summary>Doubles the map. Called by the writer with no write transaction open.</summary>
    internal bool TryGrowMap()
    {
        var current = _env.Info.MapSize;
        if (current >= Options.MaxMapSize)
        {
            return false;
        }
        var next = Math.Min(current * 2, Options.MaxMapSize);
        _resizeGate.EnterWriteLock();
        try
        {
            _env.MapSize = next;
        }
        finally
        {
            _resizeGate.ExitWriteLock();
        }
        StorageLog.MapGrown(_logger, current, next);
        return true;
    }

    internal static void Check(MDBResultCode code, string what)
    {
        if (code != MDBResultCode.Success)
        {
            throw new StorageException($"LMDB {what} failed: {code}", StorageErrors.CodeOf(code));
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }
        Writer.Dispose();

        // Wait out readers still inside Read(): closing the environment under them would crash.
        _resizeGate.EnterWriteLock();
        try
        {
            foreach (var db in _databases)
            {
                db?.Dispose();
            }
            _env.Dispose();
        }
        finally
        {
            _resizeGate.ExitWriteLock();
        }
        _resizeGate.Dispose();
    }
}

internal static class StorageErrors
{
    private const int NoSpace = 28;
    private const int DiskQuota = 122;

    public static string CodeOf(MDBResultCode code) => code switch
    {
        MDBResultCode.MapFull => "map_full",
        (MDBResultCode)NoSpace or (MDBResultCode)DiskQuota => "disk_full",
        MDBResultCode.BadValSize => "invalid",
        _ => "io",
    };
}
