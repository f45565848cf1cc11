using Runner.Core.Ids;

namespace Runner.Core.Tests.Ids;

public sealed class CommandIdsTests
{
    private static CommandId Derive(string tenant = "acme", string saga = "orders", string key = "order-42", string eventId = "evt-1", string name = "launch-0") =>
        CommandIds.Derive(new TenantId(tenant), new SagaName(saga), new CorrelationKey(key), eventId, name);

    [Fact]
    public void Same_inputs_give_the_same_id()
    {
        Assert.Equal(Derive(), Derive());
    }

    [Fact]
    public void Id_is_pinned_for_known_inputs()
    {
        // Computed once; ids are stored in outboxes and effect claims, so the derivation must never drift.
        Assert.Equal(PinnedId, Derive().Value);
    }

    [Theory]
    [InlineData("acme", "orders", "order-42", "evt-1", "launch-0")]
    [InlineData("ünïcödé", "saga-€", "キー", "evt-𝄞", "名前")]
    [InlineData("t", "s", "k", "", "$command.0")]
    public void Id_is_the_sha256_of_the_utf8_of_the_parts_joined_by_the_unit_separator(string tenant, string saga, string key, string eventId, string name)
    {
        foreach (var (id, n) in new[] { (eventId, name), (eventId + new string('x', 2_000), name), (eventId, new string('ü', 700)) })
        {
            var text = System.Text.Encoding.UTF8.GetBytes(string.Join('\u001f', tenant, saga, key, id, n));
            var expected = saga + "-" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(text).AsSpan(0, 12));

            Assert.Equal(expected, Derive(tenant, saga, key, id, n).Value);
        }
    }

    [Theory]
    [InlineData("evt-1")]
    [InlineData("évènement-𝄞")]
    public void The_random_seed_is_the_first_eight_bytes_of_the_sha256_of_the_event_id(string eventId)
    {
        foreach (var id in new[] { eventId, eventId + new string('y', 3_000) })
        {
            var expected = BitConverter.ToUInt64(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(id)).AsSpan(0, 8));

            Assert.Equal(expected, CommandIds.SeedFrom(id));
        }
    }

    [Fact]
    public void Id_is_the_saga_name_and_24_hex_digits()
    {
        var id = Derive().Value;

        Assert.StartsWith("orders-", id, StringComparison.Ordinal);
        var hex = id["orders-".Length..];
        Assert.Equal(24, hex.Length);
        Assert.All(hex, c => Assert.True(char.IsAsciiHexDigitLower(c) || char.IsAsciiDigit(c), $"'{c}' is not lowercase hex"));
    }

    [Fact]
    public void Different_name_gives_a_different_id()
    {
        Assert.NotEqual(Derive(name: "launch-0"), Derive(name: "launch-1"));
    }

    [Fact]
    public void Different_event_key_tenant_or_saga_gives_a_different_id()
    {
        var baseline = Derive();

        Assert.NotEqual(baseline, Derive(eventId: "evt-2"));
        Assert.NotEqual(baseline, Derive(key: "order-43"));
        Assert.NotEqual(baseline, Derive(tenant: "globex"));
        Assert.NotEqual(baseline.Value[7..], Derive(saga: "billing").Value[8..]);
    }

    [Fact]
    public void Component_boundaries_are_part_of_the_id()
    {
        Assert.NotEqual(Derive(eventId: "ab", name: "c"), Derive(eventId: "a", name: "bc"));
    }

    [Fact]
    public void Seed_is_stable_per_event_id_and_differs_between_events()
    {
        Assert.Equal(CommandIds.SeedFrom("evt-1"), CommandIds.SeedFrom("evt-1"));
        Assert.NotEqual(CommandIds.SeedFrom("evt-1"), CommandIds.SeedFrom("evt-2"));
    }

    private const string PinnedId = "orders-e403ac074b96b2a53808bd2d";
}
