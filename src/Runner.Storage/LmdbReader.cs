using LightningDB;
using Runner.Core.Keys;

namespace Runner.Storage;

/// <summary>A read-only snapshot of the store, valid only inside <see cref="LmdbStore.Read{T}"/>.</summary>
internal readonly ref struct LmdbReader
{
    private readonly LightningTransaction _txn;
    private readonly LmdbStore _store;

    internal LmdbReader(LightningTransaction txn, LmdbStore store)
    {
        _txn = txn;
        _store = store;
    }

    public byte[]? Get(KeySpace space, ReadOnlySpan<byte> key)
    {
        var (code, _, value) = _txn.Get(_store.Database(space), key);
        return code == MDBResultCode.Success ? value.CopyToNewArray() : null;
    }

    /// <summary>The value under <paramref name="key"/> as the map holds it: valid only inside this read, so read it there, not keep it.</summary>
    public bool TryGet(KeySpace space, ReadOnlySpan<byte> key, out ReadOnlySpan<byte> value)
    {
        var (code, _, found) = _txn.Get(_store.Database(space), key);
        value = code == MDBResultCode.Success ? found.AsSpan() : default;
        return code == MDBResultCode.Success;
    }

    public bool Contains(KeySpace space, ReadOnlySpan<byte> key) => _txn.ContainsKey(_store.Database(space), key);

    /// <summary>Entries whose key starts with <paramref name="prefix"/>, in key order, at most <paramref name="limit"/>.</summary>
    public List<KeyValuePair<byte[], byte[]>> Scan(KeySpace space, ReadOnlySpan<byte> prefix, int limit, ReadOnlySpan<byte> startAfter = default)
    {
        var result = new List<KeyValuePair<byte[], byte[]>>();
        using var cursor = _txn.CreateCursor(_store.Database(space));
        var start = startAfter.IsEmpty || startAfter.SequenceCompareTo(prefix) < 0 ? prefix : startAfter;
        var code = start.IsEmpty ? cursor.First().resultCode : cursor.SetRange(start);
        while (code == MDBResultCode.Success && result.Count < limit)
        {
            var (current, key, value) = cursor.GetCurrent();
            if (current != MDBResultCode.Success)
            {
                break;
            }
            var keySpan = key.AsSpan();
            if (!keySpan.StartsWith(prefix))
            {
                break;
            }
            if (startAfter.IsEmpty || !keySpan.SequenceEqual(startAfter))
            {
                result.Add(new KeyValuePair<byte[], byte[]>(keySpan.ToArray(), value.CopyToNewArray()));
            }
            code = cursor.Next().resultCode;
        }
        return result;
    }

    /// <summary>Called for each entry of a range; the spans are valid only during the call.</summary>
    public delegate void EntryVisitor(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value);

    /// <summary>Calls <paramref name="visit"/> for every entry whose key starts with <paramref name="prefix"/>, in key order, without copying; returns how many.</summary>
    public long Visit(KeySpace space, ReadOnlySpan<byte> prefix, EntryVisitor visit)
    {
        using var cursor = _txn.CreateCursor(_store.Database(space));
        var count = 0L;
        var code = prefix.IsEmpty ? cursor.First().resultCode : cursor.SetRange(prefix);
        while (code == MDBResultCode.Success)
        {
            var (current, key, value) = cursor.GetCurrent();
            if (current != MDBResultCode.Success || !key.AsSpan().StartsWith(prefix))
            {
                break;
            }
            visit(key.AsSpan(), value.AsSpan());
            count++;
            code = cursor.Next().resultCode;
        }
        return count;
    }

    public long Count(KeySpace space) => _txn.GetEntriesCount(_store.Database(space));

    /// <summary>How many keys k there are with <paramref name="from"/> ≤ k &lt; <paramref name="to"/>, without copying any.</summary>
    public long CountRange(KeySpace space, ReadOnlySpan<byte> from, ReadOnlySpan<byte> to)
    {
        using var cursor = _txn.CreateCursor(_store.Database(space));
        var count = 0L;
        var code = from.IsEmpty ? cursor.First().resultCode : cursor.SetRange(from);
        while (code == MDBResultCode.Success)
        {
            var (current, key, _) = cursor.GetCurrent();
            if (current != MDBResultCode.Success || key.AsSpan().SequenceCompareTo(to) >= 0)
            {
                break;
            }
            count++;
            code = cursor.Next().resultCode;
        }
        return count;
    }
}
