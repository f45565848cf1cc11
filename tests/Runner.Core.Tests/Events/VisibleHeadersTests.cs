using System.Diagnostics.CodeAnalysis;
using Runner.Core.Events;
using Xunit;

namespace Runner.Core.Tests.Events;

/// <summary>What <see cref="VisibleHeaders.CopyTo"/> writes is what enumerating the view gives: the message's own headers, in its order, none of Runner's or the server's.</summary>
public sealed class VisibleHeadersTests
{
    private static readonly KeyValuePair<string, string>[] s_message =
    [
        new("X-Zeta", "z"),
        new("runner-saga", "counter"),
        new("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        new("Nats-Msg-Id", "AGGREGATE_EVENTS:7:counter"),
        new("x-alpha", "a"),
        new("Runner-Key", "k1"),
    ];

    private static readonly string[] s_visible = ["X-Zeta", "traceparent", "x-alpha"];

    [Fact]
    public void A_table_read_by_index_is_copied_as_the_view_enumerates_it()
    {
        var view = VisibleHeaders.Of(new IndexedTable(s_message));

        AssertCopyMatchesEnumeration(view);
    }

    [Fact]
    public void A_table_the_view_copied_is_copied_as_the_view_enumerates_it()
    {
        // Case-sensitive: the view keeps a case-insensitive copy of it, which it cannot read by index.
        var view = VisibleHeaders.Of(s_message.ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal));

        AssertCopyMatchesEnumeration(view);
    }

    private static void AssertCopyMatchesEnumeration(VisibleHeaders view)
    {
        Assert.Equal(s_message.Length, view.Capacity);
        var copied = new KeyValuePair<string, string>[view.Capacity];
        var n = view.CopyTo(copied);

        Assert.Equal(view.ToList(), copied[..n]);
        Assert.Equal(s_visible, copied[..n].Select(p => p.Key));
        Assert.Equal("a", copied[..n].Single(p => p.Key == "x-alpha").Value);
    }

    /// <summary>A header table read by index, as a received message's is.</summary>
    private sealed class IndexedTable(KeyValuePair<string, string>[] pairs) : HeaderView, IIndexedHeaders
    {
        public int Length => pairs.Length;

        public string NameAt(int index) => pairs[index].Key;

        public string ValueAt(int index) => pairs[index].Value;

        public override bool TryGetValue(string key, [MaybeNullWhen(false)] out string value)
        {
            foreach (var pair in pairs)
            {
                if (string.Equals(pair.Key, key, StringComparison.OrdinalIgnoreCase))
                {
                    value = pair.Value;
                    return true;
                }
            }
            value = null;
            return false;
        }

        public override IEnumerator<KeyValuePair<string, string>> GetEnumerator() => ((IEnumerable<KeyValuePair<string, string>>)pairs).GetEnumerator();
    }
}
