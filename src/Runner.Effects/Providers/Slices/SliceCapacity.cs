namespace Runner.Effects.Providers.Slices;

/// <summary>
/// The cpu and memory this node gives slices, shared by every slice worker of the process. A slice
/// holds its request for as long as it runs; one that does not fit waits until enough is released.
/// </summary>
internal sealed class SliceCapacity(double cpu, long memory)
{
    private readonly Lock _lock = new();
    private double _cpu = cpu;
    private long _memory = memory;
    private TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public double Cpu { get; } = cpu;

    public long Memory { get; } = memory;

    /// <summary>How many slices of <paramref name="cpu"/> and <paramref name="memory"/> fit at once: a worker's slots.</summary>
    public int Slots(double cpu, long memory) =>
        Math.Max(1, (int)Math.Min(Math.Floor(Cpu / cpu + 1e-9), memory <= 0 ? int.MaxValue : Memory / memory));

    /// <summary>A request larger than the whole node can never run here.</summary>
    public bool CanEverFit(double cpu, long memory) => cpu <= Cpu + 1e-9 && memory <= Memory;

    /// <summary>Waits until the request fits, takes it, and returns what gives it back.</summary>
    public async ValueTask<IDisposable> AcquireAsync(double cpu, long memory, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task released;
            lock (_lock)
            {
                if (_cpu + 1e-9 >= cpu && _memory >= memory)
                {
                    _cpu -= cpu;
                    _memory -= memory;
                    return new Lease(this, cpu, memory);
                }
                released = _released.Task;
            }
            await released.WaitAsync(cancellationToken);
        }
    }

    private void Release(double cpu, long memory)
    {
        TaskCompletionSource released;
        lock (_lock)
        {
            _cpu += cpu;
            _memory += memory;
            released = _released;
            _released = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        released.SetResult();
    }

    private sealed class Lease(SliceCapacity capacity, double cpu, long memory) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                capacity.Release(cpu, memory);
            }
        }
    }
}
