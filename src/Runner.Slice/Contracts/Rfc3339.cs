namespace Runner.Slice.Contracts;

/// <summary>
/// A strict, allocation-free check of an RFC 3339 date-time in UTF-8:
/// <c>YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)</c>, with real calendar dates. Anything it refuses
/// still gets the full (slower) check, so it only has to be right about what it accepts.
/// </summary>
internal static class Rfc3339
{
    public static bool IsValid(ReadOnlySpan<byte> s)
    {
        if (s.Length < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':')
        {
            return false;
        }
        if (!Digits(s[..4], out var year) || !Digits(s.Slice(5, 2), out var month) || !Digits(s.Slice(8, 2), out var day)
            || !Digits(s.Slice(11, 2), out var hour) || !Digits(s.Slice(14, 2), out var minute) || !Digits(s.Slice(17, 2), out var second))
        {
            return false;
        }
        if (year < 1 || month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(year, month) || hour > 23 || minute > 59 || second > 59)
        {
            return false;
        }
        var rest = s[19..];
        if (rest[0] == '.')
        {
            var digits = 1;
            while (digits < rest.Length && rest[digits] >= '0' && rest[digits] <= '9')
            {
                digits++;
            }
            if (digits == 1 || digits > 8)
            {
                return false;
            }
            rest = rest[digits..];
        }
        if (rest.Length == 1)
        {
            return rest[0] is (byte)'Z' or (byte)'z';
        }
        return rest.Length == 6 && rest[0] is (byte)'+' or (byte)'-' && rest[3] == ':'
            && Digits(rest.Slice(1, 2), out var offsetHours) && Digits(rest.Slice(4, 2), out var offsetMinutes)
            && offsetHours <= 14 && offsetMinutes <= 59;
    }

    private static bool Digits(ReadOnlySpan<byte> s, out int value)
    {
        value = 0;
        foreach (var b in s)
        {
            if (b < '0' || b > '9')
            {
                return false;
            }
            value = value * 10 + (b - '0');
        }
        return true;
    }
}
