namespace Runner.Sagas.Snapshots;

/// <summary>
/// Runs a runtime's snapshot captures one at a time, each on a thread of its own rather than the
/// thread pool's. A capture reads and compresses a whole partition: CPU for as long as the
/// partition is large. Every partition of a runtime comes due at about the same moment, and as
/// many captures on pool threads left the pool no thread for the pipeline's continuations (the
/// router's, the relay's, the NATS client's) until it grew, which it does slowly: every event in
/// flight waited hundreds of milliseconds. One at a time, a round of snapshots takes one core,
/// for as long as before in all.
/// </summary>
internal sealed class SnapshotCaptures
{
    // Its wait handle is never asked for: nothing to dispose.
    private readonly SemaphoreSlim _one = new(1, 1);

    /// <summary>
    /// Runs <paramref name="capture"/> on a thread of its own once the captures before it are done;
    /// with <paramref name="takeTurn"/> false at once (a hand-over: its partition is paused until
    /// the capture is stored, and the replica is handing over rather than taking events).
    /// </summary>
    public async Task<T> RunAsync<T>(Func<T> capture, bool takeTurn, CancellationToken cancellationToken)
    {
        if (!takeTurn)
        {
            return await Task.Factory.StartNew(capture, cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }
        await _one.WaitAsync(cancellationToken);
        try
        {
            return await Task.Factory.StartNew(capture, cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }
        finally
        {
            _one.Release();
        }
    }
}
