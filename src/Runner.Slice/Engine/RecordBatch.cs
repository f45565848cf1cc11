using System.Buffers;
using Runner.Slice.Contracts;

namespace Runner.Slice.Engine;

/// <summary>
/// A record the run could not use, with why: the stage that refused it, the field, a stable code,
/// a message, every contract violation when there are several, and where it came from. Its
/// original bytes stay in the batch (<see cref="RawStart"/>, <see cref="RawLength"/>).
/// </summary>
internal sealed record DeadLetter(string Stage, string? Field, string Code, string Message, long Offset, long Line)
{
    public int RawStart { get; init; }

    public int RawLength { get; init; }

    /// <summary>Whether the original bytes are a JSON object (kept as JSON) or text (kept as a string).</summary>
    public bool RawIsJson { get; init; }

    /// <summary>True when only the start of an over-long input line was kept.</summary>
    public bool Truncated { get; init; }

    public IReadOnlyList<Violation>? Violations { get; init; }
}

/// <summary>
/// Records travelling together between stages, with their bytes, the dead letters met on the way,
/// the source position after the last of them (what a checkpoint records once the sink committed
/// them), the watermark, and whether the stream ends here. Batches are pooled: a run allocates
/// only as many as its channels can hold, which keeps memory flat whatever the input size.
/// </summary>
internal sealed class RecordBatch
{
    private SliceRecord[] _records = [];

    public byte[] Data { get; private set; } = ArrayPool<byte>.Shared.Rent(256 * 1024);

    public int DataLength { get; private set; }

    public int Count { get; private set; }

    public List<DeadLetter> DeadLetters { get; } = [];

    /// <summary>The source position after this batch: where a resumed run starts reading.</summary>
    public long EndPosition { get; set; }

    /// <summary>The file line count after this batch.</summary>
    public long EndLine { get; set; }

    /// <summary>Input bytes this batch consumed, lines skipped included.</summary>
    public long BytesIn { get; set; }

    /// <summary>Input records (lines or messages) this batch consumed, bad ones included.</summary>
    public long RecordsIn { get; set; }

    /// <summary>Records a filter dropped (not dead letters: a false condition is no error).</summary>
    public long Filtered { get; set; }

    /// <summary>Event time (UTC ticks) below which records count as late, when the run tracks event time.</summary>
    public long? Watermark { get; set; }

    /// <summary>The last batch of the stream: the source has nothing more.</summary>
    public bool EndOfStream { get; set; }

    /// <summary>The last batch of a drained run: the source stopped early on request.</summary>
    public bool Drained { get; set; }

    /// <summary>Whatever the source must do once the sink committed this batch (acknowledgements).</summary>
    public object? SourceState { get; set; }

    public SliceRecord this[int index] => _records[index];

    /// <summary>Copies input bytes into the batch; returns where they start.</summary>
    public int Append(ReadOnlySpan<byte> bytes)
    {
        var start = Reserve(bytes.Length, out var span);
        bytes.CopyTo(span);
        return start;
    }

    /// <summary>Reserves room for <paramref name="length"/> bytes and returns where they start.</summary>
    public int Reserve(int length, out Span<byte> span)
    {
        if (DataLength + length > Data.Length)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(Data.Length * 2, DataLength + length));
            Data.AsSpan(0, DataLength).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(Data);
            Data = bigger;
            for (var i = 0; i < Count; i++)
            {
                _records[i].Data = bigger;
            }
        }
        var start = DataLength;
        DataLength += length;
        span = Data.AsSpan(start, length);
        return start;
    }

    /// <summary>Gives back bytes reserved but not used, at the end of the data.</summary>
    public void Shrink(int unused) => DataLength -= unused;

    /// <summary>A fresh record at the end of the batch.</summary>
    public SliceRecord Add(FieldTable fields)
    {
        if (Count == _records.Length)
        {
            var grown = new SliceRecord[Math.Max(64, _records.Length * 2)];
            _records.CopyTo(grown, 0);
            for (var i = _records.Length; i < grown.Length; i++)
            {
                grown[i] = new SliceRecord();
            }
            _records = grown;
        }
        var record = _records[Count++];
        record.Reset(fields, Data);
        return record;
    }

    /// <summary>A fresh record for input that starts at <paramref name="offset"/>, its original bytes at <paramref name="rawStart"/>.</summary>
    public SliceRecord Add(FieldTable fields, long offset, long line, int rawStart, int rawLength, bool rawIsJson)
    {
        var record = Add(fields);
        record.Offset = offset;
        record.Line = line;
        record.RawStart = rawStart;
        record.RawLength = rawLength;
        record.RawIsJson = rawIsJson;
        return record;
    }

    /// <summary>Forgets the last record (a line that turned out not to be one).</summary>
    public void RemoveLast() => Count--;

    /// <summary>Empties the batch for reuse.</summary>
    public void Clear()
    {
        Count = 0;
        DataLength = 0;
        DeadLetters.Clear();
        EndPosition = 0;
        EndLine = 0;
        BytesIn = 0;
        RecordsIn = 0;
        Filtered = 0;
        Watermark = null;
        EndOfStream = false;
        Drained = false;
        SourceState = null;
    }
}
