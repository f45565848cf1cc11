using System.Threading.Tasks.Sources;

namespace Runner.Effects.Workers;

/// <summary>
/// A worker's slots, taken by commands in the order they ask. A command that finds none waits
/// without allocating (waiters are reused) and without a cancellation registration of its own: the
/// end of the worker's intake wakes every waiter at once, with <c>false</c>. Free slots are still
/// given after that (a command in hand may run while the worker drains).
/// </summary>
internal sealed class SlotGate : IDisposable
{
    private readonly Lock _gate = new();
    private readonly Queue<Waiter> _waiters = new();
    private readonly Stack<Waiter> _spare = new();
    private readonly CancellationTokenRegistration _closing;
    private int _free;
    private bool _closed;

    /// <param name="slots">How many may be held at once.</param>
    /// <param name="closing">Ends the waiting: every waiter then gets <c>false</c>, and so does every later ask that finds no slot.</param>
    public SlotGate(int slots, CancellationToken closing)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(slots, 1);
        _free = slots;
        _closing = closing.UnsafeRegister(static state => ((SlotGate)state!).Close(), this);
    }

    /// <summary>Slots free now.</summary>
    public int Free
    {
        get
        {
            lock (_gate)
            {
                return _free;
            }
        }
    }

    /// <summary>True once a slot is held by the caller; false when the gate closed before one was free.</summary>
    public ValueTask<bool> TakeAsync()
    {
        Waiter waiter;
        lock (_gate)
        {
            if (_free > 0)
            {
                _free--;
                return new ValueTask<bool>(true);
            }
            if (_closed)
            {
                return new ValueTask<bool>(false);
            }
            waiter = _spare.TryPop(out var spare) ? spare : new Waiter(this);
            _waiters.Enqueue(waiter);
        }
        return new ValueTask<bool>(waiter, waiter.Version);
    }

    /// <summary>Gives a held slot back: to the longest waiter, or to the free ones.</summary>
    public void Give()
    {
        Waiter? next;
        lock (_gate)
        {
            if (!_waiters.TryDequeue(out next))
            {
                _free++;
                return;
            }
        }
        next.Complete(true);
    }

    public void Dispose() => _closing.Dispose();

    private void Close()
    {
        Waiter[] waiting;
        lock (_gate)
        {
            _closed = true;
            waiting = [.. _waiters];
            _waiters.Clear();
        }
        foreach (var waiter in waiting)
        {
            waiter.Complete(false);
        }
    }

    private void Return(Waiter waiter)
    {
        lock (_gate)
        {
            _spare.Push(waiter);
        }
    }

    /// <summary>One wait for a slot: completed once, read once, then reused.</summary>
    private sealed class Waiter(SlotGate gate) : IValueTaskSource<bool>
    {
        // Asynchronous: whoever gives the slot (a finishing command, the closing token) does not run the waiter's command.
        private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };

        public short Version => _core.Version;

        public void Complete(bool taken) => _core.SetResult(taken);

        public bool GetResult(short token)
        {
            var taken = _core.GetResult(token);
            _core.Reset();
            gate.Return(this);
            return taken;
        }

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);
    }
}
