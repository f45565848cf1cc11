using System.Text;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Core.Keys;
using Runner.Host.Service;
using Runner.Storage;

namespace Runner.Host.Operations;

/// <summary>
/// The checks behind <c>/health</c>: the store is writable (a real, synced LMDB write and a file
/// written and removed in the data directory) and JetStream answers an API request. Callers at
/// the same moment share one probe, and <c>/ready</c>, which load balancers poll often, takes a
/// result a moment old rather than a synced write through the single writer on every call.
/// </summary>
internal sealed class HealthProbe(TimeProvider time)
{
    private static readonly byte[] s_probeKey = Encoding.ASCII.GetBytes("runner-health-probe");
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(3);

    private readonly Lock _gate = new();
    private Task<IReadOnlyList<Check>>? _latest;
    private RunnerComponents? _latestOf;
    private long _latestStarted;

    public sealed record Check(string Name, bool Ok, string? Error);

    /// <summary>A fresh probe, or the one already in flight.</summary>
    public Task<IReadOnlyList<Check>> RunAsync(RunnerComponents components, CancellationToken cancellationToken) =>
        RecentAsync(components, TimeSpan.Zero, cancellationToken);

    /// <summary>The result of a probe started at most <paramref name="maxAge"/> ago, or of a new one.</summary>
    public Task<IReadOnlyList<Check>> RecentAsync(RunnerComponents components, TimeSpan maxAge, CancellationToken cancellationToken)
    {
        Task<IReadOnlyList<Check>> probe;
        lock (_gate)
        {
            if (_latest is null || !ReferenceEquals(_latestOf, components)
                || (_latest.IsCompleted && time.GetElapsedTime(_latestStarted) > maxAge))
            {
                _latestOf = components;
                _latestStarted = time.GetTimestamp();
                // Shared by every caller, so it runs on its own timeouts, not on one request's token.
                _latest = ProbeAsync(components);
            }
            probe = _latest;
        }
        return probe.WaitAsync(cancellationToken);
    }

    private async Task<IReadOnlyList<Check>> ProbeAsync(RunnerComponents components)
    {
        var storage = StorageAsync(components);
        var jetStream = JetStreamAsync(components);
        return [await storage, await jetStream];
    }

    private async Task<Check> StorageAsync(RunnerComponents components)
    {
        using var timeout = new CancellationTokenSource(s_timeout, time);
        try
        {
            // LMDB can reuse free pages of its file when the disk is full, so its write alone does
            // not prove the disk takes new data: a small file in the data directory does.
            var file = Path.Combine(components.Settings.DataDir, ".health-probe");
            await using (var stream = new FileStream(file, FileMode.Create, FileAccess.Write, FileShare.None, 1, FileOptions.WriteThrough))
            {
                await stream.WriteAsync(new byte[4096], timeout.Token);
                await stream.FlushAsync(timeout.Token);
            }
            File.Delete(file);

            var batch = new WriteBatch();
            batch.Put(KeySpace.Checkpoint, s_probeKey, Encoding.ASCII.GetBytes(time.GetUtcNow().ToUnixTimeMilliseconds().ToString(System.Globalization.CultureInfo.InvariantCulture)));
            await components.Store.Writer.CommitAsync(batch, timeout.Token);
            return new Check("storage", true, null);
        }
        catch (OperationCanceledException)
        {
            return new Check("storage", false, $"no write completed within {s_timeout.TotalSeconds:0} s");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or StorageException or ObjectDisposedException)
        {
            return new Check("storage", false, ex.Message);
        }
    }

    private async Task<Check> JetStreamAsync(RunnerComponents components)
    {
        if (components.Nats.ConnectionState != NatsConnectionState.Open)
        {
            return new Check("jetstream", false, $"NATS connection is {components.Nats.ConnectionState.ToString().ToLowerInvariant()}");
        }
        using var timeout = new CancellationTokenSource(s_timeout, time);
        try
        {
            await new NatsJSContext(components.Nats).GetAccountInfoAsync(timeout.Token);
            return new Check("jetstream", true, null);
        }
        catch (OperationCanceledException)
        {
            return new Check("jetstream", false, $"no answer within {s_timeout.TotalSeconds:0} s");
        }
        catch (Exception ex) when (ex is NatsException or TimeoutException)
        {
            return new Check("jetstream", false, ex.Message);
        }
    }
}
