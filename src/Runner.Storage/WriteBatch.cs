using Runner.Core.Keys;

namespace Runner.Storage;

/// <summary>
/// One put (Value set) or delete (Value null) in a keyspace; with <see cref="Prefix"/>, a delete of
/// every key starting with Key. With <see cref="Expected"/>, a delete that happens only while the
/// key still holds exactly that value; with <see cref="IfPrevious"/>, an op that happens only when
/// the op before it did (see <see cref="WriteBatch.DeleteIfUnchanged"/>).
/// </summary>
internal readonly record struct WriteOp(KeySpace Space, byte[] Key, ReadOnlyMemory<byte>? Value, bool Prefix = false, byte[]? Expected = null, bool IfPrevious = false);

/// <summary>
/// Writes that commit together or not at all — for a saga partition, the state, outbox items,
/// schedules, checkpoint and dedupe markers of every transition in one inbox batch.
/// </summary>
internal sealed class WriteBatch
{
    private readonly List<WriteOp> _ops;

    /// <summary>A batch with room for <paramref name="capacity"/> ops before its list grows.</summary>
    public WriteBatch(int capacity = 0) => _ops = new List<WriteOp>(capacity);

    public IReadOnlyList<WriteOp> Ops => _ops;

    public int Count => _ops.Count;

    public long Bytes { get; private set; }

    /// <summary>A put; the value's bytes must stay as they are until the batch has committed (an array, or a <see cref="ValueArena"/>'s).</summary>
    public void Put(KeySpace space, byte[] key, ReadOnlyMemory<byte> value)
    {
        _ops.Add(new WriteOp(space, key, value));
        Bytes += key.Length + value.Length;
    }

    /// <summary>Drops every op added after the first <paramref name="count"/> (undo of a failed step).</summary>
    public void TruncateTo(int count)
    {
        for (var i = count; i < _ops.Count; i++)
        {
            Bytes -= _ops[i].Key.Length + (_ops[i].Value?.Length ?? 0);
        }
        _ops.RemoveRange(count, _ops.Count - count);
    }

    public void Delete(KeySpace space, byte[] key)
    {
        _ops.Add(new WriteOp(space, key, null));
        Bytes += key.Length;
    }

    /// <summary>
    /// Deletes <paramref name="key"/> only if it still holds <paramref name="expected"/> when the
    /// batch commits, and then every key of <paramref name="alsoSpace"/> under <paramref name="alsoPrefix"/>:
    /// a sweeper that decided on what it read can never remove what a writer put there since.
    /// </summary>
    public void DeleteIfUnchanged(KeySpace space, byte[] key, byte[] expected, KeySpace alsoSpace, byte[] alsoPrefix)
    {
        ArgumentOutOfRangeException.ThrowIfZero(alsoPrefix.Length);
        _ops.Add(new WriteOp(space, key, null, Expected: expected));
        _ops.Add(new WriteOp(alsoSpace, alsoPrefix, null, Prefix: true, IfPrevious: true));
        Bytes += key.Length + alsoPrefix.Length;
    }

    /// <summary>Deletes every key of <paramref name="space"/> that starts with <paramref name="prefix"/> (a partition's range).</summary>
    public void DeletePrefix(KeySpace space, byte[] prefix)
    {
        ArgumentOutOfRangeException.ThrowIfZero(prefix.Length);
        _ops.Add(new WriteOp(space, prefix, null, Prefix: true));
        Bytes += prefix.Length;
    }
}
