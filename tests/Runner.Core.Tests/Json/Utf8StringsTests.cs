using System.Text;
using System.Text.Json;
using Runner.Core.Json;
using Xunit;

namespace Runner.Core.Tests.Json;

/// <summary>Shared strings for repeated JSON values: the same text as the reader's own, made once while it repeats.</summary>
public sealed class Utf8StringsTests
{
    /// <summary>Reads the first string value of <paramref name="json"/> (<c>{"v": …}</c>) through the table.</summary>
    private static string Read(string json) => Read(Encoding.UTF8.GetBytes(json));

    private static string Read(byte[] json)
    {
        var reader = new Utf8JsonReader(json);
        reader.Read(); // {
        reader.Read(); // "v"
        reader.Read(); // the value
        return Utf8Strings.Get(ref reader);
    }

    [Fact]
    public void A_repeated_value_is_the_same_string_and_the_same_text()
    {
        var first = Read("""{"v":"order.placed.v1"}""");
        var second = Read("""{"v":"order.placed.v1"}""");

        Assert.Equal("order.placed.v1", first);
        Assert.Same(first, second);
    }

    [Theory]
    [InlineData("""{"v":"caf\u00e9"}""", "café")]
    [InlineData("""{"v":"a\"b"}""", "a\"b")]
    [InlineData("""{"v":""}""", "")]
    [InlineData("""{"v":"日本語のイベント"}""", "日本語のイベント")]
    public void Escaped_empty_and_non_ascii_values_read_as_the_reader_reads_them(string json, string expected)
    {
        Assert.Equal(expected, Read(json));
        Assert.Equal(expected, Read(json));
    }

    [Fact]
    public void A_value_longer_than_the_limit_is_made_each_time()
    {
        var text = new string('t', Utf8Strings.MaxBytes + 1);
        var json = $$"""{"v":"{{text}}"}""";

        var first = Read(json);
        var second = Read(json);

        Assert.Equal(text, first);
        Assert.Equal(text, second);
        Assert.NotSame(first, second);
    }

    [Fact]
    public void Values_that_share_a_slot_each_read_as_their_own_text()
    {
        // Far more values than slots: every slot is replaced many times over, from several threads.
        var values = Enumerable.Range(0, 5_000).Select(i => $"type.{i}").ToArray();
        Parallel.For(0, 4, round =>
        {
            for (var pass = 0; pass < 3; pass++)
            {
                foreach (var value in values)
                {
                    Assert.Equal(value, Read($$"""{"v":"{{value}}"}"""));
                }
            }
        });
    }

    [Fact]
    public void Invalid_UTF8_is_refused_as_the_reader_refuses_it()
    {
        var json = Encoding.UTF8.GetBytes("""{"v":"ab"}""");
        json[7] = 0xFF; // 'b' becomes a byte that starts no UTF-8 sequence

        var expected = Record.Exception(() =>
        {
            var reader = new Utf8JsonReader(json);
            reader.Read();
            reader.Read();
            reader.Read();
            return reader.GetString();
        });

        Assert.NotNull(expected);
        var twice = new[] { Record.Exception(() => Read(json)), Record.Exception(() => Read(json)) };
        Assert.All(twice, e => Assert.IsType(expected.GetType(), e));
    }
}
