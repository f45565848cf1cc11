using System.Threading.Tasks.Sources;

namespace Runner.Effects.Workers;

/// <summary>
/// A worker's slots, taken by commands in the order they ask. A command that finds none waits
/// without allocating a waiter (waiters are reused): the end of the worker's intake wakes every
/// waiter at once, with <c>false</c>, and so does the end of a waiter's own token (a command whose
/// claim is lost while it waits). Free slots are still given after the intake ends (a command in
/// hand may run while the worker drains).
/// </summary>
internal sealed class SlotGate : IDisposable
{
    private readonly Lock _gate = new();
    private readonly Queue<Waiter> _waiters = new();
    private readonly Stack<Waiter> _spare = new();
    private readonly CancellationTokenRegistration _closing;
    private int _free;
    private bool _closed;
    // Entries of abandoned waits still in the queue: skipped when reached, or dropped all at once when they outnumber the rest.
    private int _stale;

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

    /// <summary>
    /// True once a slot is held by the caller; false when the gate closed, or <paramref name="abandon"/> ended,
    /// before one was free. Only a wait that finds no slot free registers with <paramref name="abandon"/>.
    /// </summary>
    public ValueTask<bool> TakeAsync(CancellationToken abandon = default)
    {
        Waiter waiter;
        lock (_gate)
        {
            if (_free > 0)
            {
                _free--;
                return new ValueTask<bool>(true);
            }
            if (_closed || abandon.IsCancellationRequested)
            {
                return new ValueTask<bool>(false);
            }
            waiter = _spare.TryPop(out var spare) ? spare : new Waiter(this);
            waiter.Queued = true;
            _waiters.Enqueue(waiter);
        }
        var version = waiter.Version;
        // Outside the gate: a token that ends meanwhile runs Abandon at once, which takes the gate.
        waiter.Watch(abandon);
        return new ValueTask<bool>(waiter, version);
    }

    /// <summary>Gives a held slot back: to the longest waiter, or to the free ones.</summary>
    public void Give()
    {
        Waiter? next = null;
        lock (_gate)
        {
            // An abandoned wait leaves its entry behind in the queue: skipped here.
            while (_waiters.TryDequeue(out var waiter))
            {
                if (waiter.Queued)
                {
                    waiter.Queued = false;
                    next = waiter;
                    break;
                }
                _stale--;
            }
            if (next is null)
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
        var waiting = new List<Waiter>();
        lock (_gate)
        {
            _closed = true;
            foreach (var waiter in _waiters)
            {
                if (waiter.Queued)
                {
                    waiter.Queued = false;
                    waiting.Add(waiter);
                }
            }
            _waiters.Clear();
            _stale = 0;
        }
        foreach (var waiter in waiting)
        {
            waiter.Complete(false);
        }
    }

    /// <summary>
    /// A waiter's token ended: it gets <c>false</c>, unless a slot or the closing came first. Its entry stays in the
    /// queue, so the waiter is not reused (a later wait on it would be served from that entry, ahead of its turn).
    /// </summary>
    private void Abandon(Waiter waiter)
    {
        lock (_gate)
        {
            if (!waiter.Queued)
            {
                return;
            }
            waiter.Queued = false;
            waiter.Abandoned = true;
            if (++_stale > 32 && _stale > _waiters.Count / 2)
            {
                var live = _waiters.Where(w => w.Queued).ToArray();
                _waiters.Clear();
                foreach (var w in live)
                {
                    _waiters.Enqueue(w);
                }
                _stale = 0;
            }
        }
        waiter.Complete(false);
    }

    private void Return(Waiter waiter)
    {
        if (waiter.Abandoned)
        {
            return; // its entry may still be in the queue: left to the collector
        }
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
        private CancellationTokenRegistration _abandoning;

        public short Version => _core.Version;

        /// <summary>Waiting in the queue and not yet completed; guarded by the gate's lock. Whoever sets it false completes the wait.</summary>
        public bool Queued { get; set; }

        /// <summary>Its wait was abandoned (set once, under the gate's lock, before the wait completes): it is not reused.</summary>
        public bool Abandoned { get; set; }

        public void Watch(CancellationToken abandon)
        {
            if (abandon.CanBeCanceled)
            {
                _abandoning = abandon.UnsafeRegister(static state => ((Waiter)state!).OnAbandon(), this);
            }
        }

        public void Complete(bool taken) => _core.SetResult(taken);

        public bool GetResult(short token)
        {
            var taken = _core.GetResult(token);
            // Before the waiter is reused: an abandon still under way ends first, and none comes later.
            _abandoning.Dispose();
            _abandoning = default;
            _core.Reset();
            gate.Return(this);
            return taken;
        }

        private void OnAbandon() => gate.Abandon(this);

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);
    }
}
