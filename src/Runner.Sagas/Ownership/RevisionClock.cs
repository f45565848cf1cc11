namespace Runner.Sagas.Ownership;

/// <summary>
/// Judges liveness without comparing wall clocks across machines: an entry is stale when its
/// revision has not moved for a whole lease, measured on this process's monotonic clock from the
/// moment this process first saw that revision. Since it was written no later than that moment,
/// the writer's own deadline (its renewal's send time plus the lease, minus a margin) has always
/// passed first.
/// </summary>
internal sealed class RevisionClock(TimeProvider time)
{
    private readonly Dictionary<string, (ulong Revision, long Seen)> _seen = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    /// <summary>Notes a revision of <paramref name="key"/>; the clock starts only when the revision is new.</summary>
    public void Observe(string key, ulong revision)
    {
        lock (_gate)
        {
            if (!_seen.TryGetValue(key, out var seen) || seen.Revision != revision)
            {
                _seen[key] = (revision, time.GetTimestamp());
            }
        }
    }

    public void Forget(string key)
    {
        lock (_gate)
        {
            _seen.Remove(key);
        }
    }

    /// <summary>How long <paramref name="key"/> has stood at <paramref name="revision"/> as far as this process knows (zero when it has not seen it there).</summary>
    public TimeSpan Unmoved(string key, ulong revision)
    {
        lock (_gate)
        {
            return _seen.TryGetValue(key, out var seen) && seen.Revision == revision ? time.GetElapsedTime(seen.Seen) : TimeSpan.Zero;
        }
    }
}
