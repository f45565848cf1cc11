namespace Runner.Storage.Tests;

/// <summary>
/// Holds the writer thread inside a blocker batch so that batches submitted meanwhile queue up
/// and are taken as one group when the gate opens — grouping made deterministic, no sleeps.
/// </summary>
internal sealed class WriterGate : IDisposable
{
    private readonly ManualResetEventSlim _open = new();
    private readonly TaskCompletionSource _entered = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public WriteBatch Blocker { get; } = Batches.Bulk($"blocker-{Guid.NewGuid():N}", 1, 16);

    /// <summary>Completes once the writer thread is inside the blocker batch.</summary>
    public Task Entered => _entered.Task;

    /// <summary>Call from <see cref="LmdbWriter.FaultInjector"/>.</summary>
    public void OnOp(WriteBatch batch)
    {
        if (!ReferenceEquals(batch, Blocker))
        {
            return;
        }
        _entered.TrySetResult();
        if (!_open.Wait(Batches.Timeout))
        {
            throw new InvalidOperationException("the test never opened the writer gate");
        }
    }

    public void Open() => _open.Set();

    public void Dispose()
    {
        _open.Set();
        _open.Dispose();
    }
}
