using System.Globalization;
using System.Text.Json;
using Runner.Core.Events;
using Runner.Sagas.Partitions;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>The <c>event</c> argument a script gets: its headers part, which must be the same bytes on every replica.</summary>
public sealed class ScriptEventTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(40)]
    public void Headers_are_listed_lower_cased_in_the_ordinal_order_of_their_names_without_internal_ones(int count)
    {
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
        {
            ["runner-saga"] = "orders",
            ["Nats-Msg-Id"] = "m-1",
        };
        for (var i = 0; i < count; i++)
        {
            // Mixed case, and an order of insertion unlike the sorted one.
            var name = (i % 2 == 0 ? "X-Header-" : "a-header-") + (count - i).ToString("D2", CultureInfo.InvariantCulture);
            headers[name] = "v" + i.ToString(CultureInfo.InvariantCulture);
        }
        var origin = new MessageOrigin("AGGREGATE_EVENTS", 7, "aggregate.acme.order.1.created", DateTimeOffset.UnixEpoch);
        Assert.True(CloudEventDecoder.TryDecode("""{"specversion":"1.0","id":"e","type":"t","source":"s","data":{"n":1}}"""u8.ToArray(), headers, origin, 1 << 20, out var evt, out var error), error?.Message);

        var json = JsonDocument.Parse(Scripting.EventArgument.Json(evt!, origin)).RootElement;

        var expected = headers.Where(h => !EventHeaders.IsInternal(h.Key)).OrderBy(h => h.Key, StringComparer.Ordinal)
            .Select(h => (h.Key.ToLowerInvariant(), h.Value)).ToList();
        Assert.Equal(expected, json.GetProperty("headers").EnumerateObject().Select(p => (p.Name, p.Value.GetString()!)).ToList());
        Assert.Equal(count, expected.Count);
        Assert.Equal(7UL, json.GetProperty("seq").GetUInt64());
    }
}
