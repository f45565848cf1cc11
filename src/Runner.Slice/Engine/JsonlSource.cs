using System.Text.Json;
using System.Text.Unicode;

namespace Runner.Slice.Engine;

/// <summary>
/// JSON Lines: one object per line. Field names are resolved to slots (the previous line's order
/// is tried first, so a file of same-shaped records does no hashing) and values are kept as raw
/// bytes until read. A line that is not valid UTF-8, not JSON, or not an object is dead-lettered
/// with the reason and the line kept as text.
/// </summary>
internal sealed class JsonlSource(string path, long startPosition, long startLine) : FileSource(path, startPosition, startLine)
{
    private readonly JsonRecordParser _parser = new();

    protected override void OnLine(ReadOnlySpan<byte> line, long offset, long lineNumber, RecordBatch batch, SourceContext context)
    {
        var start = batch.Append(line);
        var data = batch.Data.AsSpan(start, line.Length);
        if (!Utf8.IsValid(data))
        {
            batch.DeadLetters.Add(Dead(DeadLetterCodes.InvalidUtf8, "the line is not valid UTF-8", offset, lineNumber, start, line.Length));
            return;
        }
        var record = batch.Add(context.Fields, offset, lineNumber, start, line.Length, rawIsJson: true);
        string? problem;
        string code = DeadLetterCodes.MalformedJson;
        try
        {
            problem = _parser.Parse(record, data, start, context.Fields, out var notObject);
            if (notObject)
            {
                code = DeadLetterCodes.NotAnObject;
            }
        }
        catch (JsonException e)
        {
            problem = e.Message;
        }
        if (problem is not null)
        {
            batch.RemoveLast();
            batch.DeadLetters.Add(Dead(code, problem, offset, lineNumber, start, line.Length));
            return;
        }
        context.EventTime?.DeadLetterIfLate(record, batch);
    }

    private static DeadLetter Dead(string code, string message, long offset, long line, int start, int length) =>
        new("source", null, code, message, offset, line) { RawStart = start, RawLength = length };
}
