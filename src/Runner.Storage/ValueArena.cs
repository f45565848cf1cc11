using System.Buffers;

namespace Runner.Storage;

/// <summary>
/// Room for the values of one write batch, in chunks rented from the shared pool, where each value was an array of
/// its own: a transition's instance record, history step, dedupe marker and outbox item live only until the batch
/// commits (the writer copies them into the map). A value is written through the arena as an
/// <see cref="IBufferWriter{T}"/> and taken with <see cref="Take"/>; the chunks go back to the pool on
/// <see cref="Dispose"/>, which must come after the batch's commit has completed, and after nothing reads the
/// values any more. Not thread-safe: one batch is built on one thread.
/// </summary>
internal sealed class ValueArena : IBufferWriter<byte>, IDisposable
{
    private const int ChunkBytes = 16 * 1024;

    private readonly List<byte[]> _chunks = [];
    private byte[] _current = [];
    private int _start;
    private int _used;

    /// <summary>The value written since the last take.</summary>
    public ReadOnlyMemory<byte> Take()
    {
        var value = new ReadOnlyMemory<byte>(_current, _start, _used - _start);
        _start = _used;
        return value;
    }

    /// <summary>Drops what was written since the last take (a value whose writing failed part way), so the next value starts clean.</summary>
    public void Discard() => _used = _start;

    public void Advance(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (_used + count > _current.Length)
        {
            throw new InvalidOperationException("advanced past the room given");
        }
        _used += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _current.AsMemory(_used);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _current.AsSpan(_used);
    }

    /// <summary>Room for <paramref name="sizeHint"/> more bytes of the value being written, moving what it has so far to a new chunk when this one is full.</summary>
    private void Ensure(int sizeHint)
    {
        var needed = Math.Max(sizeHint, 1);
        if (_current.Length - _used >= needed)
        {
            return;
        }
        var partial = _used - _start;
        var next = ArrayPool<byte>.Shared.Rent(Math.Max(ChunkBytes, 2 * (partial + needed)));
        _current.AsSpan(_start, partial).CopyTo(next);
        _chunks.Add(next);
        _current = next;
        _start = 0;
        _used = partial;
    }

    public void Dispose()
    {
        foreach (var chunk in _chunks)
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
        _chunks.Clear();
        _current = [];
        _start = 0;
        _used = 0;
    }
}
