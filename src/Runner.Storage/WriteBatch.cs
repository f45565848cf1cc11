using Runner.Core.Keys;

namespace Runner.Storage;

/// <summary>One put (Value set) or delete (Value null) in a keyspace; with <see cref="Prefix"/>, a delete of every key starting with Key.</summary>
internal readonly record struct WriteOp(KeySpace Space, byte[] Key, byte[]? Value, bool Prefix = false);

/// <summary>
/// Writes that commit together or not at all — for a saga partition, the state, outbox items,
/// schedules, checkpoint and dedupe markers of every transition in one inbox batch.
/// </summary>
internal sealed class WriteBatch
{
    private readonly List<WriteOp> _ops = [];

    public IReadOnlyList<WriteOp> Ops => _ops;

    public int Count => _ops.Count;

    public long Bytes { get; private set; }

    public void Put(KeySpace space, byte[] key, byte[] value)
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

    /// <summary>Deletes every key of <paramref name="space"/> that starts with <paramref name="prefix"/> (a partition's range).</summary>
    public void DeletePrefix(KeySpace space, byte[] prefix)
    {
        ArgumentOutOfRangeException.ThrowIfZero(prefix.Length);
        _ops.Add(new WriteOp(space, prefix, null, Prefix: true));
        Bytes += prefix.Length;
    }
}
