using System.Diagnostics;
using System.Globalization;

namespace Runner.Bench;

/// <summary>
/// CPU time from /proc: this process (per thread name), the nats-server process, and the whole
/// machine (so load from other work on a shared box shows up in the figures).
/// </summary>
internal sealed class CpuSnapshot
{
    private const double TicksPerSecond = 100.0; // USER_HZ on Linux

    public long Timestamp { get; private init; }
    public double SelfSeconds { get; private init; }
    public double NatsSeconds { get; private init; }
    public double MachineBusySeconds { get; private init; }
    public double MachineIoWaitSeconds { get; private init; }
    public double MachineTotalSeconds { get; private init; }
    public Dictionary<string, double> Threads { get; private init; } = [];
    public long AllocatedBytes { get; private init; }
    public int Gen0 { get; private init; }
    public int Gen1 { get; private init; }
    public int Gen2 { get; private init; }
    public TimeSpan GcPause { get; private init; }
    public TimeSpan JitTime { get; private init; }
    public long JitMethods { get; private init; }

    /// <summary>Bytes this process handed to write system calls (<c>wchar</c> in /proc/self/io): LMDB's page writes.</summary>
    public long WrittenBytes { get; private init; }

    public static CpuSnapshot Take(int? natsPid)
    {
        var (busy, iowait, total) = Machine();
        return new CpuSnapshot
        {
            Timestamp = Stopwatch.GetTimestamp(),
            SelfSeconds = ProcessSeconds("/proc/self/stat"),
            NatsSeconds = natsPid is null ? 0 : ProcessSeconds($"/proc/{natsPid}/stat"),
            MachineBusySeconds = busy,
            MachineIoWaitSeconds = iowait,
            MachineTotalSeconds = total,
            Threads = ThreadSeconds(),
            AllocatedBytes = GC.GetTotalAllocatedBytes(precise: false),
            Gen0 = GC.CollectionCount(0),
            Gen1 = GC.CollectionCount(1),
            Gen2 = GC.CollectionCount(2),
            GcPause = GC.GetTotalPauseDuration(),
            JitTime = System.Runtime.JitInfo.GetCompilationTime(),
            JitMethods = System.Runtime.JitInfo.GetCompiledMethodCount(),
            WrittenBytes = Written("/proc/self/io"),
        };
    }

    /// <summary>The nats-server process serving <paramref name="port"/>, found by its command line.</summary>
    public static int? FindNatsServer(int port)
    {
        var portText = port.ToString(CultureInfo.InvariantCulture);
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }
            try
            {
                var args = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0');
                if (args.Length > 0 && args[0].EndsWith("nats-server", StringComparison.Ordinal)
                    && args.Zip(args.Skip(1)).Any(pair => pair.First == "-p" && pair.Second == portText))
                {
                    return pid;
                }
            }
            catch (IOException)
            {
                // process went away
            }
            catch (UnauthorizedAccessException)
            {
                // not ours
            }
        }
        return null;
    }

    public static double ProcessSeconds(string statPath)
    {
        try
        {
            var (utime, stime) = UserSystem(File.ReadAllText(statPath));
            return (utime + stime) / TicksPerSecond;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    /// <summary>The <c>wchar</c> line of a /proc io file, 0 when it cannot be read.</summary>
    public static long Written(string ioPath)
    {
        try
        {
            foreach (var line in File.ReadLines(ioPath))
            {
                if (line.StartsWith("wchar:", StringComparison.Ordinal))
                {
                    return long.Parse(line.AsSpan(6).Trim(), CultureInfo.InvariantCulture);
                }
            }
        }
        catch (IOException)
        {
            // process went away
        }
        catch (UnauthorizedAccessException)
        {
            // not ours
        }
        return 0;
    }

    private static (long User, long System) UserSystem(string stat)
    {
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11], CultureInfo.InvariantCulture), long.Parse(fields[12], CultureInfo.InvariantCulture));
    }

    private static Dictionary<string, double> ThreadSeconds()
    {
        var result = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var dir in Directory.EnumerateDirectories("/proc/self/task"))
        {
            try
            {
                var name = File.ReadAllText(Path.Combine(dir, "comm")).Trim();
                var (utime, stime) = UserSystem(File.ReadAllText(Path.Combine(dir, "stat")));
                result[name] = result.GetValueOrDefault(name) + ((utime + stime) / TicksPerSecond);
            }
            catch (IOException)
            {
                // thread ended
            }
        }
        return result;
    }

    public static (double Busy, double IoWait, double Total) Machine()
    {
        var line = File.ReadLines("/proc/stat").First();
        var values = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Take(8)
            .Select(v => long.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        var total = values.Sum();
        var idle = values[3];
        var iowait = values[4];
        return ((total - idle - iowait) / TicksPerSecond, iowait / TicksPerSecond, total / TicksPerSecond);
    }
}

/// <summary>What happened between two snapshots.</summary>
internal sealed class CpuDelta(CpuSnapshot from, CpuSnapshot to)
{
    public double WallSeconds { get; } = Stopwatch.GetElapsedTime(from.Timestamp, to.Timestamp).TotalSeconds;
    public double Self { get; } = to.SelfSeconds - from.SelfSeconds;
    public double Nats { get; } = to.NatsSeconds - from.NatsSeconds;
    public double MachineBusy { get; } = to.MachineBusySeconds - from.MachineBusySeconds;
    public double MachineIoWait { get; } = to.MachineIoWaitSeconds - from.MachineIoWaitSeconds;
    public double MachineTotal { get; } = to.MachineTotalSeconds - from.MachineTotalSeconds;
    public long Allocated { get; } = to.AllocatedBytes - from.AllocatedBytes;
    public int Gen0 { get; } = to.Gen0 - from.Gen0;
    public int Gen1 { get; } = to.Gen1 - from.Gen1;
    public int Gen2 { get; } = to.Gen2 - from.Gen2;
    public TimeSpan GcPause { get; } = to.GcPause - from.GcPause;
    public TimeSpan JitTime { get; } = to.JitTime - from.JitTime;
    public long JitMethods { get; } = to.JitMethods - from.JitMethods;
    public long Written { get; } = to.WrittenBytes - from.WrittenBytes;

    public IEnumerable<(string Thread, double Seconds)> Threads =>
        to.Threads.Select(t => (t.Key, t.Value - from.Threads.GetValueOrDefault(t.Key)))
            .Where(t => t.Item2 > 0.005)
            .OrderByDescending(t => t.Item2);

    public void Print(TextWriter output, string indent, int events, string unit = "event")
    {
        var cores = Environment.ProcessorCount;
        var other = Math.Max(0, MachineBusy - Self - Nats);
        output.WriteLine(Text.Inv($"{indent}cpu over {WallSeconds:F2} s wall ({cores} cores = {cores * WallSeconds:F2} cpu-s): bench+runner process {Self:F2} s ({100 * Self / WallSeconds:F0}% of one core), nats-server {Nats:F2} s ({100 * Nats / WallSeconds:F0}%), other processes {other:F2} s, machine idle {Math.Max(0, 100 * (1 - ((MachineBusy + MachineIoWait) / Math.Max(MachineTotal, 1e-9)))):F0}%, iowait {MachineIoWait:F2} s"));
        if (events > 0)
        {
            output.WriteLine(Text.Inv($"{indent}per {unit}: {1e6 * Self / events:F0} µs cpu in this process, {1e6 * Nats / events:F0} µs in nats-server; allocated {Allocated / (double)events / 1024:F1} KiB/{unit}; written {Written / (double)events / 1024:F1} KiB/{unit}"));
        }
        output.WriteLine(Text.Inv($"{indent}GC: gen0/1/2 {Gen0}/{Gen1}/{Gen2} collections, paused {GcPause.TotalMilliseconds:F0} ms ({100 * GcPause.TotalSeconds / WallSeconds:F1}% of wall); JIT: {JitMethods} methods compiled in {JitTime.TotalMilliseconds:F0} ms"));
        var top = Threads.Take(8).Select(t => Text.Inv($"{t.Thread}={t.Seconds:F2}s"));
        output.WriteLine($"{indent}threads of this process: {string.Join(", ", top)}");
    }
}
