using System.Collections.Concurrent;

namespace Runner.Scripting;

/// <summary>
/// Ready sandboxes for one script. A sandbox goes back to the pool only after a clean run; one
/// that hit a limit or threw is dropped, so no half-finished execution is ever reused.
/// </summary>
internal sealed class SandboxPool(SagaScript script)
{
    private const int MaxIdle = 16;

    private readonly ConcurrentBag<ScriptSandbox> _idle = [];
    private long _created;

    public long Created => Interlocked.Read(ref _created);

    public ScriptResult Run(ScriptInput input)
    {
        if (!_idle.TryTake(out var sandbox))
        {
            sandbox = new ScriptSandbox(script);
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
        if (_idle.Count < MaxIdle)
        {
            _idle.Add(sandbox);
        }
    }
}
