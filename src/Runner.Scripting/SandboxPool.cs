namespace Runner.Scripting;

/// <summary>
/// Ready sandboxes for one script. A sandbox goes back to the pool only after a clean run; one
/// that hit a limit or threw is dropped, so no half-finished execution is ever reused.
/// </summary>
internal sealed class SandboxPool(SagaScript script)
{
    private const int MaxIdle = 16;

    // A plain stack under a lock: taken and returned once per transition by a handful of script
    // threads. (ConcurrentBag's Count freezes the whole bag, a quarter of a transition's CPU.)
    private readonly Stack<ScriptSandbox> _idle = new(MaxIdle);
    private readonly Lock _gate = new();
    private long _created;

    public long Created => Interlocked.Read(ref _created);

    public ScriptResult Run(ScriptInput input)
    {
        // Every limit is deterministic except wall-clock time: a cold JIT or a starved CPU can make
        // a good script late. Run a timed-out transition once more on a fresh engine before calling
        // it the script's fault; a script that really loops hits the statement limit anyway.
        var result = RunOnce(input);
        return result.Failure?.Code == ScriptFailure.Timeout ? RunOnce(input) : result;
    }

    private ScriptResult RunOnce(ScriptInput input)
    {
        ScriptSandbox? sandbox;
        lock (_gate)
        {
            _idle.TryPop(out sandbox);
        }
        if (sandbox is null)
        {
            try
            {
                sandbox = new ScriptSandbox(script);
            }
            catch (Exception ex) when (ex is Jint.JintException or SandboxLimitException or InvalidOperationException or ArgumentException
                or System.Text.RegularExpressions.RegexMatchTimeoutException or InsufficientExecutionStackException)
            {
                // It loaded at validation; under load its module code can still run out of time.
                return ScriptResult.Fail(ScriptFailure.LoadFailed, $"script could not be loaded into a new engine: {ex.Message}");
            }
            Interlocked.Increment(ref _created);
        }
        var result = sandbox.Run(input, out var reusable);
        if (reusable)
        {
            Return(sandbox);
        }
        return result;
    }

    internal void Return(ScriptSandbox sandbox)
    {
        lock (_gate)
        {
            if (_idle.Count < MaxIdle)
            {
                _idle.Push(sandbox);
            }
        }
    }
}
