using System.Text;
using System.Text.Json;
using Runner.Core.Events;
using Runner.Core.Transitions;

namespace Runner.Core.Tests.Events;

public sealed class TimerEventsTests
{
    private static readonly ScheduleRecord s_record = new()
    {
        Tenant = "acme",
        Saga = "order-fulfillment",
        Key = "o-1001",
        Name = "payment-deadline",
        DueMs = 1_772_358_000_000,
        Payload = JsonDocument.Parse("""{"n":1}""").RootElement,
        Deadline = true,
        CausationId = "evt-o-1001",
        Generation = 3,
    };

    [Fact]
    public void Timer_event_is_a_structured_cloud_event_timed_at_its_due_time()
    {
        var body = Encoding.UTF8.GetString(TimerEvents.Body(s_record));

        Assert.Equal(
            """{"specversion":"1.0","id":"timer:acme:order-fulfillment:o-1001:payment-deadline:1772358000000:3","source":"runner/scheduler","type":"timer.fired","time":"2026-03-01T09:40:00.000Z","tenant":"acme","data":{"saga":"order-fulfillment","key":"o-1001","name":"payment-deadline","due_ms":1772358000000,"gen":3,"deadline":true,"payload":{"n":1}}}""",
            body);
    }

    [Fact]
    public void Timer_data_reads_back_what_the_body_carries()
    {
        using var doc = JsonDocument.Parse(TimerEvents.Body(s_record));

        Assert.True(TimerEvents.TryReadData(doc.RootElement.GetProperty("data").GetRawText(), out var data));
        Assert.Equal(new TimerData("o-1001", "payment-deadline", 1_772_358_000_000, s_record.Generation, Deadline: true), data);
    }

    [Fact]
    public void Timer_id_too_long_for_an_event_id_becomes_a_digest_of_the_timer()
    {
        var longer = s_record with { Key = new string('k', 200), Name = new string('n', 200) };

        var id = TimerEvents.Id(longer);

        Assert.Matches("^timer:sha256:[0-9a-f]{40}:1772358000000:3$", id);
        Assert.Equal(id, TimerEvents.Id(longer with { Payload = null }));
        Assert.NotEqual(id, TimerEvents.Id(longer with { Name = new string('m', 200) }));
    }

    [Fact]
    public void Timer_whose_parts_hold_a_colon_gets_a_digest_id_so_no_two_timers_share_one()
    {
        var first = s_record with { Key = "a:b", Name = "c" };
        var second = s_record with { Key = "a", Name = "b:c" };

        Assert.StartsWith("timer:sha256:", TimerEvents.Id(first), StringComparison.Ordinal);
        Assert.NotEqual(TimerEvents.Id(first), TimerEvents.Id(second));
    }

    [Theory]
    [InlineData("null")]
    [InlineData("""{"key":"k","name":"n"}""")]
    [InlineData("""{"key":"k","name":"n","due_ms":"5"}""")]
    [InlineData("""{"key":"","name":"n","due_ms":5}""")]
    [InlineData("""{"name":"n","due_ms":5}""")]
    public void Timer_data_without_a_valid_key_name_or_due_time_is_refused(string json)
    {
        Assert.False(TimerEvents.TryReadData(json, out _));
    }

    [Theory]
    [InlineData("timer:acme:o-1:deadline:17", "timer:acme:o-1:deadline:17")]
    [InlineData("\u6CE8\u6587", "%E6%B3%A8%E6%96%87")]
    [InlineData("a b%c", "a%20b%25c")]
    [InlineData("line\r\nbreak", "line%0D%0Abreak")]
    public void Header_values_keep_printable_ascii_and_percent_encode_the_rest(string value, string encoded)
    {
        Assert.Equal(encoded, EventHeaders.Encode(value));
        Assert.Equal(value, EventHeaders.Decode(encoded));
    }
}
