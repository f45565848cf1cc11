using System.Diagnostics;
using System.Security.Cryptography;

namespace Runner.Bench;

/// <summary>
/// How fast one core of this machine is right now: SHA-256 over a fixed buffer on one thread for a
/// quarter of a second. A shared host's speed changes from hour to hour (noisy neighbours, frequency),
/// by a factor of two on the development box; the bench prints this at its start and end so that
/// figures of two runs can be told apart from the machine they ran on. Within one run, compare ratios.
/// </summary>
internal static class MachineSpeed
{
    private static readonly byte[] s_buffer = CreateBuffer();

    /// <summary>MB/s of SHA-256 on one thread (the median of five 50 ms slices, so one preemption does not decide it).</summary>
    public static double Probe()
    {
        Span<byte> hash = stackalloc byte[32];
        var slices = new double[5];
        for (var i = 0; i < slices.Length; i++)
        {
            var bytes = 0L;
            var start = Stopwatch.GetTimestamp();
            while (Stopwatch.GetElapsedTime(start).TotalMilliseconds < 50)
            {
                SHA256.HashData(s_buffer, hash);
                bytes += s_buffer.Length;
            }
            slices[i] = bytes / Stopwatch.GetElapsedTime(start).TotalSeconds / 1e6;
        }
        Array.Sort(slices);
        return slices[slices.Length / 2];
    }

    /// <summary>The line the bench prints.</summary>
    public static string Line(string when) =>
        Text.Inv($"  machine speed {when}: SHA-256 on one core {Probe():F0} MB/s (compare runs only at similar speeds; within a run, compare ratios)");

    private static byte[] CreateBuffer()
    {
        var buffer = new byte[256 * 1024];
        new Random(42).NextBytes(buffer);
        return buffer;
    }
}
