using System.Diagnostics.CodeAnalysis;

namespace Runner.Core.Events;

/// <summary>
/// An event's headers as scripts and correlation expressions see them: the message's own, without
/// Runner's and the server's (<see cref="EventHeaders.IsInternal"/>), looked up case-insensitively.
/// A view over the message's header table rather than a copy of it: that table is not changed
/// after the event is decoded.
/// </summary>
internal sealed class VisibleHeaders : IReadOnlyDictionary<string, string>
{
    private readonly IReadOnlyDictionary<string, string> _all;
    private int _count = -1;

    private VisibleHeaders(IReadOnlyDictionary<string, string> all) => _all = all;

    /// <summary>Whether <paramref name="headers"/> looks names up case-insensitively by itself.</summary>
    public static bool IgnoresCase(IReadOnlyDictionary<string, string> headers) =>
        headers is IIgnoreCaseHeaders
        || (headers is Dictionary<string, string> table && ReferenceEquals(table.Comparer, StringComparer.OrdinalIgnoreCase));

    /// <summary>A view over a case-insensitive table; any other is copied (what it holds is looked up case-insensitively all the same).</summary>
    public static IReadOnlyDictionary<string, string> Of(IReadOnlyDictionary<string, string> headers)
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

    public int Count
    {
        get
        {
            if (_count < 0)
            {
                var count = 0;
                foreach (var (name, _) in _all)
                {
                    count += EventHeaders.IsInternal(name) ? 0 : 1;
                }
                _count = count;
            }
            return _count;
        }
    }

    public string this[string key] => TryGetValue(key, out var value) ? value : throw new KeyNotFoundException($"no header '{key}'");

    public IEnumerable<string> Keys
    {
        get
        {
            foreach (var (name, _) in _all)
            {
                if (!EventHeaders.IsInternal(name))
                {
                    yield return name;
                }
            }
        }
    }

    public IEnumerable<string> Values
    {
        get
        {
            foreach (var (name, value) in _all)
            {
                if (!EventHeaders.IsInternal(name))
                {
                    yield return value;
                }
            }
        }
    }

    public bool ContainsKey(string key) => TryGetValue(key, out _);

    public bool TryGetValue(string key, [MaybeNullWhen(false)] out string value)
    {
        if (EventHeaders.IsInternal(key))
        {
            value = null;
            return false;
        }
        return _all.TryGetValue(key, out value);
    }

    public IEnumerator<KeyValuePair<string, string>> GetEnumerator()
    {
        foreach (var pair in _all)
        {
            if (!EventHeaders.IsInternal(pair.Key))
            {
                yield return pair;
            }
        }
    }

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>A message's header table that looks names up case-insensitively (as NATS headers do).</summary>
internal interface IIgnoreCaseHeaders : IReadOnlyDictionary<string, string>;
