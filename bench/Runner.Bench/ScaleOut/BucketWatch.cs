using System.Diagnostics;
using NATS.Client.JetStream;
using NATS.Client.KeyValueStore;
using Runner.Sagas.Ownership;

namespace Runner.Bench.ScaleOut;

/// <summary>
/// The bench's own watch of the ownership bucket: when (on this process's clock) each key last
/// moved — what another replica judges liveness by. It shows what a takeover waited for.
/// </summary>
internal sealed class BucketWatch : IAsyncDisposable
{
    private readonly Lock _gate = new();
    private readonly List<(string Key, long At, string? Owner)> _changes = [];
    private readonly CancellationTokenSource _stop;
    private readonly Task _loop;

    private BucketWatch(INatsKVStore store, CancellationToken cancellationToken)
    {
        _stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        _loop = Task.Run(() => RunAsync(store, _stop.Token), CancellationToken.None);
    }

    public static async Task<BucketWatch> StartAsync(INatsJSContext js, string bucket, CancellationToken cancellationToken) =>
        new(await new NatsKVContext(js).GetStoreAsync(bucket, cancellationToken), cancellationToken);

    private async Task RunAsync(INatsKVStore store, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var entry in store.WatchAsync<byte[]>(cancellationToken: cancellationToken))
            {
                var at = Stopwatch.GetTimestamp();
                lock (_gate)
                {
                    _changes.Add((entry.Key, at, Owner(entry)));
                }
            }
        }
        catch (OperationCanceledException)
        {
            // stopped
        }
    }

    /// <summary>Who wrote the entry: a lease's owner, a heartbeat's worker (null when deleted, released or unreadable).</summary>
    private static string? Owner(NatsKVEntry<byte[]> entry)
    {
        if (entry.Operation != NatsKVOperation.Put || entry.Value is null)
        {
            return null;
        }
        return entry.Key.StartsWith(OwnershipBucket.MemberPrefix, StringComparison.Ordinal)
            ? OwnershipBucket.Parse(entry.Value, OwnershipJsonContext.Default.MemberRecord)?.Worker
            : OwnershipBucket.Parse(entry.Value, OwnershipJsonContext.Default.LeaseRecord)?.Owner;
    }

    /// <summary>When <paramref name="owner"/> last wrote <paramref name="key"/> (as this watch saw it), if it was seen to.</summary>
    public long? LastWrittenBy(string key, string owner)
    {
        lock (_gate)
        {
            long? last = null;
            foreach (var (k, at, o) in _changes)
            {
                if (string.Equals(k, key, StringComparison.Ordinal) && string.Equals(o, owner, StringComparison.Ordinal))
                {
                    last = at;
                }
            }
            return last;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        _stop.Dispose();
    }
}
