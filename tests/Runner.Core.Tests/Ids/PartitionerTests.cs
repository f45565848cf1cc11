using System.Text;
using Runner.Core.Ids;

namespace Runner.Core.Tests.Ids;

public sealed class PartitionerTests
{
    private static InstanceId Instance(string tenant, string saga, string key) =>
        new(new TenantId(tenant), new SagaName(saga), new CorrelationKey(key));

    // Pinned once from an independent FNV-1a 64 implementation over tenant \0 saga \0 key (UTF-8).
    // If one of these changes, every deployed instance moves to another partition: that is a breaking change.
    [Theory]
    [InlineData("acme", "order-flow", "order-42", 32, 31)]
    [InlineData("acme", "order-flow", "order-43", 32, 12)]
    [InlineData("globex", "billing", "inv-2024-0001", 32, 3)]
    [InlineData("acme", "order-flow", "order-42", 7, 1)]
    [InlineData("globex", "billing", "inv-2024-0001", 7, 0)]
    [InlineData("acme", "ünïcödé", "clé-€", 32, 16)]
    [InlineData("acme", "order-flow", "order-42", int.MaxValue, 1998010146)]
    public void Partition_of_known_instances_is_pinned(string tenant, string saga, string key, int partitions, int expected)
    {
        Assert.Equal(expected, Partitioner.PartitionOf(Instance(tenant, saga, key), partitions).Value);
    }

    [Fact]
    public void Partition_is_stable_across_calls()
    {
        var instance = Instance("acme", "order-flow", "order-42");
        var first = Partitioner.PartitionOf(instance, 32);

        for (var i = 0; i < 100; i++)
        {
            Assert.Equal(first, Partitioner.PartitionOf(Instance("acme", "order-flow", "order-" + "42"), 32));
        }
    }

    [Theory]
    [InlineData("", 0xcbf29ce484222325UL)]
    [InlineData("a", 0xaf63dc4c8601ec8cUL)]
    [InlineData("foobar", 0x85944171f73967e8UL)]
    public void Fnv1a_matches_the_published_test_vectors(string text, ulong expected)
    {
        Assert.Equal(expected, Partitioner.Fnv1a(Encoding.UTF8.GetBytes(text)));
    }

    [Theory]
    [InlineData("acme", "orders", "k-1")]
    [InlineData("acme", "orders", "a key long enough to need more than the stack buffer of two hundred and fifty six bytes once it is multiplied by three for the worst case utf-8 expansion ... ... ... ... ... ... ... ... ... ... ... ... ... ... ... ... ... ... ... ... ... ... ... ... ... ... ... ... .")]
    [InlineData("acme", "orders", "ключ-€-🙂")]
    public void Partition_is_the_fnv1a_of_tenant_saga_and_key_separated_by_zero_bytes(string tenant, string saga, string key)
    {
        var bytes = Encoding.UTF8.GetBytes(tenant).Append((byte)0)
            .Concat(Encoding.UTF8.GetBytes(saga)).Append((byte)0)
            .Concat(Encoding.UTF8.GetBytes(key)).ToArray();
        var expected = (int)(Partitioner.Fnv1a(bytes) % 1_000_003UL);

        Assert.Equal(expected, Partitioner.PartitionOf(Instance(tenant, saga, key), 1_000_003).Value);
    }

    [Fact]
    public void Component_boundaries_change_the_partition()
    {
        var left = Partitioner.PartitionOf(Instance("t", "ab", "c"), int.MaxValue);
        var right = Partitioner.PartitionOf(Instance("t", "a", "bc"), int.MaxValue);

        Assert.NotEqual(left, right);
    }

    [Fact]
    public void Keys_spread_over_all_partitions()
    {
        const int partitions = 32;
        const int keys = 32_000;
        var counts = new int[partitions];
        for (var i = 0; i < keys; i++)
        {
            var p = Partitioner.PartitionOf(Instance("acme", "order-flow", "order-" + i.ToString(System.Globalization.CultureInfo.InvariantCulture)), partitions).Value;
            Assert.InRange(p, 0, partitions - 1);
            counts[p]++;
        }

        // A fair hash puts ~1000 in each; allow a wide band, but no empty or hot partition.
        Assert.All(counts, c => Assert.InRange(c, 800, 1200));
    }

    [Fact]
    public void Single_partition_takes_everything()
    {
        Assert.Equal(0, Partitioner.PartitionOf(Instance("acme", "s", "k"), 1).Value);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public void Partition_count_below_one_is_rejected(int partitions)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Partitioner.PartitionOf(Instance("acme", "s", "k"), partitions));
    }
}
