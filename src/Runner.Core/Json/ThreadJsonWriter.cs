using System.Buffers;
using System.Text;
using System.Text.Json;

namespace Runner.Core.Json;

/// <summary>
/// A JSON writer and buffer kept per thread, for the documents built once per message on the hot paths
/// (the router's normalized event, the script's event argument, a history step, an effect's result).
/// A fresh <see cref="Utf8JsonWriter"/> asks its buffer for 4 KiB at the first write, whatever the document's
/// size; here the buffer is reused and only the result is allocated. Writing never awaits, so a thread
/// cannot be inside two writes at once; a nested write (a writer callback that writes another document)
/// is refused rather than allowed to clobber the outer one.
/// </summary>
internal static class ThreadJsonWriter
{
    /// <summary>A buffer grown past this by one large document is dropped after it, not kept.</summary>
    private const int KeptBufferBytes = 64 * 1024;

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    [ThreadStatic]
    private static bool t_busy;

    /// <summary>Writes one document with <paramref name="write"/> and returns its UTF-8 bytes.</summary>
    public static byte[] ToUtf8<TState>(TState state, Action<Utf8JsonWriter, TState> write) =>
        Write(state, write, static span => span.ToArray());

    /// <summary>Writes one document with <paramref name="write"/> and returns it as a string.</summary>
    public static string ToText<TState>(TState state, Action<Utf8JsonWriter, TState> write) =>
        Write(state, write, static span => Encoding.UTF8.GetString(span));

    /// <summary>
    /// Writes one document with <paramref name="write"/> into <paramref name="output"/> (a batch's pooled room, say)
    /// through this thread's writer: no buffer or array of its own.
    /// </summary>
    public static void WriteTo<TState>(IBufferWriter<byte> output, TState state, Action<Utf8JsonWriter, TState> write)
    {
        ThrowIfBusy();
        t_busy = true;
        var writer = t_writer ??= new Utf8JsonWriter(output);
        writer.Reset(output);
        try
        {
            write(writer, state);
            writer.Flush();
        }
        finally
        {
            // Not left pointing at the caller's output.
            writer.Reset(t_buffer ??= new ArrayBufferWriter<byte>(1024));
            t_busy = false;
        }
    }

    private delegate T FromSpan<out T>(ReadOnlySpan<byte> written);

    /// <summary>One document into this thread's buffer, then what <paramref name="result"/> makes of it.</summary>
    private static TResult Write<TState, TResult>(TState state, Action<Utf8JsonWriter, TState> write, FromSpan<TResult> result)
    {
        // Refused before the buffer is touched: an outer document on this thread may be in it.
        ThrowIfBusy();
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(1024);
        buffer.ResetWrittenCount();
        WriteTo(buffer, state, write);
        try
        {
            return result(buffer.WrittenSpan);
        }
        finally
        {
            if (buffer.Capacity > KeptBufferBytes)
            {
                t_buffer = null;
                t_writer = null;
            }
        }
    }

    /// <summary>A nested write (a writer callback that writes another document) is refused rather than allowed to clobber the outer one.</summary>
    private static void ThrowIfBusy()
    {
        if (t_busy)
        {
            throw new InvalidOperationException("a JSON document is already being written on this thread");
        }
    }
}
