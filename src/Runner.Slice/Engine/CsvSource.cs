using System.Text.Unicode;

namespace Runner.Slice.Engine;

/// <summary>
/// CSV (RFC 4180) with a header line: quoted cells may hold commas, doubled quotes and line breaks.
/// A record with more or fewer cells than the header, a stray quote, or bytes that are not UTF-8
/// is dead-lettered with the reason. Cells are typed when read (see <see cref="CsvText"/>).
/// </summary>
internal sealed class CsvSource(string path, long startPosition, long startLine) : FileSource(path, startPosition, startLine)
{
    private readonly long _startPosition = startPosition;
    private int[] _columns = [];
    private bool _hasHeader;

    protected override async ValueTask PrepareAsync(FileStream stream, SourceContext context, CancellationToken cancellationToken)
    {
        if (_startPosition == 0)
        {
            return;
        }
        // Resuming: the header precedes the resume position; read it from the top.
        var head = new byte[Math.Min(context.MaxLineBytes + 5, stream.Length)];
        var read = await RandomAccess.ReadAsync(stream.SafeFileHandle, head, 0, cancellationToken).ConfigureAwait(false);
        var span = head.AsSpan(0, read);
        if (span.StartsWith(System.Text.Encoding.UTF8.Preamble))
        {
            span = span[3..];
        }
        var end = FindRecordEnd(span);
        var line = end < 0 ? span : span[..end];
        ReadHeader(line.Length > 0 && line[^1] == (byte)'\r' ? line[..^1] : line, context.Fields);
    }

    protected override bool OnFirstLine(ReadOnlySpan<byte> line, SourceContext context)
    {
        ReadHeader(line, context.Fields);
        return true;
    }

    /// <summary>Quote-aware: a line break inside a quoted cell does not end the record.</summary>
    protected override int FindRecordEnd(ReadOnlySpan<byte> span)
    {
        var quoted = false;
        var i = 0;
        while (i < span.Length)
        {
            var next = quoted ? span[i..].IndexOf((byte)'"') : span[i..].IndexOfAny((byte)'"', (byte)'\n');
            if (next < 0)
            {
                return -1;
            }
            i += next;
            if (span[i] == (byte)'\n')
            {
                return i;
            }
            quoted = !quoted;
            i++;
        }
        return -1;
    }

    protected override void OnLine(ReadOnlySpan<byte> line, long offset, long lineNumber, RecordBatch batch, SourceContext context)
    {
        if (!_hasHeader)
        {
            ReadHeader(line, context.Fields);
            return;
        }
        var rawStart = batch.Append(line);
        if (!Utf8.IsValid(line))
        {
            batch.DeadLetters.Add(Dead(DeadLetterCodes.InvalidUtf8, "the line is not valid UTF-8", offset, lineNumber, rawStart, line.Length));
            return;
        }
        var record = batch.Add(context.Fields, offset, lineNumber, rawStart, line.Length, rawIsJson: false);
        var column = 0;
        var rest = line;
        while (true)
        {
            if (!ReadCell(ref rest, batch, out var cellStart, out var cellLength, out var problem))
            {
                batch.RemoveLast();
                batch.DeadLetters.Add(Dead(DeadLetterCodes.MalformedCsv, $"column {column + 1}: {problem}", offset, lineNumber, rawStart, line.Length));
                return;
            }
            if (column < _columns.Length)
            {
                record.AddRaw(_columns[column], cellStart, cellLength, RawKind.CsvCell, escaped: false);
            }
            column++;
            if (rest.IsEmpty)
            {
                break;
            }
            rest = rest[1..];
        }
        if (column != _columns.Length)
        {
            batch.RemoveLast();
            batch.DeadLetters.Add(Dead(DeadLetterCodes.ColumnCount, $"the record has {column} columns; the header has {_columns.Length}", offset, lineNumber, rawStart, line.Length));
            return;
        }
        context.EventTime?.DeadLetterIfLate(record, batch);
    }

    private void ReadHeader(ReadOnlySpan<byte> line, FieldTable fields)
    {
        var names = new List<int>();
        var seen = new HashSet<int>();
        var rest = line;
        var scratch = new RecordBatch();
        while (true)
        {
            if (!ReadCell(ref rest, scratch, out var start, out var length, out var problem))
            {
                throw new InvalidDataException($"{Path}: the header line is not valid CSV: {problem}");
            }
            var name = scratch.Data.AsSpan(start, length);
            if (name.IsEmpty || !Utf8.IsValid(name))
            {
                throw new InvalidDataException($"{Path}: header column {names.Count + 1} is empty or not UTF-8");
            }
            var slot = fields.Intern(name);
            if (!seen.Add(slot))
            {
                throw new InvalidDataException($"{Path}: the header names column '{fields.NameOf(slot)}' twice");
            }
            names.Add(slot);
            if (rest.IsEmpty)
            {
                break;
            }
            rest = rest[1..];
        }
        _columns = [.. names];
        _hasHeader = true;
    }

    /// <summary>Reads one cell into the batch's bytes (quotes removed, doubled quotes halved) and leaves <paramref name="rest"/> at the separator.</summary>
    private static bool ReadCell(ref ReadOnlySpan<byte> rest, RecordBatch batch, out int start, out int length, out string? problem)
    {
        problem = null;
        if (rest.IsEmpty || rest[0] != (byte)'"')
        {
            var end = rest.IndexOf((byte)',');
            var cell = end < 0 ? rest : rest[..end];
            if (cell.Contains((byte)'"'))
            {
                start = length = 0;
                problem = "a quote inside an unquoted cell";
                return false;
            }
            start = batch.Append(cell);
            length = cell.Length;
            rest = end < 0 ? [] : rest[end..];
            return true;
        }
        start = batch.Reserve(rest.Length, out var target);
        var written = 0;
        var i = 1;
        while (true)
        {
            var next = rest[i..].IndexOf((byte)'"');
            if (next < 0)
            {
                batch.Shrink(rest.Length);
                length = 0;
                problem = "a quoted cell is not closed";
                return false;
            }
            rest.Slice(i, next).CopyTo(target[written..]);
            written += next;
            i += next + 1;
            if (i < rest.Length && rest[i] == (byte)'"')
            {
                target[written++] = (byte)'"';
                i++;
                continue;
            }
            break;
        }
        batch.Shrink(rest.Length - written);
        length = written;
        if (i < rest.Length && rest[i] != (byte)',')
        {
            problem = "text after a closing quote";
            return false;
        }
        rest = rest[i..];
        return true;
    }

    private static DeadLetter Dead(string code, string message, long offset, long line, int start, int length) =>
        new("source", null, code, message, offset, line) { RawStart = start, RawLength = length };
}
