using Microsoft.Extensions.Logging;
using Runner.Sagas.Manifests;
using Runner.Sagas.Ownership;

namespace Runner.Sagas.Partitions;

/// <summary>
/// Which manifest version each inbox message of a partition runs with. The partition's lease record
/// holds the versions by sequence, and a transition always runs with the version recorded for its
/// sequence — on the replica that first ran it and on any that replays it later. A new version
/// (a reload, a new image) is recorded, from the first sequence that can never have run before,
/// before anything runs with it: past the horizon, the last inbox sequence when the lease was
/// taken, up to which a former owner may already have run messages with the recorded version.
/// </summary>
internal sealed class PartitionVersions(OwnedLease lease, ManifestVersions store, Func<ManifestSet> current, ulong horizon, ILogger logger)
{
    public ulong Horizon => horizon;

    /// <summary>
    /// The version of every sequence from <paramref name="first"/> to <paramref name="last"/>,
    /// recording the current one first where it may start. Throws
    /// <see cref="ManifestVersionUnavailableException"/> when a recorded version cannot be loaded,
    /// and <see cref="InvalidOperationException"/> when no version is recorded yet and none could be.
    /// </summary>
    public async Task<Func<ulong, ManifestSet>> PrepareAsync(ulong first, ulong last, CancellationToken cancellationToken)
    {
        var now = current();
        var recorded = lease.Record.Versions;
        if (recorded.Count == 0 || !string.Equals(recorded[^1].Manifest, now.Hash, StringComparison.Ordinal))
        {
            // With nothing recorded nothing ever ran (a version is recorded before anything runs
            // with it), so the first message may start the record; otherwise the horizon bounds
            // what a former owner may have run with the recorded version.
            var from = recorded.Count == 0 ? first : Math.Max(first, horizon + 1);
            if (from <= last)
            {
                await SwitchAsync(now, from, cancellationToken);
            }
            recorded = lease.Record.Versions;
        }
        if (recorded.Count == 0)
        {
            throw new InvalidOperationException("no manifest version is recorded for the partition yet, and recording one failed");
        }
        var sets = new List<(ulong From, ManifestSet Set)>();
        for (var i = 0; i < recorded.Count; i++)
        {
            var range = recorded[i];
            var next = i + 1 < recorded.Count ? recorded[i + 1].From : ulong.MaxValue;
            // Only the versions this batch's sequences fall into.
            if (next <= first || range.From > last)
            {
                continue;
            }
            sets.Add((range.From, await store.GetAsync(range.Manifest, cancellationToken)));
        }
        if (sets.Count == 0 || sets[0].From > first)
        {
            // Sequences before the first recorded version never ran (the record starts where running began).
            sets.Insert(0, (0, sets.Count > 0 ? sets[0].Set : await store.GetAsync(recorded[^1].Manifest, cancellationToken)));
        }
        if (sets.Count == 1)
        {
            var only = sets[0].Set;
            return _ => only;
        }
        return sequence =>
        {
            var set = sets[0].Set;
            foreach (var (from, candidate) in sets)
            {
                if (from <= sequence)
                {
                    set = candidate;
                }
            }
            return set;
        };
    }

    /// <summary>
    /// Records the current version from just past the horizon, when the lease is taken and a
    /// former owner recorded another: the record says at once what this owner runs new messages
    /// with, so a later take of the partition (whose horizon may lie past messages this owner never
    /// got to, while it waited on a missing version) keeps them on it instead of the older one.
    /// </summary>
    public async Task RecordAtTakeAsync(CancellationToken cancellationToken)
    {
        var now = current();
        var recorded = lease.Record.Versions;
        if (recorded.Count > 0 && !string.Equals(recorded[^1].Manifest, now.Hash, StringComparison.Ordinal))
        {
            await SwitchAsync(now, horizon + 1, cancellationToken);
        }
    }

    /// <summary>Stores <paramref name="now"/> if needed and records it from <paramref name="from"/>; without the stored version nothing is recorded.</summary>
    private async Task SwitchAsync(ManifestSet now, ulong from, CancellationToken cancellationToken)
    {
        if (!store.IsAvailable(now.Hash))
        {
            await store.TryAddAsync(now, cancellationToken);
        }
        if (!store.IsAvailable(now.Hash))
        {
            return;
        }
        if (!await lease.UpdateAsync(r => Append(r, from, now.Hash), cancellationToken))
        {
            // The write may have been applied with its reply lost: running the batch with
            // the old version could contradict the record. The batch is retried; by then
            // the record is read back (and the idempotent append finds it done).
            throw new InvalidOperationException($"recording manifest version {now.Hash[..12]} from sequence {from} got no answer");
        }
        OwnershipLog.VersionSwitched(logger, lease.Partition!.Value.Value, lease.Epoch, from, now.Hash[..12]);
    }

    /// <summary>Records <paramref name="hash"/> from <paramref name="from"/> on (idempotent: a record already ending with it is kept).</summary>
    internal static LeaseRecord Append(LeaseRecord record, ulong from, string hash)
    {
        if (record.Versions.Count > 0 && string.Equals(record.Versions[^1].Manifest, hash, StringComparison.Ordinal))
        {
            return record;
        }
        // An entry at or after `from` was recorded but never ran (nothing runs before its record is written).
        var kept = record.Versions.Where(v => v.From < from).ToList();
        kept.Add(new VersionRange { From = from, Manifest = hash });
        return record with { Versions = kept };
    }

    /// <summary>Drops the entries no message after <paramref name="base"/> can need.</summary>
    internal static IReadOnlyList<VersionRange> Trim(IReadOnlyList<VersionRange> versions, ulong @base)
    {
        var firstNeeded = 0;
        for (var i = 0; i < versions.Count; i++)
        {
            if (versions[i].From <= @base + 1)
            {
                firstNeeded = i;
            }
        }
        return versions.Skip(firstNeeded).ToList();
    }
}
