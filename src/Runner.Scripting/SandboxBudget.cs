using System.Diagnostics;
using Jint;

namespace Runner.Scripting;

/// <summary>
/// Statement, time and allocation budget for one script call. Unlike Jint's built-in constraints it
/// can be disarmed, so the one-time engine setup (freezing every intrinsic) is not charged to the
/// first event. It throws <see cref="SandboxLimitException"/>, which scripts cannot catch.
/// Time is the CPU the script's thread used (<see cref="ThreadCpuClock"/>), not wall time: a node
/// busy with other work, or a garbage collection that suspends the thread, would otherwise make a
/// good script late and park its instance. Collections that ran while the script did are not counted either: with
/// workstation GC (the runtime's default outside the runner's own settings, and what an operator gets with
/// <c>DOTNET_gcServer=0</c>) a collection runs on the thread that triggered it, so its CPU would be charged to the
/// script whose allocation happened to trigger it. A wall-clock backstop of <see cref="WallBackstopFactor"/>
/// times the limit (at least <see cref="MinWallBackstop"/>) stays, for a thread that waits without using CPU.
/// </summary>
internal sealed class SandboxBudget : Constraint
{
    private const int SampleEvery = 32;
    public const int WallBackstopFactor = 20;
    public static readonly TimeSpan MinWallBackstop = TimeSpan.FromSeconds(5);

    /// <summary>The longest a thread's CPU clock reading is used again for a new budget (less for a shorter limit: a sixteenth of it).</summary>
    public static readonly TimeSpan MaxClockReuse = TimeSpan.FromMilliseconds(1);

    // The calling thread's last CPU clock reading and the wall time it was taken at.
    [ThreadStatic]
    private static long t_cpuRead;

    [ThreadStatic]
    private static long t_cpuReadAt;

    private long _maxStatements;
    private long _earliestLate;
    private long _backstop;
    private long _cpuDeadline;
    private TimeSpan _pausedBase;
    private long _memoryBase;
    private long _maxBytes;
    private long _statements;
    private bool _armed;

    public void Arm(long maxStatements, TimeSpan timeout, long maxBytes)
    {
        _maxStatements = maxStatements;
        var now = Stopwatch.GetTimestamp();
        // A thread uses CPU no faster than the wall clock runs: until the limit has passed in wall time it cannot have
        // used it, so the (system-call) CPU clock is read only after that, and almost no transition reads it again.
        _earliestLate = now + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        var backstop = timeout * WallBackstopFactor;
        _backstop = ThreadCpuClock.Available
            ? now + (long)((backstop > MinWallBackstop ? backstop : MinWallBackstop).TotalSeconds * Stopwatch.Frequency)
            : _earliestLate;
        _cpuDeadline = ThreadCpuClock.Available ? CpuAtMost(now, timeout) + (long)(timeout.TotalMilliseconds * 1_000_000) : 0;
        _pausedBase = GC.GetTotalPauseDuration();
        _maxBytes = maxBytes;
        _memoryBase = GC.GetAllocatedBytesForCurrentThread();
        _statements = 0;
        _armed = true;
    }

    public void Disarm() => _armed = false;

    /// <summary>
    /// The thread's CPU clock now, or a little more: the clock is a system call (about half a microsecond, a
    /// percent of a transition), so a reading this thread took less than <see cref="MaxClockReuse"/> ago (a
    /// sixteenth of a shorter limit) is used again, plus the wall time since it, which the thread cannot have
    /// outrun. The deadline is then late by at most that much, never early: a budget is never stricter.
    /// </summary>
    private static long CpuAtMost(long now, TimeSpan timeout)
    {
        var reuse = Math.Min(MaxClockReuse.Ticks, timeout.Ticks / 16) * Stopwatch.Frequency / TimeSpan.TicksPerSecond;
        var since = now - t_cpuReadAt;
        if (t_cpuReadAt == 0 || since < 0 || since > reuse)
        {
            // The wall time first: the reading is then at least the CPU used by that instant, so the wall
            // time counted from it is never less than the thread can have used since.
            t_cpuReadAt = Stopwatch.GetTimestamp();
            t_cpuRead = ThreadCpuClock.Nanoseconds();
            return t_cpuRead;
        }
        return t_cpuRead + (long)(since * (1_000_000_000.0 / Stopwatch.Frequency));
    }

    /// <summary>
    /// Checks time and memory once more after the call: a single built-in call (a huge
    /// String.prototype.repeat, a join) cannot be interrupted between statements, but its result
    /// must not count as a transition that stayed within the limits.
    /// </summary>
    public void CheckAfterCall()
    {
        var now = Stopwatch.GetTimestamp();
        if (now > _earliestLate && (now > _backstop || CpuUsedOutsideCollections() > _cpuDeadline))
        {
            throw new SandboxLimitException(ScriptFailure.Timeout, "script ran past its time limit");
        }
        var used = GC.GetAllocatedBytesForCurrentThread() - _memoryBase;
        if (used > _maxBytes)
        {
            throw new SandboxLimitException(ScriptFailure.MemoryLimit, $"script allocated {used} bytes, the limit is {_maxBytes}");
        }
    }

    /// <summary>
    /// The thread's CPU clock less the time the process spent paused for collections since the budget was armed. A
    /// collection that ran on another thread suspended this one (it used no CPU meanwhile), so subtracting its pause
    /// too only makes the budget more lenient by that pause, never stricter; the wall-clock backstop still bounds it.
    /// </summary>
    private long CpuUsedOutsideCollections() =>
        ThreadCpuClock.Nanoseconds() - ((GC.GetTotalPauseDuration() - _pausedBase).Ticks * 100);

    public override void Check()
    {
        if (!_armed)
        {
            return;
        }
        if (++_statements > _maxStatements)
        {
            throw new SandboxLimitException(ScriptFailure.StatementLimit, $"script executed more than {_maxStatements} statements");
        }
        if (_statements % SampleEvery == 0)
        {
            CheckAfterCall();
        }
    }

    public override void Reset()
    {
        // Arm() sets the budget per call; Jint calls Reset() before every Invoke, which must not re-arm.
    }
}

/// <summary>A sandbox limit was hit. Not a JavaScript error: a script's try/catch cannot swallow it.</summary>
internal sealed class SandboxLimitException : Exception
{
    public SandboxLimitException(string code, string message)
        : base(message)
    {
        Code = code;
    }

    public SandboxLimitException()
    {
        Code = ScriptFailure.ScriptError;
    }

    public SandboxLimitException(string message)
        : base(message)
    {
        Code = ScriptFailure.ScriptError;
    }

    public SandboxLimitException(string message, Exception innerException)
        : base(message, innerException)
    {
        Code = ScriptFailure.ScriptError;
    }

    public string Code { get; }
}
