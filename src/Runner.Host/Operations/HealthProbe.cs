using System.Text;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Core.Keys;
using Runner.Host.Service;
using Runner.Storage;

namespace Runner.Host.Operations;

/// <summary>
/// The checks behind <c>/health</c>: the store is writable (a real, synced LMDB write and a file
/// written and removed in the data directory) and JetStream answers an API request.
/// </summary>
internal sealed class HealthProbe(TimeProvider time)
{
    private static readonly byte[] s_probeKey = Encoding.ASCII.GetBytes("runner-health-probe");
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(3);

    public sealed record Check(string Name, bool Ok, string? Error);

    public async Task<IReadOnlyList<Check>> RunAsync(RunnerComponents components, CancellationToken cancellationToken)
    {
        var storage = StorageAsync(components, cancellationToken);
        var jetStream = JetStreamAsync(components, cancellationToken);
        return [await storage, await jetStream];
    }

    private async Task<Check> StorageAsync(RunnerComponents components, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(s_timeout);
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
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new Check("storage", false, $"no write completed within {s_timeout.TotalSeconds:0} s");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or StorageException or ObjectDisposedException)
        {
            return new Check("storage", false, ex.Message);
        }
    }

    private static async Task<Check> JetStreamAsync(RunnerComponents components, CancellationToken cancellationToken)
    {
        if (components.Nats.ConnectionState != NatsConnectionState.Open)
        {
            return new Check("jetstream", false, $"NATS connection is {components.Nats.ConnectionState.ToString().ToLowerInvariant()}");
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(s_timeout);
        try
        {
            await new NatsJSContext(components.Nats).GetAccountInfoAsync(timeout.Token);
            return new Check("jetstream", true, null);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new Check("jetstream", false, $"no answer within {s_timeout.TotalSeconds:0} s");
        }
        catch (Exception ex) when (ex is NatsException or TimeoutException)
        {
            return new Check("jetstream", false, ex.Message);
        }
    }
}
