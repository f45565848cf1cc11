using System.Text;
using Jint;
using Jint.Native;
using Runner.Core.Events;
using static Runner.Scripting.Tests.Scripts;

namespace Runner.Scripting.Tests;

/// <summary>
/// The script's arguments built straight from UTF-8 JSON and from the event's fields must be what
/// <c>JSON.parse</c> of the same text gives: same values, same own-key order, same prototypes, <c>-0</c>
/// kept; and what it declines goes to Jint's parser, which then decides as it always has.
/// </summary>
public sealed class JsonToJsTests
{
    /// <summary>Compares two values as a script sees them: key order, prototypes, Object.is on leaves.</summary>
    private const string Same = """
        (function same(a, b) {
          if (typeof a !== typeof b) return false;
          if (a === null || typeof a !== 'object') return Object.is(a, b);
          if (Array.isArray(a) !== Array.isArray(b)) return false;
          if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
          const ka = Reflect.ownKeys(a), kb = Reflect.ownKeys(b);
          if (ka.length !== kb.length) return false;
          for (let i = 0; i < ka.length; i++) {
            if (ka[i] !== kb[i]) return false;
            const da = Object.getOwnPropertyDescriptor(a, ka[i]), db = Object.getOwnPropertyDescriptor(b, kb[i]);
            if (da.writable !== db.writable || da.enumerable !== db.enumerable || da.configurable !== db.configurable) return false;
            if (!same(da.value, db.value)) return false;
          }
          return true;
        })
        """;

    public static TheoryData<string> Texts => new()
    {
        "null", "true", "false", "0", "-0", "1", "-1", "0.5", "-0.0", "1e3", "1E-7", "1e400", "-1e400",
        "9007199254740993", "-9223372036854775808", "9223372036854775808", "123456789012345678901234567890",
        "\"\"", "\"acme\"", "\"é ü 漢字 😀\"", "\"line\\nbreak \\\"quoted\\\" \\u0041 \\/\"", "\"\\ud83d\\ude00\"",
        "[]", "{}", "[1,[2,[3,[]]],{}]", " { \"a\" : 1 , \"b\" : [ true , null ] } ",
        """{"b":1,"a":2,"2":"two","10":"ten","1":"one","x":{"z":0,"y":-0}}""",
        """{"a":1,"b":2,"a":3}""",
        """{"__proto__":{"polluted":true},"constructor":1,"toString":"s"}""",
        """{"":"empty name","with space":1,"\u00e9":"é escaped name"}""",
        """[{"id":1,"name":"x"},{"id":2,"name":"y"},{"name":"z","id":3}]""",
        """{"a very long property name that is longer than sixty four bytes and so is not cached at all":"and a value that is longer than sixty four bytes as well, so it is not shared either"}""",
    };

    [Theory]
    [MemberData(nameof(Texts))]
    public void A_converted_text_is_what_JSON_parse_gives(string text)
    {
        var engine = new Engine();
        var json = new JsonToJs(engine, 64, 100_000);

        Assert.True(json.TryConvert(Encoding.UTF8.GetBytes(text), out var fromBytes), text);
        Assert.True(json.TryConvert(text, out var fromText), text);
        engine.SetValue("text", text);
        var same = engine.Evaluate(Same);
        var parsed = engine.Evaluate("JSON.parse(text)");
        Assert.True(engine.Invoke(same, fromBytes, parsed).AsBoolean(), $"bytes: {text}");
        Assert.True(engine.Invoke(same, fromText, parsed).AsBoolean(), $"text: {text}");
        // The comparison itself can fail: a changed value is told apart.
        Assert.False(engine.Invoke(same, fromBytes, engine.Evaluate("[JSON.parse(text)]")).AsBoolean());
    }

    [Fact]
    public void Names_and_short_values_are_shared_across_calls_and_long_ones_are_not()
    {
        var engine = new Engine();
        var json = new JsonToJs(engine, 64, 100_000);
        var longValue = new string('v', 65);
        var text = "{\"count\":1,\"tenant\":\"acme\",\"note\":\"" + longValue + "\"}";

        Assert.True(json.TryConvert(text, out var first));
        Assert.True(json.TryConvert(text, out var second));
        var a = first.AsObject();
        var b = second.AsObject();
        Assert.NotSame(a, b);
        Assert.Same(a.GetOwnPropertyKeys()[0].AsString(), b.GetOwnPropertyKeys()[0].AsString());
        Assert.Same(a.Get("tenant"), b.Get("tenant"));
        Assert.NotSame(a.Get("note"), b.Get("note"));
        Assert.Equal(longValue, b.Get("note").AsString());
    }

    [Theory]
    [InlineData("\"\\ud800 lone surrogate\"")]
    [InlineData("{\"a\":1,}")]
    [InlineData("[1] [2]")]
    [InlineData("{\"a\":1")]
    [InlineData("NaN")]
    [InlineData("// comment\n1")]
    public void What_it_declines_is_left_to_Jint(string text)
    {
        var json = new JsonToJs(new Engine(), 64, 100_000);

        Assert.False(json.TryConvert(text, out _), text);
        Assert.False(json.TryConvert(Encoding.UTF8.GetBytes(text), out _), text);
    }

    [Fact]
    public void A_lone_surrogate_in_the_text_itself_is_declined_not_replaced()
    {
        var json = new JsonToJs(new Engine(), 64, 100_000);

        Assert.False(json.TryConvert("\"a\ud800b\"", out _));
        Assert.True(json.TryConvert("\"a\ud83d\ude00b\"", out var pair));
        Assert.Equal("a\ud83d\ude00b", pair.AsString());
    }

    [Fact]
    public void Bytes_that_are_not_UTF8_are_declined_and_a_lone_surrogate_value_is_not_shared()
    {
        var json = new JsonToJs(new Engine(), 64, 100_000);

        Assert.False(json.TryConvert([(byte)'"', 0xC3, 0x28, (byte)'"'], out _));
        Assert.False(json.TryConvert([(byte)'{', (byte)'"', 0xFF, (byte)'"', (byte)':', (byte)'1', (byte)'}'], out _));
        var replacement = json.String("a\ufffd");
        var lone = json.String("a\ud800");
        Assert.Equal("a\ud800", lone.ToString());
        Assert.Equal("a\ufffd", replacement.ToString());
        Assert.Same(replacement, json.String("a\ufffd"));
    }

    [Fact]
    public void Nesting_near_the_engines_limit_and_long_arrays_are_left_to_Jint()
    {
        var json = new JsonToJs(new Engine(), 64, 3);

        Assert.True(json.TryConvert(new string('[', 62) + new string(']', 62), out _));
        Assert.False(json.TryConvert(new string('[', 64) + new string(']', 64), out _));
        Assert.True(json.TryConvert("[1,2,3]", out _));
        Assert.False(json.TryConvert("[1,2,3,4]", out _));
    }

    [Fact]
    public void A_script_gets_the_same_arguments_whichever_way_they_come()
    {
        // The sandbox takes the state from stored bytes and the event from its fields in the pipeline,
        // and from texts in the test tools: the script must not see the difference.
        const string Source = """
            'use strict';
            function on_event(state, event, ctx) {
              return { state: { state: state, keys: Object.keys(event), event: event, proto: Object.getPrototypeOf(event.data) === Object.prototype } };
            }
            """;
        var script = Compile(Source);
        var evt = Event(ceSubject: "order-1");
        var origin = new MessageOrigin("RUNNER_INBOX", 42, "aggregate.acme.orders.o-1.placed", DateTimeOffset.UnixEpoch);
        var stateJson = """{"total":12.5,"items":[{"sku":"a","qty":2}],"flags":{"2":true,"1":false}}""";
        using var state = System.Text.Json.JsonDocument.Parse(stateJson);

        var fromTexts = Succeeds(script, new ScriptInput(stateJson, EventArgument.Json(evt, origin), evt.Id, 1_000, "acme", "orders", "o-1"));
        var fromFields = Succeeds(script, new ScriptInput(null, null, evt.Id, 1_000, "acme", "orders", "o-1") { State = state.RootElement, Event = evt, Origin = origin });

        Assert.Equal(fromTexts.StateJson, fromFields.StateJson);
        Assert.Contains("\"keys\":[\"id\",\"type\",\"source\",\"subject\",\"ce_subject\",\"time\",\"tenant\",\"data\",\"headers\",\"stream\",\"seq\"]", fromFields.StateJson, StringComparison.Ordinal);
        Assert.Contains("\"flags\":{\"1\":false,\"2\":true}", fromFields.StateJson, StringComparison.Ordinal);
    }

    [Fact]
    public void Headers_are_an_ordinary_property_made_when_first_read()
    {
        const string Source = """
            'use strict';
            function on_event(state, event, ctx) {
              const present = 'headers' in event && Object.keys(event).indexOf('headers') === 7;
              const d = Object.getOwnPropertyDescriptor(event, 'headers');
              return { state: { present: present, flags: [d.writable, d.enumerable, d.configurable], headers: event.headers, same: event.headers === d.value } };
            }
            """;
        var evt = Event(ceSubject: null);
        var origin = new MessageOrigin("RUNNER_INBOX", 1, "aggregate.acme.orders.o-1.placed", DateTimeOffset.UnixEpoch);

        var output = Succeeds(Compile(Source), new ScriptInput(null, null, evt.Id, 1_000, "acme", "orders", "o-1") { Event = evt, Origin = origin });

        // By the original names in ordinal order ("X-…" before "a-…"), lower-cased; of two names equal
        // once lower-cased, the later one's value at the earlier one's place, as JSON.parse of the text.

        Assert.Equal(
            """{"present":true,"flags":[true,true,true],"headers":{"x-trace":"t-1","a-first":"1","content-type":"application/json"},"same":true}""",
            output.StateJson);
    }

    [Theory]
    [InlineData(62)]
    [InlineData(63)]
    [InlineData(64)]
    [InlineData(65)]
    public void Data_nested_near_the_parse_depth_is_taken_or_refused_as_inside_the_event_text(int depth)
    {
        // data sits one level below the event: JSON.parse of the event text allows it one level less.
        const string Source = "'use strict'; function on_event(state, event, ctx) { let d = 0; for (let x = event.data; Array.isArray(x); x = x[0]) d++; return { state: { depth: d } }; }";
        var script = Compile(Source);
        var data = new string('[', depth) + new string(']', depth);
        var evt = Event(ceSubject: null) with { Data = System.Text.Encoding.UTF8.GetBytes(data) };
        var origin = new MessageOrigin("RUNNER_INBOX", 1, "aggregate.acme.orders.o-1.placed", DateTimeOffset.UnixEpoch);

        var fromText = script.Run(new ScriptInput(null, EventArgument.Json(evt, origin), evt.Id, 1_000, "acme", "orders", "o-1"));
        var fromFields = script.Run(new ScriptInput(null, null, evt.Id, 1_000, "acme", "orders", "o-1") { Event = evt, Origin = origin });

        Assert.Equal(fromText.Succeeded, fromFields.Succeeded);
        Assert.Equal(fromText.Output?.StateJson, fromFields.Output?.StateJson);
        Assert.Equal(fromText.Failure?.Code, fromFields.Failure?.Code);
        Assert.Equal(depth <= 63, fromFields.Succeeded);
    }

    [Theory]
    [InlineData(null, 7UL)]
    [InlineData("ce-subject", 0UL)]
    [InlineData(null, 9_223_372_036_854_775_808UL)]
    [InlineData(null, ulong.MaxValue)]
    public void The_built_event_is_the_written_event(string? ceSubject, ulong sequence)
    {
        var engine = new Engine();
        var json = new JsonToJs(engine, 64, 100_000);
        var parser = new Jint.Native.Json.JsonParser(engine);
        var evt = Event(ceSubject);
        var origin = new MessageOrigin("AGGREGATE_EVENTS", sequence, "aggregate.acme.orders.o-1.placed", DateTimeOffset.UnixEpoch);

        var built = EventArgument.Build(engine, json, parser.Parse, evt, origin, new JsValue[EventArgument.Fields]);
        engine.SetValue("built", built);
        engine.SetValue("text", EventArgument.Json(evt, origin));

        // (Integer-like names of data come first in both, as JavaScript orders own keys.)
        Assert.Equal(engine.Evaluate("JSON.stringify(JSON.parse(text))").AsString(), engine.Evaluate("JSON.stringify(built)").AsString());
        Assert.StartsWith("{\"id\":\"e-1\",\"type\":\"orders.placed\"", engine.Evaluate("JSON.stringify(built)").AsString(), StringComparison.Ordinal);
        Assert.True(engine.Invoke(engine.Evaluate(Same), built, engine.Evaluate("JSON.parse(text)")).AsBoolean());
    }

    private static SagaEvent Event(string? ceSubject) => new(
        "e-1",
        "orders.placed",
        "/orders",
        ceSubject,
        DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_123),
        "acme",
        "application/json",
        """{"order":"o-1","lines":[{"sku":"a","qty":2,"price":-0.0}],"note":null,"10":"ten","2":"two"}"""u8.ToArray(),
        new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["X-Trace"] = "t-1",
            ["content-type"] = "application/json",
            ["a-first"] = "1",
            ["X-TRACE"] = "duplicate after lower-casing",
        },
        new MessageOrigin("AGGREGATE_EVENTS", 3, "aggregate.acme.orders.o-1.placed", DateTimeOffset.UnixEpoch));
}
