using System.Globalization;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Client.ObjectStore;
using NATS.Client.ObjectStore.Models;
using Runner.Core.Ids;
using Runner.Messaging;

namespace Runner.Sagas.Snapshots;

/// <summary>
/// Partition snapshots in a replicated JetStream object store, one object per snapshot, named by
/// partition, covered inbox sequence and epoch. Only an object the partition's lease record
/// references counts; one a fenced owner wrote is never referenced, and the owner sweeps it away.
/// </summary>
internal sealed class SnapshotStore
{
    private readonly INatsObjStore _objects;

    private SnapshotStore(INatsObjStore objects)
    {
        _objects = objects;
    }

    public string Bucket => _objects.Bucket;

    public static async Task<SnapshotStore> OpenAsync(INatsJSContext js, string bucket, int replicas, CancellationToken cancellationToken) =>
        new(await ObjectBuckets.OpenAsync(js, bucket, replicas, "Runner partition snapshots", cancellationToken));

    public static string Name(PartitionId partition, ulong sequence, long epoch) =>
        string.Create(CultureInfo.InvariantCulture, $"{partition.Value:D5}-{sequence:D20}-e{epoch}");

    /// <summary>The inbox sequence and epoch a name given by <see cref="Name"/> carries; false for any other name.</summary>
    public static bool TryParseName(string name, out ulong sequence, out long epoch)
    {
        sequence = 0;
        epoch = 0;
        var parts = name.Split('-');
        return parts.Length == 3
            && parts[0].Length == 5
            && parts[2].StartsWith('e')
            && ulong.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out sequence)
            && long.TryParse(parts[2].AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out epoch);
    }

    public static string NamePrefix(PartitionId partition) => string.Create(CultureInfo.InvariantCulture, $"{partition.Value:D5}-");

    /// <summary>The object's metadata entry naming the inbox a snapshot covers: <see cref="InboxStamp"/> of that inbox stream.</summary>
    public const string InboxKey = "runner-inbox";

    /// <summary>
    /// What identifies one inbox stream among the streams of that name ever created: its creation
    /// time as the server recorded it (kept with the stream, the same on every replica and after a
    /// restart). Only compared for equality, never against a clock.
    /// </summary>
    public static string InboxStamp(DateTimeOffset inboxCreated) =>
        inboxCreated.UtcDateTime.ToString("O", CultureInfo.InvariantCulture);

    /// <summary>Stores a snapshot of the inbox created at <paramref name="inboxCreated"/>, stamped with it.</summary>
    public async Task PutAsync(string name, byte[] bytes, DateTimeOffset inboxCreated, CancellationToken cancellationToken)
    {
        var meta = new ObjectMetadata
        {
            Name = name,
            Metadata = new Dictionary<string, string> { [InboxKey] = InboxStamp(inboxCreated) },
        };
        await _objects.PutAsync(meta, new MemoryStream(bytes, writable: false), leaveOpen: false, cancellationToken);
    }

    /// <summary>When the object's meta entry was stored (the stream's time, the server's clock) and the inbox stamp it carries, or null when there is no such object.</summary>
    public async Task<StoredSnapshot?> InfoAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            var info = await _objects.GetInfoAsync(name, cancellationToken: cancellationToken);
            return new StoredSnapshot(info.MTime, info.Metadata?.GetValueOrDefault(InboxKey));
        }
        catch (NatsObjNotFoundException)
        {
            return null;
        }
    }

    /// <summary>The stored image, or null when there is no such object.</summary>
    public async Task<byte[]?> GetAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            return await _objects.GetBytesAsync(name, cancellationToken);
        }
        catch (NatsObjNotFoundException)
        {
            return null;
        }
    }

    /// <summary>Deletes the object and its meta entry too, so the bucket does not keep a marker for every snapshot ever taken.</summary>
    public async Task DeleteAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            await _objects.DeleteAsync(name, cancellationToken);
        }
        catch (NatsObjNotFoundException)
        {
            // gone already
        }
        // Clients differ on padding the encoded name: purge both spellings.
        var encoded = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(name)).Replace('+', '-').Replace('/', '_');
        foreach (var spelling in new[] { encoded, encoded.TrimEnd('=') }.Distinct(StringComparer.Ordinal))
        {
            await _objects.JetStreamContext.PurgeStreamAsync($"OBJ_{Bucket}", new StreamPurgeRequest { Filter = $"$O.{Bucket}.M.{spelling}" }, cancellationToken);
        }
    }

    /// <summary>Names of the partition's stored objects (read from the meta subjects of the bucket's stream).</summary>
    public async Task<List<string>> NamesAsync(PartitionId partition, CancellationToken cancellationToken)
    {
        var prefix = NamePrefix(partition);
        var metaPrefix = $"$O.{Bucket}.M.";
        var stream = await _objects.JetStreamContext.GetStreamAsync($"OBJ_{Bucket}", new StreamInfoRequest { SubjectsFilter = metaPrefix + ">" }, cancellationToken);
        var names = new List<string>();
        foreach (var subject in stream.Info.State.Subjects?.Keys ?? Enumerable.Empty<string>())
        {
            if (NameOfMetaSubject(subject, metaPrefix) is { } name && name.StartsWith(prefix, StringComparison.Ordinal))
            {
                names.Add(name);
            }
        }
        return names;
    }

    /// <summary>The object name a meta subject (<paramref name="metaPrefix"/> then its base64url name, padded or not) carries; null when it carries none.</summary>
    internal static string? NameOfMetaSubject(string subject, string metaPrefix)
    {
        if (!subject.StartsWith(metaPrefix, StringComparison.Ordinal))
        {
            return null;
        }
        var encoded = subject[metaPrefix.Length..].TrimEnd('=').Replace('-', '+').Replace('_', '/');
        try
        {
            return System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(encoded.PadRight(encoded.Length + ((4 - (encoded.Length % 4)) % 4), '=')));
        }
        catch (FormatException)
        {
            return null;
        }
    }
}

/// <summary>A stored snapshot object: when its meta entry was stored (by the server), and the stamp of the inbox it covers (null when written before snapshots were stamped).</summary>
internal sealed record StoredSnapshot(DateTimeOffset StoredAt, string? Inbox);

/// <summary>Opens or creates the object store buckets Runner keeps in JetStream.</summary>
internal static class ObjectBuckets
{
    public static async Task<INatsObjStore> OpenAsync(INatsJSContext js, string bucket, int replicas, string description, CancellationToken cancellationToken)
    {
        var context = new NatsObjContext(js);
        try
        {
            return await context.GetObjectStoreAsync(bucket, cancellationToken);
        }
        catch (NatsJSApiException ex) when (ex.Error.Code == 404)
        {
            return await CreateOrOpen.RunAsync(
                ct => context.CreateObjectStoreAsync(new NatsObjConfig(bucket)
                {
                    NumberOfReplicas = replicas,
                    Storage = NatsObjStorageType.File,
                    Description = description,
                }, ct),
                ct => context.GetObjectStoreAsync(bucket, ct),
                cancellationToken);
        }
    }
}
