using System.Text;
using System.Text.Json;
using Runner.Core.Json;
using Xunit;

namespace Runner.Core.Tests.Json;

/// <summary>The per-thread JSON writer: each document whole and alone, whatever was written before it on the thread.</summary>
public sealed class ThreadJsonWriterTests
{
    [Fact]
    public void Documents_written_one_after_another_do_not_carry_anything_over()
    {
        var first = ThreadJsonWriter.ToText("a", static (w, v) => { w.WriteStartObject(); w.WriteString("long", new string('x', 500)); w.WriteString("v", v); w.WriteEndObject(); });
        var second = ThreadJsonWriter.ToUtf8(7, static (w, v) => { w.WriteStartObject(); w.WriteNumber("n", v); w.WriteEndObject(); });

        Assert.Equal("{\"long\":\"" + new string('x', 500) + "\",\"v\":\"a\"}", first);
        Assert.Equal("{\"n\":7}", Encoding.UTF8.GetString(second));
    }

    [Fact]
    public void A_write_that_failed_halfway_leaves_nothing_for_the_next()
    {
        Assert.Throws<InvalidOperationException>(() => ThreadJsonWriter.ToText(0, static (w, _) =>
        {
            w.WriteStartObject();
            w.WriteString("half", "written");
            throw new InvalidOperationException("boom");
        }));

        Assert.Equal("[1,2]", ThreadJsonWriter.ToText(0, static (w, _) => { w.WriteStartArray(); w.WriteNumberValue(1); w.WriteNumberValue(2); w.WriteEndArray(); }));
    }

    [Fact]
    public void A_document_larger_than_the_kept_buffer_is_whole_and_the_next_is_too()
    {
        var big = new string('y', 200_000);
        var large = ThreadJsonWriter.ToUtf8(big, static (w, v) => w.WriteStringValue(v));
        Assert.Equal(big, JsonDocument.Parse(large).RootElement.GetString());

        Assert.Equal("true", ThreadJsonWriter.ToText(true, static (w, v) => w.WriteBooleanValue(v)));
    }

    [Fact]
    public void A_document_written_inside_another_on_the_same_thread_is_refused()
    {
        var error = Assert.Throws<InvalidOperationException>(() => ThreadJsonWriter.ToText(0, static (w, _) =>
        {
            w.WriteStartObject();
            w.WriteString("inner", ThreadJsonWriter.ToText(0, static (inner, _) => inner.WriteNullValue()));
            w.WriteEndObject();
        }));
        Assert.Contains("already being written", error.Message);

        Assert.Equal("null", ThreadJsonWriter.ToText(0, static (w, _) => w.WriteNullValue()));
    }
}
