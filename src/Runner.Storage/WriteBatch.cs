using System.Buffers;
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
    private WriteOp[] _ops;
    private int _count;

    /// <summary>
    /// A batch with room for <paramref name="capacity"/> ops before it grows. Its room is rented from the
    /// shared pool; <see cref="ReturnRoom"/> gives it back once the batch has committed (a batch that is
    /// never given back is simply collected).
    /// </summary>
    public WriteBatch(int capacity = 0) => _ops = capacity > 0 ? ArrayPool<WriteOp>.Shared.Rent(capacity) : [];

    public ArraySegment<WriteOp> Ops => new(_ops, 0, _count);

    public int Count => _count;

    public long Bytes { get; private set; }

    /// <summary>
    /// Nobody waits on this batch's commit to answer anyone (the deletes of items already published): the
    /// writer may hold it for up to <see cref="LmdbOptions.CompanyWindow"/> until a batch that does need its
    /// commit now comes, so both go out in one fsync. It is committed just as durably, only later.
    /// </summary>
    public bool MayWait { get; init; }

    /// <summary>A put; the value's bytes must stay as they are until the batch has committed (an array, or a <see cref="ValueArena"/>'s).</summary>
    public void Put(KeySpace space, byte[] key, ReadOnlyMemory<byte> value)
    {
        Add(new WriteOp(space, key, value));
        Bytes += key.Length + value.Length;
    }

    /// <summary>Drops every op added after the first <paramref name="count"/> (undo of a failed step).</summary>
    public void TruncateTo(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, _count);
        for (var i = count; i < _count; i++)
        {
            Bytes -= _ops[i].Key.Length + (_ops[i].Value?.Length ?? 0);
        }
        Array.Clear(_ops, count, _count - count);
        _count = count;
    }

    /// <summary>
    /// Empties the batch and gives its room back to the pool: only once nothing reads its ops any more
    /// (its commit has completed, or it never went to the writer).
    /// </summary>
    public void ReturnRoom()
    {
        var ops = _ops;
        var count = _count;
        _ops = [];
        _count = 0;
        Bytes = 0;
        if (ops.Length > 0)
        {
            // Cleared: the pool must not keep the batch's keys and values alive.
            Array.Clear(ops, 0, count);
            ArrayPool<WriteOp>.Shared.Return(ops);
        }
    }

    public void Delete(KeySpace space, byte[] key)
    {
        Add(new WriteOp(space, key, null));
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
        Add(new WriteOp(space, key, null, Expected: expected));
        Add(new WriteOp(alsoSpace, alsoPrefix, null, Prefix: true, IfPrevious: true));
        Bytes += key.Length + alsoPrefix.Length;
    }

    /// <summary>Deletes every key of <paramref name="space"/> that starts with <paramref name="prefix"/> (a partition's range).</summary>
    public void DeletePrefix(KeySpace space, byte[] prefix)
    {
        ArgumentOutOfRangeException.ThrowIfZero(prefix.Length);
        Add(new WriteOp(space, prefix, null, Prefix: true));
        Bytes += prefix.Length;
    }

    private void Add(in WriteOp op)
    {
        if (_count == _ops.Length)
        {
            Grow();
        }
        _ops[_count++] = op;
    }

    private void Grow()
    {
        var grown = ArrayPool<WriteOp>.Shared.Rent(Math.Max(8, _ops.Length * 2));
        Array.Copy(_ops, grown, _count);
        if (_ops.Length > 0)
        {
            Array.Clear(_ops, 0, _count);
            ArrayPool<WriteOp>.Shared.Return(_ops);
        }
        _ops = grown;
    }
}
