using Microsoft.Extensions.Logging;

namespace Runner.Storage;

/// <summary>Storage log messages; event ids 1000–1099.</summary>
internal static partial class StorageLog
{
    [LoggerMessage(1000, LogLevel.Information, "LMDB store opened at {Path} with map size {MapSize} bytes; {StaleReaders} stale reader slots cleared")]
    public static partial void Opened(ILogger logger, string path, long mapSize, int staleReaders);

    [LoggerMessage(1001, LogLevel.Warning, "LMDB map full: grew map from {From} to {To} bytes and retrying the commit")]
    public static partial void MapGrown(ILogger logger, long from, long to);

    [LoggerMessage(1002, LogLevel.Trace, "committed {Batches} batches in {Milliseconds} ms")]
    public static partial void Committed(ILogger logger, int batches, double milliseconds);

    [LoggerMessage(1003, LogLevel.Error, "LMDB commit of {Batches} batches failed ({Code}): {Reason}; nothing was written")]
    public static partial void CommitFailed(ILogger logger, int batches, string code, string reason);
}
