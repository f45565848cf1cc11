using System.Buffers;
using System.Text.Json;
using Jint;
using Jint.Native;
using Runner.Core.Events;

namespace Runner.Scripting;

/// <summary>
/// The script's <c>event</c> argument: <c>{ id, type, source, subject, ce_subject?, time, tenant, data,
/// headers, stream, seq }</c>, <c>headers</c> by name in ordinal order and lower-cased. Written as JSON
/// (<see cref="Write"/>: the history's record of the input, the saga test tools) and built as a
/// script value (<see cref="Build"/>), the two in one place so they cannot drift: a test holds
/// <c>JSON.stringify</c> of the built value to the written text.
/// </summary>
internal static class EventArgument
{
    // headers is built only when the script reads it (most never do): a lazy slot is an ordinary data
    // property in every observable respect, its value made on the first read that observes it.
    private static readonly JsObjectLayout s_layout = Layout(withCeSubject: false);
    private static readonly JsObjectLayout s_layoutWithCeSubject = Layout(withCeSubject: true);

    // A comparison, not a comparer: sorting with a comparer makes a delegate of it on every call.
    private static readonly Comparison<KeyValuePair<string, string>> s_byName = static (a, b) => string.CompareOrdinal(a.Key, b.Key);

    /// <summary>The argument as JSON.</summary>
    public static void Write(Utf8JsonWriter writer, SagaEvent evt, MessageOrigin origin)
    {
        writer.WriteStartObject();
        writer.WriteString("id", evt.Id);
        writer.WriteString("type", evt.Type);
        writer.WriteString("source", evt.Source);
        writer.WriteString("subject", origin.Subject);
        if (evt.CeSubject is not null)
        {
            writer.WriteString("ce_subject", evt.CeSubject);
        }
        CloudEventEncoder.WriteTime(writer, "time", evt.Time);
        writer.WriteString("tenant", evt.Tenant);
        writer.WritePropertyName("data");
        writer.WriteRawValue(evt.Data.Span, skipInputValidation: true);
        writer.WriteStartObject("headers");
        var pairs = SortedHeaders(evt.Headers, out var n);
        try
        {
            for (var i = 0; i < n; i++)
            {
                writer.WriteString(pairs[i].Key.ToLowerInvariant(), pairs[i].Value);
            }
        }
        finally
        {
            ArrayPool<KeyValuePair<string, string>>.Shared.Return(pairs, clearArray: true);
        }
        writer.WriteEndObject();
        writer.WriteString("stream", origin.Stream);
        writer.WriteNumber("seq", origin.Sequence);
        writer.WriteEndObject();
    }

    /// <summary>The argument as JSON text.</summary>
    public static string Json(SagaEvent evt, MessageOrigin origin) =>
        Core.Json.ThreadJsonWriter.ToText((evt, origin), static (writer, input) => Write(writer, input.evt, input.origin));

    /// <summary>Length of the scratch array <see cref="Build"/> needs.</summary>
    public static int Fields => s_layoutWithCeSubject.Count;

    /// <summary>
    /// The argument as a script value, equal to <c>JSON.parse</c> of <see cref="Json"/>. When
    /// <paramref name="json"/> declines <c>data</c>, the whole argument is <paramref name="parse"/> of
    /// <see cref="Json"/>, as it always was: <c>data</c> nested near the parse depth, for one, is then
    /// accepted or refused exactly as inside the event text.
    /// </summary>
    public static JsValue Build(Engine engine, JsonToJs json, Func<string, JsValue> parse, SagaEvent evt, MessageOrigin origin, JsValue[] scratch)
    {
        if (!json.TryConvert(evt.Data.Span, out var data, nested: 1))
        {
            return parse(Json(evt, origin));
        }
        var withCeSubject = evt.CeSubject is not null;
        var layout = withCeSubject ? s_layoutWithCeSubject : s_layout;
        var values = scratch.AsSpan(0, layout.Count);
        var i = 0;
        values[i++] = new JsString(evt.Id);
        values[i++] = json.String(evt.Type);
        values[i++] = json.String(evt.Source);
        // Not from the table: a subject names its instance, so it seldom repeats and would only push out the names that do.
        values[i++] = new JsString(origin.Subject);
        if (withCeSubject)
        {
            values[i++] = json.String(evt.CeSubject!);
        }
        values[i++] = new JsString(CloudEventEncoder.FormatTime(evt.Time));
        values[i++] = json.String(evt.Tenant);
        values[i++] = data;
        values[i++] = null!; // headers: lazy, from evt
        values[i++] = json.String(origin.Stream);
        // The number JSON.parse reads from the digits Write writes.
        Span<byte> digits = stackalloc byte[20];
        System.Buffers.Text.Utf8Formatter.TryFormat(origin.Sequence, digits, out var written);
        values[i] = JsonToJs.Number(digits[..written]);
        try
        {
            return JsObject.Create(engine, layout, values, evt);
        }
        finally
        {
            values.Clear();
        }
    }

    private static JsObjectLayout Layout(bool withCeSubject)
    {
        var builder = JsObjectLayout.CreateBuilder().Add("id").Add("type").Add("source").Add("subject");
        if (withCeSubject)
        {
            builder.Add("ce_subject");
        }
        return builder.Add("time").Add("tenant").Add("data")
            .AddLazy("headers", static (instance, state) => Headers(instance.Engine, ((SagaEvent)state!).Headers))
            .Add("stream").Add("seq").Build();
    }

    private static JsObject Headers(Engine engine, IReadOnlyDictionary<string, string> headers)
    {
        var pairs = SortedHeaders(headers, out var n);
        var entries = ArrayPool<KeyValuePair<string, JsValue>>.Shared.Rent(Math.Max(n, 1));
        try
        {
            for (var i = 0; i < n; i++)
            {
                entries[i] = new KeyValuePair<string, JsValue>(pairs[i].Key.ToLowerInvariant(), new JsString(pairs[i].Value));
            }
            return JsObject.CreateFromEntries(engine, entries.AsSpan(0, n));
        }
        finally
        {
            ArrayPool<KeyValuePair<string, string>>.Shared.Return(pairs, clearArray: true);
            ArrayPool<KeyValuePair<string, JsValue>>.Shared.Return(entries, clearArray: true);
        }
    }

    /// <summary>The headers in the ordinal order of their names, in a rented array (the caller returns it).</summary>
    private static KeyValuePair<string, string>[] SortedHeaders(IReadOnlyDictionary<string, string> headers, out int n)
    {
        KeyValuePair<string, string>[] pairs;
        if (headers is VisibleHeaders visible)
        {
            // An event's headers as decoded: the view copies what it shows, without an enumerator.
            pairs = ArrayPool<KeyValuePair<string, string>>.Shared.Rent(Math.Max(visible.Capacity, 1));
            n = visible.CopyTo(pairs);
        }
        else
        {
            pairs = ArrayPool<KeyValuePair<string, string>>.Shared.Rent(Math.Max(headers.Count, 1));
            n = 0;
            foreach (var pair in headers)
            {
                pairs[n++] = pair;
            }
        }
        pairs.AsSpan(0, n).Sort(s_byName);
        return pairs;
    }
}
