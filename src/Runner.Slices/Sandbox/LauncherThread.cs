using System.Collections.Concurrent;
using System.Diagnostics;

namespace Runner.Slices.Sandbox;

/// <summary>
/// Starts every slice process from one thread that lives as long as the worker. The parent-death
/// signal that bubblewrap sets (<c>--die-with-parent</c>) fires when the <em>thread</em> that forked
/// it exits, not the process: a thread-pool thread that retires would kill running slices. It is
/// also the one thread that may move itself into a slice's cgroup (v1) to fork the slice there.
/// </summary>
internal static class LauncherThread
{
    private static readonly BlockingCollection<Launch> s_queue = [];
    private static readonly Lazy<Thread> s_thread = new(() =>
    {
        var thread = new Thread(Loop) { IsBackground = true, Name = "runner-slice-launcher" };
        thread.Start();
        return thread;
    });

    /// <summary>
    /// Starts the process; <paramref name="enter"/> runs on the launcher thread right before the
    /// fork and <paramref name="leave"/> right after it (and also when the enter or the start fails). A failing
    /// <paramref name="enter"/> starts nothing; a failing <paramref name="leave"/> kills what started.
    /// </summary>
    public static Task<Process> StartAsync(ProcessStartInfo start, Action? enter = null, Action? leave = null)
    {
        _ = s_thread.Value;
        var started = new TaskCompletionSource<Process>(TaskCreationOptions.RunContinuationsAsynchronously);
        s_queue.Add(new Launch(start, enter, leave, started));
        return started.Task;
    }

    private static void Loop()
    {
        foreach (var launch in s_queue.GetConsumingEnumerable())
        {
            Process? process = null;
            try
            {
                // Leave also after a failed enter: a v1 join can fail after moving the thread into
                // some hierarchies, and a thread left in a slice's cgroup puts the worker's own pid
                // in that cgroup's procs, where the sweep that removes it would kill the worker.
                try
                {
                    launch.Enter?.Invoke();
                    process = Process.Start(launch.Start) ?? throw new InvalidOperationException($"{launch.Start.FileName} did not start");
                }
                finally
                {
                    launch.Leave?.Invoke();
                }
                launch.Started.SetResult(process);
            }
#pragma warning disable CA1031 // Handed to the caller, who reports it as the slice's setup error.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                if (process is not null)
                {
                    process.Kill(entireProcessTree: true);
                    process.Dispose();
                }
                launch.Started.SetException(ex);
            }
        }
    }

    private sealed record Launch(ProcessStartInfo Start, Action? Enter, Action? Leave, TaskCompletionSource<Process> Started);
}
