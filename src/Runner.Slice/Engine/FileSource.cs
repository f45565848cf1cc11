using System.Buffers;
using System.IO.Pipelines;
using System.Text;

namespace Runner.Slice.Engine;

/// <summary>
/// A file read line by line through a <see cref="PipeReader"/>: never the whole file in memory,
/// UTF-8, a leading byte-order mark skipped, CRLF or LF. A line longer than the limit is
/// dead-lettered (its start kept) and skipped to its end; blank lines are not records. Positions
/// are byte offsets, so a resumed run seeks to where the last committed batch ended.
/// </summary>
internal abstract class FileSource : ISource
{
    private byte[] _scratch = new byte[4096];
    private long _position;
    private long _line;

    protected FileSource(string path, long startPosition, long startLine)
    {
        Path = path;
        _position = startPosition;
        _line = startLine;
    }

    public string Path { get; }

    public (string Namespace, string Name) Dataset => ("file", System.IO.Path.GetFullPath(Path));

    public ValueTask CommittedAsync(object state, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    public async Task RunAsync(SourceContext context, CancellationToken cancellationToken)
    {
        var stream = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.Asynchronous | FileOptions.SequentialScan);
        await using (stream.ConfigureAwait(false))
        {
            await PrepareAsync(stream, context, cancellationToken).ConfigureAwait(false);
            if (_position == 0)
            {
                _position = await SkipByteOrderMarkAsync(stream, cancellationToken).ConfigureAwait(false);
            }
            stream.Seek(_position, SeekOrigin.Begin);
            var reader = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 256 * 1024, minimumReadSize: 64 * 1024, leaveOpen: true));
            try
            {
                await ReadAsync(reader, context, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                await reader.CompleteAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>Work before the first record, e.g. reading a header that precedes the resume position.</summary>
    protected virtual ValueTask PrepareAsync(FileStream stream, SourceContext context, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <summary>
    /// Where the record at the start of <paramref name="buffer"/> ends, or null when the buffer holds
    /// no complete one: the span search of <see cref="FindRecordEnd(ReadOnlySpan{byte})"/>, over a
    /// copy when the buffer spans segments (only for a line that crosses a segment boundary).
    /// </summary>
    private SequencePosition? FindRecordEnd(in ReadOnlySequence<byte> buffer)
    {
        var end = FindRecordEnd(buffer.IsSingleSegment ? buffer.FirstSpan : Copy(buffer));
        return end < 0 ? null : buffer.GetPosition(end);
    }

    /// <summary>Turns one line (no line ending) into a record or a dead letter in <paramref name="batch"/>.</summary>
    protected abstract void OnLine(ReadOnlySpan<byte> line, long offset, long lineNumber, RecordBatch batch, SourceContext context);

    /// <summary>Called for the first line of the file when the source reads it (a header), instead of <see cref="OnLine"/>; false means it is a record.</summary>
    protected virtual bool OnFirstLine(ReadOnlySpan<byte> line, SourceContext context) => false;

    private async Task ReadAsync(PipeReader reader, SourceContext context, CancellationToken cancellationToken)
    {
        var batch = context.Pool.Rent();
        var batchStarted = context.Time.GetTimestamp();
        var skipping = false;
        while (true)
        {
            if (context.Drain.IsCancellationRequested)
            {
                batch.Drained = true;
                break;
            }
            var result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            while (true)
            {
                if (!skipping)
                {
                    var fast = FastLines(buffer.FirstSpan, batch, context);
                    if (fast > 0)
                    {
                        buffer = buffer.Slice(fast);
                    }
                    if (batch.Count + batch.DeadLetters.Count >= context.Batch.MaxRecords)
                    {
                        batch = await SendAsync(batch, context, batchStarted, cancellationToken).ConfigureAwait(false);
                        batchStarted = context.Time.GetTimestamp();
                        continue;
                    }
                }
                var end = FindRecordEnd(buffer);
                if (skipping)
                {
                    if (end is null)
                    {
                        Consume(ref buffer, buffer.Length, batch);
                        break;
                    }
                    Consume(ref buffer, buffer.Slice(0, end.Value).Length + 1, batch);
                    skipping = false;
                    continue;
                }
                ReadOnlySequence<byte> line;
                long consumed;
                if (end is { } position)
                {
                    line = buffer.Slice(0, position);
                    consumed = line.Length + 1;
                }
                else if (buffer.Length > context.MaxLineBytes)
                {
                    TooLong(buffer, batch, context);
                    Consume(ref buffer, buffer.Length, batch);
                    skipping = true;
                    break;
                }
                else if (result.IsCompleted && !buffer.IsEmpty)
                {
                    line = buffer;
                    consumed = buffer.Length;
                }
                else
                {
                    break;
                }
                if (line.Length > context.MaxLineBytes)
                {
                    TooLong(line, batch, context);
                }
                else
                {
                    Line(line, batch, context);
                }
                Consume(ref buffer, consumed, batch);
                if (batch.Count + batch.DeadLetters.Count >= context.Batch.MaxRecords)
                {
                    batch = await SendAsync(batch, context, batchStarted, cancellationToken).ConfigureAwait(false);
                    batchStarted = context.Time.GetTimestamp();
                }
            }
            reader.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted)
            {
                batch.EndOfStream = true;
                break;
            }
            if (batch.RecordsIn > 0 && context.Time.GetElapsedTime(batchStarted).TotalMilliseconds >= context.Batch.MaxWaitMs)
            {
                batch = await SendAsync(batch, context, batchStarted, cancellationToken).ConfigureAwait(false);
                batchStarted = context.Time.GetTimestamp();
            }
        }
        Seal(batch, context, batchStarted);
        await context.Output.WriteAsync(batch, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The fast path: whole lines inside one contiguous span, handled without slicing sequences,
    /// until the span holds no complete line or the batch is full. Returns the bytes consumed.
    /// </summary>
    private long FastLines(ReadOnlySpan<byte> span, RecordBatch batch, SourceContext context)
    {
        long consumed = 0;
        while (batch.Count + batch.DeadLetters.Count < context.Batch.MaxRecords)
        {
            var end = FindRecordEnd(span);
            if (end < 0 || end > context.MaxLineBytes)
            {
                break;
            }
            Line(span[..end], batch, context);
            _position += end + 1;
            batch.BytesIn += end + 1;
            consumed += end + 1;
            span = span[(end + 1)..];
        }
        return consumed;
    }

    /// <summary>The index of the line break that ends the record at the start of <paramref name="span"/>, or -1.</summary>
    protected virtual int FindRecordEnd(ReadOnlySpan<byte> span) => span.IndexOf((byte)'\n');

    private void Line(ReadOnlySequence<byte> sequence, RecordBatch batch, SourceContext context) =>
        Line(sequence.IsSingleSegment ? sequence.FirstSpan : Copy(sequence), batch, context);

    private void Line(ReadOnlySpan<byte> span, RecordBatch batch, SourceContext context)
    {
        _line++;
        if (span.Length > 0 && span[^1] == (byte)'\r')
        {
            span = span[..^1];
        }
        if (_line == 1 && OnFirstLine(span, context))
        {
            return;
        }
        if (span.IsEmpty || span.IndexOfAnyExcept(" \t"u8) < 0)
        {
            return;
        }
        batch.RecordsIn++;
        OnLine(span, _position, _line, batch, context);
        // A quoted CSV cell may hold line breaks: the next record's line number counts them.
        _line += span.Count((byte)'\n');
    }

    private void TooLong(ReadOnlySequence<byte> line, RecordBatch batch, SourceContext context)
    {
        _line++;
        batch.RecordsIn++;
        var preview = line.Slice(0, Math.Min(line.Length, SourceLimits.PreviewBytes));
        var start = batch.Append(Copy(preview));
        batch.DeadLetters.Add(new DeadLetter("source", null, DeadLetterCodes.LineTooLong,
            $"line is longer than {context.MaxLineBytes} bytes; only its first {preview.Length} bytes are kept", _position, _line)
        {
            RawStart = start,
            RawLength = (int)preview.Length,
            Truncated = true,
        });
    }

    private void Consume(ref ReadOnlySequence<byte> buffer, long count, RecordBatch batch)
    {
        buffer = buffer.Slice(count);
        _position += count;
        batch.BytesIn += count;
    }

    private ReadOnlySpan<byte> Copy(ReadOnlySequence<byte> sequence)
    {
        if (sequence.Length > _scratch.Length)
        {
            _scratch = new byte[Math.Max((int)sequence.Length, _scratch.Length * 2)];
        }
        sequence.CopyTo(_scratch);
        return _scratch.AsSpan(0, (int)sequence.Length);
    }

    private async ValueTask<RecordBatch> SendAsync(RecordBatch batch, SourceContext context, long started, CancellationToken cancellationToken)
    {
        Seal(batch, context, started);
        await context.Output.WriteAsync(batch, cancellationToken).ConfigureAwait(false);
        return context.Pool.Rent();
    }

    private void Seal(RecordBatch batch, SourceContext context, long started)
    {
        context.Metrics.Batch(0, started);
        batch.EndPosition = _position;
        batch.EndLine = _line;
        batch.Watermark = context.EventTime?.Watermark;
        context.Metrics.In(batch.RecordsIn);
        context.Metrics.Out(batch.Count);
        foreach (var dead in batch.DeadLetters)
        {
            context.Metrics.Drop(dead.Code);
        }
    }

    private static async ValueTask<long> SkipByteOrderMarkAsync(FileStream stream, CancellationToken cancellationToken)
    {
        var head = new byte[3];
        var read = await stream.ReadAtLeastAsync(head, 3, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        return read == 3 && head.AsSpan().SequenceEqual(Encoding.UTF8.Preamble) ? 3 : 0;
    }
}

/// <summary>Stable codes of dead-letter records the engine writes itself (contract codes are in <see cref="Contracts.ViolationCodes"/>).</summary>
internal static class DeadLetterCodes
{
    public const string LineTooLong = "line_too_long";
    public const string InvalidUtf8 = "invalid_utf8";
    public const string MalformedJson = "malformed_json";
    public const string NotAnObject = "not_an_object";
    public const string MalformedCsv = "malformed_csv";
    public const string ColumnCount = "column_count";
    public const string LateEvent = "late_event";
    public const string ContractViolation = "contract_violation";
}
