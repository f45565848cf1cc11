using Microsoft.Extensions.Logging.Abstractions;

namespace Runner.Storage.Tests;

/// <summary>A temp directory holding one LMDB environment, opened and reopened on demand.</summary>
internal sealed class StoreDirectory : IDisposable
{
    public StoreDirectory(string? path = null)
    {
        Path = path ?? System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"runner-storage-test-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public LmdbOptions Options(long initialMapSize = 4L * 1024 * 1024, long maxMapSize = 256L * 1024 * 1024) => new()
    {
        Path = Path,
        InitialMapSize = initialMapSize,
        MaxMapSize = maxMapSize,
        MaxReaders = 64,
    };

    public LmdbStore Open(LmdbOptions? options = null, TimeProvider? time = null) => new(options ?? Options(), NullLogger<LmdbStore>.Instance, time);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover temp directory must not fail a test.
        }
    }
}
