using System.Diagnostics.CodeAnalysis;

namespace Runner.Core.Events;

/// <summary>
/// An event's headers as scripts and correlation expressions see them: the message's own, without
/// Runner's and the server's (<see cref="EventHeaders.IsInternal"/>), looked up case-insensitively.
/// A view over the message's header table rather than a copy of it: that table is not changed
/// after the event is decoded.
/// </summary>
internal sealed class VisibleHeaders : HeaderView
{
    private readonly IReadOnlyDictionary<string, string> _all;

    private VisibleHeaders(IReadOnlyDictionary<string, string> all) => _all = all;

    /// <summary>A view over a case-insensitive table; any other is copied (what it holds is looked up case-insensitively all the same).</summary>
    public static VisibleHeaders Of(IReadOnlyDictionary<string, string> headers)
    {
        if (IgnoresCase(headers))
        {
            return new VisibleHeaders(headers);
        }
        var copy = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, value) in headers)
        {
            copy[name] = value;
        }
        return new VisibleHeaders(copy);
    }

    public override bool TryGetValue(string key, [MaybeNullWhen(false)] out string value)
    {
        if (EventHeaders.IsInternal(key))
        {
            value = null;
            return false;
        }
        return _all.TryGetValue(key, out value);
    }

    /// <summary>At most how many headers <see cref="CopyTo"/> writes: all the message holds, Runner's and the server's included.</summary>
    public int Capacity => _all is IIndexedHeaders indexed ? indexed.Length : _all.Count;

    /// <summary>
    /// Writes the visible headers, in the message's order, into <paramref name="into"/> (room for <see cref="Capacity"/>)
    /// and returns how many: what enumerating the view gives, without an enumerator object when the message's table is
    /// read by index (every history step writes an event's headers).
    /// </summary>
    public int CopyTo(Span<KeyValuePair<string, string>> into)
    {
        var n = 0;
        if (_all is IIndexedHeaders indexed)
        {
            for (var i = 0; i < indexed.Length; i++)
            {
                if (!EventHeaders.IsInternal(indexed.NameAt(i)))
                {
                    into[n++] = new KeyValuePair<string, string>(indexed.NameAt(i), indexed.ValueAt(i));
                }
            }
            return n;
        }
        foreach (var pair in _all)
        {
            if (!EventHeaders.IsInternal(pair.Key))
            {
                into[n++] = pair;
            }
        }
        return n;
    }

    public override IEnumerator<KeyValuePair<string, string>> GetEnumerator()
    {
        if (_all is IIndexedHeaders indexed)
        {
            for (var i = 0; i < indexed.Length; i++)
            {
                if (!EventHeaders.IsInternal(indexed.NameAt(i)))
                {
                    yield return new KeyValuePair<string, string>(indexed.NameAt(i), indexed.ValueAt(i));
                }
            }
            yield break;
        }
        foreach (var pair in _all)
        {
            if (!EventHeaders.IsInternal(pair.Key))
            {
                yield return pair;
            }
        }
    }
}
