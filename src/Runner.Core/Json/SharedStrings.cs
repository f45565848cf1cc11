using System.Collections.Concurrent;

namespace Runner.Core.Json;

/// <summary>
/// Strings read out of text that repeat from message to message (a stream name, a tenant), kept so
/// that each is one string rather than one per message. At most <c>capacity</c> are kept; past that,
/// each is made as before, so a producer sending ever new values cannot grow the table.
/// </summary>
internal sealed class SharedStrings(int capacity)
{
    private readonly ConcurrentDictionary<string, string> _kept = new(StringComparer.Ordinal);

    /// <summary>How many are kept: counted here, as the table's own count takes every one of its locks.</summary>
    private int _size;

    /// <summary>The string of <paramref name="text"/>: the one kept when there is one.</summary>
    public string Get(ReadOnlySpan<char> text)
    {
        if (_kept.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(text, out var known))
        {
            return known;
        }
        var made = text.ToString();
        if (Volatile.Read(ref _size) >= capacity)
        {
            return made;
        }
        if (_kept.TryAdd(made, made))
        {
            Interlocked.Increment(ref _size);
            return made;
        }
        return _kept.GetValueOrDefault(made, made);
    }
}
