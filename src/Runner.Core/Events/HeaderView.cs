using System.Diagnostics.CodeAnalysis;

namespace Runner.Core.Events;

/// <summary>
/// A message's headers seen without copying them: names looked up case-insensitively (as NATS
/// headers are), each with one value. A subclass says how to look one up and how to list them; the
/// rest of the read-only table is made from those two. The table it shows is not changed after it
/// is made, so its count is counted once.
/// </summary>
internal abstract class HeaderView : IReadOnlyDictionary<string, string>
{
    private int _count = -1;

    /// <summary>Whether <paramref name="headers"/> looks names up case-insensitively by itself.</summary>
    public static bool IgnoresCase(IReadOnlyDictionary<string, string> headers) =>
        headers is HeaderView
        || (headers is Dictionary<string, string> table && ReferenceEquals(table.Comparer, StringComparer.OrdinalIgnoreCase));

    public abstract bool TryGetValue(string key, [MaybeNullWhen(false)] out string value);

    public abstract IEnumerator<KeyValuePair<string, string>> GetEnumerator();

    public int Count
    {
        get
        {
            if (_count < 0)
            {
                var count = 0;
                foreach (var _ in this)
                {
                    count++;
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
            foreach (var (name, _) in this)
            {
                yield return name;
            }
        }
    }

    public IEnumerable<string> Values
    {
        get
        {
            foreach (var (_, value) in this)
            {
                yield return value;
            }
        }
    }

    public bool ContainsKey(string key) => TryGetValue(key, out _);

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>
/// Headers that can be read by position, a name without its value: a view that shows only some names
/// (<see cref="VisibleHeaders"/>) makes no value it does not show.
/// </summary>
internal interface IIndexedHeaders
{
    int Length { get; }

    string NameAt(int index);

    string ValueAt(int index);
}
