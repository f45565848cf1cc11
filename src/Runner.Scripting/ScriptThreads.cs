namespace Runner.Scripting;

/// <summary>
/// Dedicated threads with a large stack for running scripts. Some Jint built-ins recurse natively,
/// outside the script's recursion limit (JSON.stringify or Array.prototype.join over a structure
/// nested tens of thousands of levels deep, which a script can build well inside its statement
/// budget). On a thread-pool thread's small stack that is an uncatchable stack overflow that kills
/// the process; here the statement budget runs out long before the stack does. The stack is only
/// reserved address space until used.
/// </summary>
internal static class ScriptThreads
{
    public const int StackSize = 512 * 1024 * 1024;

    private static readonly System.Collections.Concurrent.BlockingCollection<Action> s_queue = [];

    [ThreadStatic]
    private static bool t_isScriptThread;

    static ScriptThreads()
    {
        for (var i = 0; i < Math.Max(2, Environment.ProcessorCount); i++)
        {
            new Thread(Loop, StackSize) { IsBackground = true, Name = "runner-script" }.Start();
        }
    }

    public static bool IsCurrent => t_isScriptThread;

    /// <summary>Runs <paramref name="work"/> on a script thread; the pipeline's way in.</summary>
    public static Task<T> RunAsync<T>(Func<T> work)
    {
        if (t_isScriptThread)
        {
            return Task.FromResult(work());
        }
        var completion = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        s_queue.Add(() =>
        {
            try
            {
                completion.SetResult(work());
            }
#pragma warning disable CA1031 // The exception belongs to the caller, who awaits it.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                completion.SetException(ex);
            }
        });
        return completion.Task;
    }

    /// <summary>
    /// Runs <paramref name="work"/> synchronously with a large stack: directly on a script thread,
    /// otherwise on a fresh large-stack thread that the caller joins. For callers outside the
    /// pipeline (manifest validation, tools, tests); the pipeline uses <see cref="RunAsync{T}"/>.
    /// </summary>
    public static T Run<T>(Func<T> work)
    {
        if (t_isScriptThread)
        {
            return work();
        }
        T result = default!;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            t_isScriptThread = true;
            try
            {
                result = work();
            }
#pragma warning disable CA1031 // Re-thrown on the calling thread below.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                error = ex;
            }
        }, StackSize) { IsBackground = true, Name = "runner-script-call" };
        thread.Start();
        thread.Join();
        if (error is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();
        }
        return result;
    }

    private static void Loop()
    {
        t_isScriptThread = true;
        foreach (var work in s_queue.GetConsumingEnumerable())
        {
            work();
        }
    }
}
