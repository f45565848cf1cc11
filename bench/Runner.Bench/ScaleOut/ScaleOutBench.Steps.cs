using System.Diagnostics;
using Runner.Core.Ids;
using Runner.Sagas;

namespace Runner.Bench.ScaleOut;

/// <summary>The steps the phases are made of, each bounded by a deadline.</summary>
internal sealed partial class ScaleOutBench
{
    /// <summary>Starts <paramref name="replica"/> and waits until it serves <paramref name="partitions"/> partitions (workers started).</summary>
    private async Task StartHoldingAsync(BenchReplica replica, SagaRuntimeOptions options, int partitions, CancellationToken cancellationToken)
    {
        var since = Stopwatch.GetTimestamp();
        await replica.StartAsync(_url, _manifests, options, cancellationToken);
        Require(await WaitAsync(() => replica.Runtime!.OwnedPartitions.Count == partitions
            && _journal.Count(replica.Name, EventJournal.PartitionStarted, since) >= partitions, TimeSpan.FromSeconds(30), cancellationToken),
            $"replica {replica.Name} to serve {partitions} partitions within 30 s");
    }

    /// <summary>One event to each of <paramref name="instances"/> keys (one instance each), then waits until all are committed and the outbox is empty.</summary>
    private async Task LoadAsync(BenchReplica replica, int instances, int phase, CancellationToken cancellationToken)
    {
        var before = replica.Commits.Total;
        var started = Stopwatch.GetTimestamp();
        var errors = await Publisher.PipelinedAsync(_js, instances, _options.Window, i => (Wire.Subject(i), Wire.Event(phase, i, 0)), null, cancellationToken);
        Require(await WaitAsync(() => replica.Commits.Total - before >= instances - errors && replica.Runtime!.Relay.Depth() == 0, TimeSpan.FromSeconds(120), cancellationToken),
            $"{instances} instances committed on {replica.Name} within 120 s");
        _output.WriteLine(Text.Inv($"  state: {instances} saga instances (one event each, {errors} publish errors) committed on {replica.Name} in {Stopwatch.GetElapsedTime(started).TotalSeconds:F2} s"));
    }

    /// <summary>The first <paramref name="count"/> key numbers whose instance falls in <paramref name="partition"/>.</summary>
    private List<int> KeysOf(int partition, int count)
    {
        var keys = new List<int>(count);
        for (var i = 0; keys.Count < count; i++)
        {
            var instance = new InstanceId(new TenantId(Wire.Tenant), new SagaName(Wire.Saga), new CorrelationKey("k" + i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            if (Partitioner.PartitionOf(instance, _options.Partitions).Value == partition)
            {
                keys.Add(i);
            }
        }
        return keys;
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
            await Task.Delay(10, cancellationToken);
        }
        return true;
    }

    private static async Task<bool> WaitAsync(Func<Task<bool>> condition, TimeSpan limit, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(limit.TotalSeconds * Stopwatch.Frequency);
        while (!await condition())
        {
            if (Stopwatch.GetTimestamp() > deadline)
            {
                return false;
            }
            await Task.Delay(20, cancellationToken);
        }
        return true;
    }

    private static void Require(bool met, string what)
    {
        if (!met)
        {
            throw new ScaleOutStalledException("timed out waiting for " + what);
        }
    }

    /// <summary>Drains <paramref name="replica"/> (every partition and router handed over), within 30 s.</summary>
    private static async Task DrainAsync(BenchReplica replica, CancellationToken cancellationToken)
    {
        try
        {
            await replica.Runtime!.DrainAsync(cancellationToken).WaitAsync(TimeSpan.FromSeconds(30), cancellationToken);
        }
        catch (TimeoutException)
        {
            Require(false, $"{replica.Name}'s drain to return within 30 s");
        }
    }
}
