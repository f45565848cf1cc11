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
}
