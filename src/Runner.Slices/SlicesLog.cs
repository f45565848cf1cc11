using Microsoft.Extensions.Logging;

namespace Runner.Slices;

/// <summary>Slice launcher logs: event ids 4600–4699.</summary>
internal static partial class SlicesLog
{
    [LoggerMessage(4600, LogLevel.Information, "slice capabilities: isolated {Isolated}, sandbox {Sandbox} {SandboxVersion}, namespaces [{Namespaces}], cgroup {CgroupVersion} [{Controllers}] at {CgroupBase}, uid {Uid}")]
    public static partial void Capabilities(ILogger logger, bool isolated, string sandbox, string sandboxVersion, string namespaces, string cgroupVersion, string controllers, string cgroupBase, int uid);

    [LoggerMessage(4601, LogLevel.Warning, "slice isolation unavailable: {Problems}; slices that require isolation will fail as isolation_unavailable")]
    public static partial void IsolationUnavailable(ILogger logger, string problems);

    [LoggerMessage(4602, LogLevel.Warning, "removed {Count} leftover slice cgroup(s) under {Base}: their processes were killed")]
    public static partial void LeftoversRemoved(ILogger logger, int count, string @base);

    [LoggerMessage(4603, LogLevel.Information, "slice {RunId} (tenant {Tenant}, correlation {CorrelationId}) {Stream}: {Line}")]
    public static partial void Output(ILogger logger, string runId, string tenant, string correlationId, string stream, string line);

    [LoggerMessage(4604, LogLevel.Warning, "slice {RunId} (tenant {Tenant}, correlation {CorrelationId}) wrote too fast: {Dropped} log line(s) dropped")]
    public static partial void OutputDropped(ILogger logger, string runId, string tenant, string correlationId, long dropped);

    [LoggerMessage(4605, LogLevel.Information, "slice {RunId} (tenant {Tenant}, correlation {CorrelationId}) started as pid {Pid} in cgroup {Cgroup}, isolated {Isolated}")]
    public static partial void Started(ILogger logger, string runId, string tenant, string correlationId, int pid, string cgroup, bool isolated);

    [LoggerMessage(4606, LogLevel.Information, "slice {RunId} (tenant {Tenant}, correlation {CorrelationId}) ended: exit {ExitCode}, signal {Signal}, timed out {TimedOut}, oom {Oom}, {WallMs} ms wall, {CpuMs} ms cpu, peak {PeakBytes} bytes")]
    public static partial void Ended(ILogger logger, string runId, string tenant, string correlationId, int exitCode, int signal, bool timedOut, bool oom, long wallMs, long cpuMs, long peakBytes);

    [LoggerMessage(4608, LogLevel.Warning, "slice cgroup pool: making or removing a cgroup failed: {Reason}")]
    public static partial void CgroupPoolFailed(ILogger logger, Exception exception, string reason);

    [LoggerMessage(4609, LogLevel.Warning, "slice launcher: a sandbox started ahead of its slice failed: {Reason}; the next slice starts its own")]
    public static partial void SpareFailed(ILogger logger, Exception exception, string reason);

    [LoggerMessage(4610, LogLevel.Warning, "slice launcher: the /etc snapshot could not be removed: {Reason}")]
    public static partial void SnapshotRemoveFailed(ILogger logger, Exception exception, string reason);

    [LoggerMessage(4611, LogLevel.Warning, "slice {RunId} (tenant {Tenant}, correlation {CorrelationId}): the sandbox built ahead for it (pid {Pid}) ended before it took the slice; the slice runs in a sandbox started on the spot")]
    public static partial void SpareDied(ILogger logger, string runId, string tenant, string correlationId, int pid);
}
