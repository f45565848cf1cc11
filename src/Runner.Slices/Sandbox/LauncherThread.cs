using System.Collections.Concurrent;
using System.Diagnostics;

namespace Runner.Slices.Sandbox;

/// <summary>
/// Starts every slice process from one thread that lives as long as the worker. The parent-death
/// signal that bubblewrap sets (<c>--die-with-parent</c>) fires when the <em>thread</em> that forked
/// it exits, not the process: a thread-pool thread that retires would kill running slices.
/// </summary>
internal static class LauncherThread
{
    private static readonly BlockingCollection<(ProcessStartInfo Start, TaskCompletionSource<Process> Started)> s_queue = [];
    private static readonly Lazy<Thread> s_thread = new(() =>
    {
        var thread = new Thread(Loop) { IsBackground = true, Name = "runner-slice-launcher" };
        thread.Start();
        return thread;
    });

    public static Task<Process> StartAsync(ProcessStartInfo start)
    {
        _ = s_thread.Value;
        var started = new TaskCompletionSource<Process>(TaskCreationOptions.RunContinuationsAsynchronously);
        s_queue.Add((start, started));
        return started.Task;
    }

    private static void Loop()
    {
        foreach (var (start, started) in s_queue.GetConsumingEnumerable())
        {
            try
            {
                started.SetResult(Process.Start(start) ?? throw new InvalidOperationException($"{start.FileName} did not start"));
            }
#pragma warning disable CA1031 // Handed to the caller, who reports it as the slice's setup error.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                started.SetException(ex);
            }
        }
    }
}
