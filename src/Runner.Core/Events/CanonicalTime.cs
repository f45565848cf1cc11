namespace Runner.Core.Events;

/// <summary>
/// The one shape Runner writes every time in, <c>yyyy-MM-ddTHH:mm:ss.fffZ</c> (UTC, milliseconds always
/// three digits), written and read digit by digit: a custom format string is parsed again on every
/// call, and times are written and read for every event, command and result.
/// </summary>
internal static class CanonicalTime
{
    public const int Length = 24;

    public static void Write(DateTimeOffset time, Span<byte> text)
    {
        var utc = time.UtcDateTime;
        var (year, month, day) = utc;
        WriteDigits(text[..4], year);
        text[4] = (byte)'-';
        WriteDigits(text.Slice(5, 2), month);
        text[7] = (byte)'-';
        WriteDigits(text.Slice(8, 2), day);
        text[10] = (byte)'T';
        WriteDigits(text.Slice(11, 2), utc.Hour);
        text[13] = (byte)':';
        WriteDigits(text.Slice(14, 2), utc.Minute);
        text[16] = (byte)':';
        WriteDigits(text.Slice(17, 2), utc.Second);
        text[19] = (byte)'.';
        WriteDigits(text.Slice(20, 3), utc.Millisecond);
        text[23] = (byte)'Z';
    }

    /// <summary>Reads a time in exactly this shape; false for any other text or a value out of range (e.g. a 30 February).</summary>
    public static bool TryParse(string text, out DateTimeOffset time) => TryParse(text.AsSpan(), out time);

    /// <summary>Reads UTF-8 <paramref name="utf8"/> as <see cref="TryParse(string, out DateTimeOffset)"/> reads text (the shape is ASCII).</summary>
    public static bool TryParse(ReadOnlySpan<byte> utf8, out DateTimeOffset time)
    {
        time = default;
        Span<char> text = stackalloc char[Length];
        return utf8.Length == Length && System.Text.Ascii.ToUtf16(utf8, text, out _) == System.Buffers.OperationStatus.Done && TryParse(text, out time);
    }

    /// <inheritdoc cref="TryParse(string, out DateTimeOffset)"/>
    public static bool TryParse(ReadOnlySpan<char> text, out DateTimeOffset time)
    {
        time = default;
        if (text.Length != Length || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' || text[16] != ':' || text[19] != '.' || text[23] != 'Z')
        {
            return false;
        }
        if (!ReadDigits(text, 0, 4, out var year) || !ReadDigits(text, 5, 2, out var month) || !ReadDigits(text, 8, 2, out var day)
            || !ReadDigits(text, 11, 2, out var hour) || !ReadDigits(text, 14, 2, out var minute) || !ReadDigits(text, 17, 2, out var second)
            || !ReadDigits(text, 20, 3, out var millisecond))
        {
            return false;
        }
        if (year < 1 || month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(year, month) || hour > 23 || minute > 59 || second > 59)
        {
            return false;
        }
        time = new DateTimeOffset(year, month, day, hour, minute, second, millisecond, TimeSpan.Zero);
        return true;
    }

    private static void WriteDigits(Span<byte> into, int value)
    {
        for (var i = into.Length - 1; i >= 0; i--)
        {
            into[i] = (byte)('0' + (value % 10));
            value /= 10;
        }
    }

    private static bool ReadDigits(ReadOnlySpan<char> text, int start, int count, out int value)
    {
        value = 0;
        for (var i = start; i < start + count; i++)
        {
            var digit = text[i] - '0';
            if ((uint)digit > 9)
            {
                return false;
            }
            value = (value * 10) + digit;
        }
        return true;
    }
}
