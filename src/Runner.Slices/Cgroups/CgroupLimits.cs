namespace Runner.Slices.Cgroups;

/// <summary>What a slice's cgroup allows: CPU in cores (fractional), memory in bytes (no swap beyond it), tasks.</summary>
internal sealed record CgroupLimits(double Cpu, long MemoryBytes, int Pids)
{
    /// <summary>The CFS period both cgroup versions use; the quota is <c>cpu × period</c>.</summary>
    public const int PeriodMicros = 100_000;

    /// <summary>The kernel refuses a quota under 1 ms.</summary>
    public long QuotaMicros => Math.Max(1_000, (long)Math.Round(Cpu * PeriodMicros));
}

/// <summary>
/// What a slice used, read from its cgroup after it ended; a figure the host does not keep is null.
/// <see cref="CpuThrottledMs"/> is how long the CPU quota held its tasks back, summed over CPUs and
/// rounded up: non-zero exactly when they wanted more than their quota in some period.
/// </summary>
internal sealed record CgroupUsage(long? CpuMs, long? PeakMemoryBytes, bool OomKilled, bool PidsLimited = false, long? CpuThrottledMs = null);
