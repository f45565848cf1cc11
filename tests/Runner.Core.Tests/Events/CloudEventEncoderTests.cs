using System.Text;
using System.Text.Json;
using Runner.Core.Events;

namespace Runner.Core.Tests.Events;

public sealed class CloudEventEncoderTests
{
    [Theory]
    [InlineData(0L, 0)]
    [InlineData(1_704_164_645_123L, 5)]
    [InlineData(1_704_164_645_000L, -3)]
    [InlineData(253_402_300_799_999L, 0)]
    [InlineData(-62_135_596_800_000L, 0)]
    public void A_time_written_into_json_reads_back_as_the_formatted_time(long unixMs, int offsetHours)
    {
        var time = DateTimeOffset.FromUnixTimeMilliseconds(unixMs).ToOffset(TimeSpan.FromHours(offsetHours));
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            CloudEventEncoder.WriteTime(writer, "time", time);
            writer.WriteEndObject();
        }

        var text = JsonDocument.Parse(buffer.ToArray()).RootElement.GetProperty("time").GetString();

        Assert.Equal(CloudEventEncoder.FormatTime(time), text);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(unixMs), DateTimeOffset.Parse(text!, System.Globalization.CultureInfo.InvariantCulture));
        Assert.EndsWith("Z", Encoding.UTF8.GetString(buffer.ToArray()).TrimEnd('}', '"'), StringComparison.Ordinal);
    }

    [Fact]
    public void A_time_is_formatted_as_the_invariant_format_string_formats_it()
    {
        var random = new Random(20261204);
        var times = new List<DateTimeOffset> { DateTimeOffset.MinValue, DateTimeOffset.MaxValue, DateTimeOffset.UnixEpoch, new(2024, 2, 29, 23, 59, 59, 999, TimeSpan.Zero) };
        for (var i = 0; i < 2_000; i++)
        {
            var ticks = random.NextInt64(DateTimeOffset.MinValue.UtcTicks + TimeSpan.TicksPerDay, DateTimeOffset.MaxValue.UtcTicks - TimeSpan.TicksPerDay);
            times.Add(new DateTimeOffset(ticks, TimeSpan.Zero).ToOffset(TimeSpan.FromMinutes(random.Next(-14 * 60, 14 * 60))));
        }

        foreach (var time in times)
        {
            var expected = time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(expected, CloudEventEncoder.FormatTime(time));
        }
    }

    [Theory]
    [InlineData("2024-01-02T03:04:05.123Z")]
    [InlineData("0001-01-01T00:00:00.000Z")]
    [InlineData("9999-12-31T23:59:59.999Z")]
    [InlineData("2024-02-29T12:00:00.000Z")]
    [InlineData("2023-02-29T12:00:00.000Z")]
    [InlineData("2024-13-01T00:00:00.000Z")]
    [InlineData("2024-00-01T00:00:00.000Z")]
    [InlineData("2024-04-31T00:00:00.000Z")]
    [InlineData("2024-01-01T24:00:00.000Z")]
    [InlineData("2024-01-01T23:60:00.000Z")]
    [InlineData("2024-01-01T23:59:60.000Z")]
    [InlineData("0000-01-01T00:00:00.000Z")]
    [InlineData("2024-01-0xT00:00:00.000Z")]
    [InlineData("2024-01-01t00:00:00.000Z")]
    [InlineData("2024-01-01T00:00:00.000z")]
    [InlineData("2024-01-01T00:00:00.1234Z")]
    [InlineData("2024-01-01T00:00:00Z")]
    [InlineData("2024-01-01T01:00:00.000+01:00")]
    [InlineData("2024-01-01 00:00:00.000Z")]
    [InlineData("+024-01-01T00:00:00.000Z")]
    public void A_time_attribute_is_read_as_the_framework_reads_an_RFC_3339_timestamp(string text)
    {
        var reference = System.Text.RegularExpressions.Regex.IsMatch(text, @"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
            & DateTimeOffset.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var expected);

        var read = CloudEventDecoder.TryParseTime(text, out var time);

        Assert.Equal(reference, read);
        if (reference)
        {
            Assert.Equal(expected, time);
            Assert.Equal(expected.Offset, time.Offset);
        }
    }

    [Fact]
    public void Every_time_Runner_writes_reads_back_as_the_same_instant()
    {
        var random = new Random(4122026);
        for (var i = 0; i < 2_000; i++)
        {
            var time = DateTimeOffset.FromUnixTimeMilliseconds(random.NextInt64(-62_135_596_800_000L, 253_402_300_799_999L));
            var text = CloudEventEncoder.FormatTime(time);

            Assert.True(CloudEventDecoder.TryParseTime(text, out var read), text);
            Assert.Equal(time, read);
            Assert.True(DateTimeOffset.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var reference));
            Assert.Equal(reference.Offset, read.Offset);
        }
    }
}
