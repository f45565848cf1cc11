using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using System.IO.Pipelines;
using System.Text.Encodings.Web;
using System.Text.Json;
using Runner.Slice.Expressions;

namespace Runner.Slice.Engine;

/// <summary>
/// Bytes on their way to a sink's <see cref="PipeWriter"/> (or any buffer writer): writes go straight into the pipe's
/// memory, and reach the file only on <see cref="FlushAsync"/>, which the sink calls once per batch.
/// Counts every byte written, which is what a checkpoint records of an output.
/// </summary>
internal sealed class OutputBuffer : IBufferWriter<byte>
{
    private const int Chunk = 64 * 1024;
    private static readonly JsonWriterOptions s_json = new() { SkipValidation = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private readonly IBufferWriter<byte> _writer;
    private readonly Utf8JsonWriter _json;
    private Memory<byte> _memory;
    private int _used;
    private long _flushed;

    public OutputBuffer(IBufferWriter<byte> writer, long alreadyWritten = 0)
    {
        _writer = writer;
        _flushed = alreadyWritten;
        _json = new Utf8JsonWriter(this, s_json);
    }

    /// <summary>Every byte written through this buffer, plus what the output held when it was opened.</summary>
    public long BytesWritten => _flushed + _used;

    public void Write(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length > _memory.Length - _used)
        {
            Grow(bytes.Length);
        }
        bytes.CopyTo(_memory.Span[_used..]);
        _used += bytes.Length;
    }

    public void WriteByte(byte value)
    {
        if (_used == _memory.Length)
        {
            Grow(1);
        }
        _memory.Span[_used++] = value;
    }

    public void WriteInteger(long value)
    {
        if (_memory.Length - _used < 20)
        {
            Grow(20);
        }
        Utf8Formatter.TryFormat(value, _memory.Span[_used..], out var written);
        _used += written;
    }

    public void WriteAscii(string text)
    {
        if (_memory.Length - _used < text.Length)
        {
            Grow(text.Length);
        }
        var span = _memory.Span[_used..];
        for (var i = 0; i < text.Length; i++)
        {
            span[i] = (byte)text[i];
        }
        _used += text.Length;
    }

    /// <summary>A JSON string literal, escaped.</summary>
    public void WriteJsonString(string text)
    {
        _json.WriteStringValue(text);
        _json.Flush();
        _json.Reset();
    }

    /// <summary>A value as JSON: null, a boolean, a number, a string, or a timestamp as an RFC 3339 string.</summary>
    public void WriteJsonValue(Value value)
    {
        switch (value.Kind)
        {
            case ValueKind.Bool:
                Write(value.AsBool ? "true"u8 : "false"u8);
                break;
            case ValueKind.Integer:
                WriteInteger(value.AsInteger);
                break;
            case ValueKind.Double:
                if (_memory.Length - _used < 32)
                {
                    Grow(32);
                }
                value.AsDouble.TryFormat(_memory.Span[_used..], out var written, "R", CultureInfo.InvariantCulture);
                _used += written;
                break;
            case ValueKind.String:
                WriteJsonString(value.AsString);
                break;
            case ValueKind.Timestamp:
                WriteJsonString(value.AsTimestamp.ToString("O", CultureInfo.InvariantCulture));
                break;
            default:
                Write("null"u8);
                break;
        }
    }

    /// <summary>Hands what was written to the underlying writer.</summary>
    public void Complete()
    {
        _writer.Advance(_used);
        _flushed += _used;
        _used = 0;
        _memory = Memory<byte>.Empty;
    }

    /// <summary>Hands what was written to the pipe and flushes it to the output.</summary>
    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        Complete();
        if (_writer is PipeWriter pipe)
        {
            await pipe.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public void Advance(int count) => _used += count;

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        if (_memory.Length - _used < Math.Max(sizeHint, 1))
        {
            Grow(Math.Max(sizeHint, 1));
        }
        return _memory[_used..];
    }

    public Span<byte> GetSpan(int sizeHint = 0) => GetMemory(sizeHint).Span;

    private void Grow(int needed)
    {
        if (_used > 0)
        {
            _writer.Advance(_used);
            _flushed += _used;
            _used = 0;
        }
        _memory = _writer.GetMemory(Math.Max(needed, Chunk));
    }
}
