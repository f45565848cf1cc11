using System.Globalization;
using System.Text;
using System.Text.Json;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.KeyValueStore;
using Runner.Core.Ids;
using Runner.Messaging;

namespace Runner.Sagas.Ownership;

/// <summary>
/// The replicated KV bucket that says who owns what: partition and router leases, member
/// heartbeats and the deployment record. Every lease write is a create-only put or a
/// compare-and-set on the entry's revision.
/// </summary>
internal sealed class OwnershipBucket
{
    public const string DeploymentKey = "deployment";
    public const string PartitionPrefix = "partition.";
    public const string RouterPrefix = "router.";
    public const string MemberPrefix = "member.";

    private readonly INatsKVStore _kv;

    private OwnershipBucket(INatsKVStore kv)
    {
        _kv = kv;
    }

    public string Bucket => _kv.Bucket;

    public static string PartitionKey(PartitionId partition) => PartitionPrefix + partition.Value.ToString("D5", CultureInfo.InvariantCulture);

    public static string RouterKey(string stream) => RouterPrefix + stream;

    /// <summary>Worker ids may hold characters a key may not: the key carries them base64url-encoded.</summary>
    public static string MemberKey(string worker) => MemberPrefix + Convert.ToBase64String(Encoding.UTF8.GetBytes(worker)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>
    /// Opens the bucket (creating it when missing) and checks the deployment record: the first
    /// replica writes the partition count, and a replica started with another count is refused,
    /// because every key and inbox subject depends on it.
    /// </summary>
    public static async Task<OwnershipBucket> OpenAsync(INatsJSContext js, string bucket, int replicas, int partitions, TimeProvider time, CancellationToken cancellationToken)
    {
        var context = new NatsKVContext(js);
        INatsKVStore kv;
        try
        {
            kv = await context.GetStoreAsync(bucket, cancellationToken);
        }
        catch (NatsJSApiException ex) when (ex.Error.Code == 404)
        {
            kv = await CreateOrOpen.RunAsync(
                ct => context.CreateStoreAsync(new NatsKVConfig(bucket)
                {
                    History = 1,
                    NumberOfReplicas = replicas,
                    Storage = NatsKVStorageType.File,
                    Description = "Runner partition and router leases, replica heartbeats",
                }, ct),
                ct => context.GetStoreAsync(bucket, ct),
                cancellationToken);
        }
        var ownership = new OwnershipBucket(kv);
        await ownership.CheckDeploymentAsync(partitions, time, cancellationToken);
        return ownership;
    }

    /// <summary>The bucket as it is, for reading (null when no saga replica ever created it).</summary>
    public static async Task<OwnershipBucket?> OpenExistingAsync(INatsJSContext js, string bucket, CancellationToken cancellationToken)
    {
        try
        {
            return new OwnershipBucket(await new NatsKVContext(js).GetStoreAsync(bucket, cancellationToken));
        }
        catch (NatsJSApiException ex) when (ex.Error.Code == 404)
        {
            return null;
        }
    }

    private async Task CheckDeploymentAsync(int partitions, TimeProvider time, CancellationToken cancellationToken)
    {
        var record = new DeploymentRecord { Partitions = partitions, CreatedAtMs = time.GetUtcNow().ToUnixTimeMilliseconds() };
        var created = await _kv.TryCreateAsync(DeploymentKey, JsonSerializer.SerializeToUtf8Bytes(record, OwnershipJsonContext.Default.DeploymentRecord),
            NatsRawSerializer<byte[]>.Default, cancellationToken);
        if (created.Success)
        {
            return;
        }
        var existing = await GetAsync(DeploymentKey, OwnershipJsonContext.Default.DeploymentRecord, cancellationToken)
            ?? throw new InvalidOperationException($"ownership bucket {Bucket}: the deployment record could not be read");
        if (existing.Record.Partitions != partitions)
        {
            throw new DeploymentMismatchException(
                $"RUNNER_PARTITIONS is {partitions}, but this deployment (bucket {Bucket}) was created with {existing.Record.Partitions} partitions; "
                + "every replica must use the same count (it fixes which partition each saga instance lives in)");
        }
    }

    public async ValueTask<(T Record, ulong Revision)?> GetAsync<T>(string key, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type, CancellationToken cancellationToken)
        where T : class
    {
        var entry = await _kv.TryGetEntryAsync(key, serializer: NatsRawSerializer<byte[]>.Default, cancellationToken: cancellationToken);
        if (!entry.Success)
        {
            if (entry.Error is NatsKVKeyNotFoundException or NatsKVKeyDeletedException)
            {
                return null;
            }
            throw entry.Error;
        }
        return Parse(entry.Value.Value, type) is { } record ? (record, entry.Value.Revision) : null;
    }

    /// <summary>The key's current entry as the watch would deliver it, or null when it has none.</summary>
    public async ValueTask<NatsKVEntry<byte[]>?> GetEntryAsync(string key, CancellationToken cancellationToken)
    {
        var entry = await _kv.TryGetEntryAsync(key, serializer: NatsRawSerializer<byte[]>.Default, cancellationToken: cancellationToken);
        if (entry.Success)
        {
            return entry.Value;
        }
        return entry.Error is NatsKVKeyNotFoundException or NatsKVKeyDeletedException ? null : throw entry.Error;
    }

    public ValueTask<(LeaseRecord Record, ulong Revision)?> GetLeaseAsync(string key, CancellationToken cancellationToken) =>
        GetAsync(key, OwnershipJsonContext.Default.LeaseRecord, cancellationToken);

    /// <summary>Create-only put; returns the revision, or null when the key exists.</summary>
    public async ValueTask<ulong?> TryCreateAsync(string key, LeaseRecord record, CancellationToken cancellationToken)
    {
        var created = await _kv.TryCreateAsync(key, Serialize(record), NatsRawSerializer<byte[]>.Default, cancellationToken);
        if (created.Success)
        {
            return created.Value;
        }
        return created.Error is NatsKVCreateException ? null : throw created.Error;
    }

    /// <summary>Compare-and-set on <paramref name="revision"/>; returns the new revision, or null when the key moved on.</summary>
    public async ValueTask<ulong?> TryUpdateAsync(string key, LeaseRecord record, ulong revision, CancellationToken cancellationToken)
    {
        var updated = await _kv.TryUpdateAsync(key, Serialize(record), revision, NatsRawSerializer<byte[]>.Default, cancellationToken);
        if (updated.Success)
        {
            return updated.Value;
        }
        return updated.Error is NatsKVWrongLastRevisionException ? null : throw updated.Error;
    }

    public async ValueTask PutMemberAsync(MemberRecord member, CancellationToken cancellationToken) =>
        await _kv.PutAsync(MemberKey(member.Worker), JsonSerializer.SerializeToUtf8Bytes(member, OwnershipJsonContext.Default.MemberRecord),
            NatsRawSerializer<byte[]>.Default, cancellationToken);

    public async ValueTask DeleteMemberAsync(string worker, CancellationToken cancellationToken) =>
        await _kv.DeleteAsync(MemberKey(worker), cancellationToken: cancellationToken);

    /// <summary>Every change to the bucket, starting with the current value of every key.</summary>
    public IAsyncEnumerable<NatsKVEntry<byte[]>> WatchAsync(CancellationToken cancellationToken) =>
        _kv.WatchAsync(">", NatsRawSerializer<byte[]>.Default, new NatsKVWatchOpts { IncludeHistory = false }, cancellationToken);

    /// <summary>Every key's current entry, once (for <c>runner partitions</c>).</summary>
    public async Task<List<NatsKVEntry<byte[]>>> ReadAllAsync(CancellationToken cancellationToken)
    {
        var entries = new List<NatsKVEntry<byte[]>>();
        // An empty bucket has nothing to deliver: OnNoData ends the enumeration.
        var opts = new NatsKVWatchOpts { IncludeHistory = false, IgnoreDeletes = true, OnNoData = _ => ValueTask.FromResult(true) };
        await foreach (var entry in _kv.WatchAsync(">", NatsRawSerializer<byte[]>.Default, opts, cancellationToken))
        {
            entries.Add(entry);
            if (entry.Delta == 0)
            {
                break;
            }
        }
        return entries;
    }

    public static byte[] Serialize(LeaseRecord record) => JsonSerializer.SerializeToUtf8Bytes(record, OwnershipJsonContext.Default.LeaseRecord);

    public static T? Parse<T>(byte[]? value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
        where T : class
    {
        if (value is null || value.Length == 0)
        {
            return null;
        }
        try
        {
            return JsonSerializer.Deserialize(value, type);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <summary>This replica's settings contradict what the deployment was created with.</summary>
internal sealed class DeploymentMismatchException(string message) : InvalidOperationException(message);
