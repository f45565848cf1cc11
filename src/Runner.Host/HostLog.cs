using Microsoft.Extensions.Logging;

namespace Runner.Host;

/// <summary>Host log messages; event ids 9000–9099.</summary>
internal static partial class HostLog
{
    [LoggerMessage(9000, LogLevel.Information, "runner {Version} starting in {Mode} mode: NATS {NatsUrl}, data {DataDir}, manifests {Manifests} ({Sagas} sagas, {Effects} effects, version {ManifestHash}), {Partitions} partitions")]
    public static partial void Starting(ILogger logger, string version, string mode, string natsUrl, string dataDir, string manifests, int sagas, int effects, string manifestHash, int partitions);

    [LoggerMessage(9004, LogLevel.Information, "runtime: .NET {Dotnet}, {Processors} processors, {Gc} GC, {Heaps} heap(s), DATAS {Datas}, code {Code}")]
    public static partial void Runtime(ILogger logger, string dotnet, int processors, string gc, int heaps, string datas, string code);

    [LoggerMessage(9005, LogLevel.Debug, "start-up heap compacted in {Milliseconds:F0} ms: {LiveMiB:F1} MiB live")]
    public static partial void StartupHeapCompacted(ILogger logger, double milliseconds, double liveMiB);

    [LoggerMessage(9003, LogLevel.Warning, "NATS at {NatsUrl} is not reachable, retrying in {DelayMs} ms: {Reason}")]
    public static partial void NatsUnavailable(ILogger logger, string natsUrl, double delayMs, string reason);

    [LoggerMessage(9002, LogLevel.Information, "runner stopped")]
    public static partial void Stopped(ILogger logger);
}
