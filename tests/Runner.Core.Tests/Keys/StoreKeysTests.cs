using System.Text;
using Runner.Core.Ids;
using Runner.Core.Keys;

namespace Runner.Core.Tests.Keys;

public sealed class StoreKeysTests
{
    private static readonly PartitionId s_p3 = new(3);

    private static InstanceId Instance(string key, string saga = "orders", string tenant = "acme") =>
        new(new TenantId(tenant), new SagaName(saga), new CorrelationKey(key));

    /// <summary>LMDB's default key order: unsigned bytes, shorter prefix first.</summary>
    private static List<byte[]> SortLikeLmdb(IEnumerable<byte[]> keys)
    {
        var list = keys.ToList();
        list.Sort((a, b) => a.AsSpan().SequenceCompareTo(b));
        return list;
    }

    [Theory]
    [InlineData("acme", "orders", "order-42", "evt-1")]
    [InlineData("ünïcödé", "saga-€", "キー", "evt-𝄞")]
    [InlineData("t", "s", "k", "")]
    public void A_key_is_the_utf8_of_its_parts_joined_by_the_separator(string tenant, string saga, string key, string eventId)
    {
        var instance = Instance(key, saga, tenant);
        string Joined(params string[] parts) => string.Join(StoreKeys.Separator, parts);

        Assert.Equal(Encoding.UTF8.GetBytes(Joined("00003", tenant, saga, key, eventId)), StoreKeys.Dedupe(s_p3, instance, eventId));
        Assert.Equal(Encoding.UTF8.GetBytes(Joined("00003", tenant, saga, key)), StoreKeys.Instance(s_p3, instance));
        Assert.Equal(Encoding.UTF8.GetBytes(Joined("04100", tenant, saga, key, "00000000000000000007")), StoreKeys.History(new PartitionId(4100), instance, 7));
        foreach (var version in new[] { 0L, 1L, 1_234_567_890_123L, long.MaxValue })
        {
            Assert.Equal(Encoding.UTF8.GetBytes(Joined("00003", tenant, saga, key, version.ToString("D20", System.Globalization.CultureInfo.InvariantCulture))),
                StoreKeys.History(s_p3, instance, version));
        }
        Assert.Equal(Encoding.UTF8.GetBytes(Joined("00003", tenant, saga, key, string.Empty)), StoreKeys.HistoryPrefix(s_p3, instance));
        Assert.Equal(Encoding.UTF8.GetBytes("00000"), StoreKeys.Join("00000"));
    }

    [Fact]
    public void Schedule_keys_sort_by_due_time()
    {
        long[] due = [1_700_000_000_000, 5, 100, 40, 999_999_999_999_999, 1_000_000, 0];
        // Instance names sort in the opposite order of due time, so only the time can explain the result.
        var keys = due.Select(ms => (ms, key: StoreKeys.Schedule(s_p3, ms, Instance("k-" + (1_000_000_000_000_000 - ms).ToString(System.Globalization.CultureInfo.InvariantCulture)), "deadline", 1)));

        var sorted = SortLikeLmdb(keys.Select(k => k.key));

        var dueInOrder = sorted.Select(k => long.Parse(StoreKeys.Split(k)[1], System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(due.Order().ToList(), dueInOrder);
    }

    [Fact]
    public void Schedule_key_carries_the_instance_name_and_generation()
    {
        var parts = StoreKeys.Split(StoreKeys.Schedule(s_p3, 42, Instance("order-9", "billing", "globex"), "reminder", 1));

        Assert.Equal(["00003", "000000000000042", "globex", "billing", "order-9", "reminder", "00000000000000000001"], parts);
    }

    [Fact]
    public void Schedule_keys_of_a_partition_share_its_prefix()
    {
        var prefix = StoreKeys.SchedulePrefix(s_p3);

        Assert.True(StoreKeys.Schedule(s_p3, 1, Instance("a"), "n", 1).AsSpan().StartsWith(prefix));
        Assert.False(StoreKeys.Schedule(new PartitionId(30), 1, Instance("a"), "n", 1).AsSpan().StartsWith(prefix));
        Assert.False(StoreKeys.Schedule(new PartitionId(33), 1, Instance("a"), "n", 1).AsSpan().StartsWith(prefix));
    }

    [Fact]
    public void Outbox_keys_sort_by_inbox_sequence_then_index()
    {
        (ulong seq, int index)[] items = [(100, 0), (9, 0), (10, 1), (10, 0), (10, 10), (10, 9), (ulong.MaxValue, 0), (1, 99_999)];

        var sorted = SortLikeLmdb(items.Select(i => StoreKeys.Outbox(s_p3, i.seq, i.index)));

        var order = sorted.Select(k => StoreKeys.Split(k)).Select(p => (ulong.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture), int.Parse(p[2], System.Globalization.CultureInfo.InvariantCulture))).ToList();
        Assert.Equal(items.OrderBy(i => i.seq).ThenBy(i => i.index).ToList(), order);
    }

    [Fact]
    public void Outbox_keys_of_a_partition_share_its_prefix()
    {
        var prefix = StoreKeys.OutboxPrefix(s_p3);

        Assert.True(StoreKeys.Outbox(s_p3, 7, 0).AsSpan().StartsWith(prefix));
        Assert.False(StoreKeys.Outbox(new PartitionId(31), 7, 0).AsSpan().StartsWith(prefix));
    }

    [Fact]
    public void Partition_keys_sort_numerically()
    {
        var sorted = SortLikeLmdb([StoreKeys.Outbox(new PartitionId(10), 1, 0), StoreKeys.Outbox(new PartitionId(2), 1, 0), StoreKeys.Outbox(new PartitionId(100), 1, 0)]);

        Assert.Equal(["00002", "00010", "00100"], sorted.Select(k => StoreKeys.Split(k)[0]));
    }

    [Fact]
    public void Instance_key_starts_with_the_partition_and_carries_the_tenant()
    {
        var parts = StoreKeys.Split(StoreKeys.Instance(s_p3, Instance("order-42")));

        Assert.Equal(["00003", "acme", "orders", "order-42"], parts);
    }

    [Fact]
    public void Dedupe_key_names_the_instance_and_the_event()
    {
        var parts = StoreKeys.Split(StoreKeys.Dedupe(s_p3, Instance("order-42"), "evt-1"));

        Assert.Equal(["00003", "acme", "orders", "order-42", "evt-1"], parts);
    }

    [Fact]
    public void Quarantine_key_uses_placeholders_for_what_is_unknown()
    {
        var parts = StoreKeys.Split(StoreKeys.Quarantine(null, null, 5, "AGGREGATE_EVENTS", 12, null));

        Assert.Equal([StoreKeys.None, StoreKeys.None, "000000000000005", "AGGREGATE_EVENTS", "00000000000000000012", StoreKeys.None], parts);
    }

    [Fact]
    public void Keys_are_utf8_text_joined_by_the_unit_separator()
    {
        var key = StoreKeys.Instance(s_p3, Instance("clé"));

        Assert.Equal("00003\u001facme\u001forders\u001fclé", Encoding.UTF8.GetString(key));
    }

    [Theory]
    [InlineData("order-42", true)]
    [InlineData("", false)]
    [InlineData("a\u001fb", false)]
    [InlineData("a\0b", false)]
    public void Key_components_are_validated(string value, bool valid)
    {
        Assert.Equal(valid, StoreKeys.IsValidComponent(value));
    }

    [Fact]
    public void Key_component_may_be_256_characters_but_not_257()
    {
        Assert.True(StoreKeys.IsValidComponent(new string('k', 256)));
        Assert.False(StoreKeys.IsValidComponent(new string('k', 257)));
    }

    [Fact]
    public void Schedule_due_time_is_read_back_from_the_key()
    {
        Assert.Equal(1_772_358_000_000, StoreKeys.ScheduleDue(StoreKeys.Schedule(s_p3, 1_772_358_000_000, Instance("o-1"), "deadline", 1)));
        Assert.Null(StoreKeys.ScheduleDue(StoreKeys.Instance(s_p3, Instance("o-1"))));
    }

    [Fact]
    public void Due_bound_separates_the_schedules_due_before_a_time_from_the_rest()
    {
        var bound = StoreKeys.ScheduleDueBound(s_p3, 1_000);
        Assert.True(StoreKeys.Schedule(s_p3, 999, Instance("z"), "z", 1).AsSpan().SequenceCompareTo(bound) < 0);
        Assert.True(StoreKeys.Schedule(s_p3, 1_000, Instance("a"), "a", 1).AsSpan().SequenceCompareTo(bound) > 0);
        Assert.True(StoreKeys.SchedulePrefix(s_p3).AsSpan().SequenceCompareTo(bound) < 0);
    }
}
