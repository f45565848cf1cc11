using System.Buffers;
using System.Text;

namespace Runner.Slices.Sandbox;

/// <summary>
/// Reads a slice's stdout or stderr to the end, line by line, with each line cut at a maximum
/// length, so a slice that writes a huge line or floods cannot grow the worker's memory.
/// </summary>
internal static class OutputPump
{
    public static async Task PumpAsync(Stream stream, int maxLineBytes, Func<string, ValueTask> onLine, CancellationToken cancellationToken)
    {
        var buffer = new byte[64 * 1024];
        var line = new ArrayBufferWriter<byte>(1024);
        var cut = false;
        int read;
        while ((read = await stream.ReadAsync(buffer, cancellationToken)) > 0)
        {
            var span = buffer.AsMemory(0, read);
            while (span.Length > 0)
            {
                var newline = span.Span.IndexOf((byte)'\n');
                var part = newline < 0 ? span : span[..newline];
                var room = maxLineBytes - line.WrittenCount;
                if (part.Length > room)
                {
                    line.Write(part.Span[..Math.Max(0, room)]);
                    cut = true;
                }
                else
                {
                    line.Write(part.Span);
                }
                if (newline < 0)
                {
                    break;
                }
                await onLine(Decode(line, cut));
                line.ResetWrittenCount();
                cut = false;
                span = span[(newline + 1)..];
            }
        }
        if (line.WrittenCount > 0)
        {
            await onLine(Decode(line, cut));
        }
    }

    private static string Decode(ArrayBufferWriter<byte> line, bool cut)
    {
        var span = line.WrittenSpan;
        if (span.Length > 0 && span[^1] == (byte)'\r')
        {
            span = span[..^1];
        }
        var text = Encoding.UTF8.GetString(span);
        return cut ? text + " …[cut]" : text;
    }
}

/// <summary>A token bucket of log lines per slice: a slice that floods is cut off from the logs, the worker is not slowed.</summary>
internal sealed class LogBudget(int perSecond, int burst, TimeProvider time)
{
    private readonly Lock _lock = new();
    private double _tokens = burst;
    private long _last = time.GetTimestamp();
    private long _dropped;

    public long Dropped => Interlocked.Read(ref _dropped);

    public bool TryTake()
    {
        lock (_lock)
        {
            var now = time.GetTimestamp();
            _tokens = Math.Min(burst, _tokens + time.GetElapsedTime(_last, now).TotalSeconds * perSecond);
            _last = now;
            if (_tokens >= 1)
            {
                _tokens -= 1;
                return true;
            }
        }
        Interlocked.Increment(ref _dropped);
        return false;
    }
}
