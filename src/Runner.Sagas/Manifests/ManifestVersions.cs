using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Serialization;
using NATS.Client.ObjectStore;
using Runner.Messaging;

namespace Runner.Sagas.Manifests;

/// <summary>
/// Every manifest version a partition may have to replay with, by content hash: the ones this
/// process loaded, and — stored in a replicated JetStream object store by whichever replica ran
/// them — the ones other replicas ran. A version fetched from the store is written under the data
/// directory, loaded and compiled like any manifest directory, and checked to hash the same.
/// </summary>
internal sealed class ManifestVersions
{
    private readonly INatsObjStore? _objects;
    private readonly string _directory;
    private readonly StreamNames _streams;
    private readonly ConcurrentDictionary<string, ManifestSet> _sets = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, bool> _stored = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _loading = new(1, 1);

    /// <param name="objects">The version store; null keeps only what this process loaded (tests, tools).</param>
    /// <param name="directory">Where fetched versions are unpacked to be loaded.</param>
    public ManifestVersions(INatsObjStore? objects, string directory, StreamNames streams)
    {
        _objects = objects;
        _directory = directory;
        _streams = streams;
    }

    /// <summary>True when another replica could load <paramref name="hash"/> too (stored, or no store is configured).</summary>
    public bool IsAvailable(string hash) => _objects is null ? _sets.ContainsKey(hash) : _stored.ContainsKey(hash);

    /// <summary>Makes a version loaded here available for replay: in memory, and in the store unless it is there already.</summary>
    public async Task AddAsync(ManifestSet set, CancellationToken cancellationToken)
    {
        _sets.TryAdd(set.Hash, set);
        if (_objects is null)
        {
            return;
        }
        try
        {
            var info = await _objects.GetInfoAsync(set.Hash, showDeleted: false, cancellationToken);
            if (info.Deleted != true)
            {
                _stored[set.Hash] = true;
                return;
            }
        }
        catch (NatsObjNotFoundException)
        {
            // not stored yet
        }
        var bundle = JsonSerializer.SerializeToUtf8Bytes(new Bundle(set.Hash, set.Sources.Select(s => new BundleFile(s.Path, s.Text)).ToList()), BundleJsonContext.Default.Bundle);
        await _objects.PutAsync(set.Hash, bundle, cancellationToken);
        _stored[set.Hash] = true;
    }

    /// <summary>Like <see cref="AddAsync"/>, but a store that does not answer only leaves the version unavailable to others for now.</summary>
    public async Task TryAddAsync(ManifestSet set, CancellationToken cancellationToken)
    {
        try
        {
            await AddAsync(set, cancellationToken);
        }
        catch (Exception ex) when (ex is NATS.Client.Core.NatsException or NatsObjException or TimeoutException)
        {
            // retried with the next batch
        }
    }

    /// <summary>The version with <paramref name="hash"/>; throws <see cref="ManifestVersionUnavailableException"/> when it is neither here nor stored, or does not load.</summary>
    public async Task<ManifestSet> GetAsync(string hash, CancellationToken cancellationToken)
    {
        if (_sets.TryGetValue(hash, out var known))
        {
            return known;
        }
        await _loading.WaitAsync(cancellationToken);
        try
        {
            if (_sets.TryGetValue(hash, out known))
            {
                return known;
            }
            var set = await FetchAsync(hash, cancellationToken);
            _sets[hash] = set;
            _stored[hash] = true;
            return set;
        }
        finally
        {
            _loading.Release();
        }
    }

    private async Task<ManifestSet> FetchAsync(string hash, CancellationToken cancellationToken)
    {
        if (_objects is null)
        {
            throw new ManifestVersionUnavailableException($"version {hash[..Math.Min(12, hash.Length)]} is not loaded here and no version store is configured");
        }
        byte[] raw;
        try
        {
            raw = await _objects.GetBytesAsync(hash, cancellationToken);
        }
        catch (NatsObjNotFoundException)
        {
            throw new ManifestVersionUnavailableException($"version {hash[..Math.Min(12, hash.Length)]} is not in the version store {_objects.Bucket}");
        }
        Bundle? bundle;
        try
        {
            bundle = JsonSerializer.Deserialize(raw, BundleJsonContext.Default.Bundle);
        }
        catch (JsonException ex)
        {
            throw new ManifestVersionUnavailableException($"stored version {hash[..12]} is not readable: {ex.Message}");
        }
        if (bundle is null || !string.Equals(bundle.Hash, hash, StringComparison.Ordinal))
        {
            throw new ManifestVersionUnavailableException($"stored version {hash[..12]} names another hash");
        }
        var root = Path.GetFullPath(Path.Combine(_directory, hash));
        if (Directory.Exists(root))
        {
            Directory.Delete(root, recursive: true);
        }
        foreach (var file in bundle.Files)
        {
            var path = Path.GetFullPath(Path.Combine(root, file.Path));
            if (!path.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            {
                throw new ManifestVersionUnavailableException($"stored version {hash[..12]} holds a file outside its directory: {file.Path}");
            }
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            await File.WriteAllTextAsync(path, file.Text, cancellationToken);
        }
        var loaded = ManifestLoader.Load(root, _streams);
        if (!loaded.Succeeded)
        {
            throw new ManifestVersionUnavailableException($"stored version {hash[..12]} does not load here: {string.Join("; ", loaded.Errors.Take(3))}");
        }
        if (!string.Equals(loaded.Set!.Hash, hash, StringComparison.Ordinal))
        {
            throw new ManifestVersionUnavailableException($"stored version {hash[..12]} loads as {loaded.Set.Hash[..12]}");
        }
        return loaded.Set;
    }

    internal sealed record Bundle([property: JsonPropertyName("hash")] string Hash, [property: JsonPropertyName("files")] List<BundleFile> Files);

    internal sealed record BundleFile([property: JsonPropertyName("path")] string Path, [property: JsonPropertyName("text")] string Text);
}

/// <summary>A manifest version a partition must replay with is not available.</summary>
internal sealed class ManifestVersionUnavailableException(string message) : Exception(message);

[JsonSerializable(typeof(ManifestVersions.Bundle))]
internal sealed partial class BundleJsonContext : JsonSerializerContext;
