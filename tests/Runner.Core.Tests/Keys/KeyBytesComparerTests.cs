using Runner.Core.Keys;
using Xunit;

namespace Runner.Core.Tests.Keys;

/// <summary>Keys as set members: two arrays with the same bytes are the same key, whatever array holds them.</summary>
public sealed class KeyBytesComparerTests
{
    [Fact]
    public void Arrays_with_the_same_bytes_are_one_key_and_others_are_not()
    {
        var set = new HashSet<byte[]>(KeyBytesComparer.Instance) { new byte[] { 1, 2, 3 } };

        Assert.False(set.Add([1, 2, 3]));
        Assert.True(set.Add([1, 2, 4]));
        Assert.True(set.Add([1, 2]));
        Assert.True(set.Add([]));
        Assert.True(set.Remove([1, 2, 3]));
        Assert.DoesNotContain([1, 2, 3], set, KeyBytesComparer.Instance);
        Assert.Equal(3, set.Count);
    }

    [Fact]
    public void Null_equals_only_null()
    {
        Assert.True(KeyBytesComparer.Instance.Equals(null, null));
        Assert.False(KeyBytesComparer.Instance.Equals(null, []));
        Assert.False(KeyBytesComparer.Instance.Equals([0], null));
    }
}
