using System.Diagnostics;
using Runner.Core.Keys;

namespace Runner.Bench;

internal sealed partial class RunnerBench
{
    /// <summary>Outbox drained (every committed command published and deleted).</summary>
    private async Task WaitForIdleAsync(CancellationToken cancellationToken) =>
        await WaitAsync(() => Store.Read(r => r.Count(KeySpace.Outbox)) == 0, TimeSpan.FromSeconds(30), cancellationToken);

    private static async Task<bool> WaitAsync(Func<Task<bool>> condition, TimeSpan limit, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(limit.TotalSeconds * Stopwatch.Frequency);
        while (!await condition())
        {
            if (Stopwatch.GetTimestamp() > deadline)
            {
                return false;
            }
            await Task.Delay(5, cancellationToken);
        }
        return true;
    }

    private static async Task<bool> WaitAsync(Func<bool> condition, TimeSpan limit, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(limit.TotalSeconds * Stopwatch.Frequency);
        while (!condition())
        {
            if (Stopwatch.GetTimestamp() > deadline)
            {
                return false;
            }
            await Task.Delay(5, cancellationToken);
        }
        return true;
    }
}
