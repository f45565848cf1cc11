using System.Globalization;
using System.Text.Json;
using Runner.Core.Events;
using Runner.Sagas.Partitions;

namespace Runner.Sagas.Testing;

/// <summary>
/// One event as a saga script receives it: <see cref="Json"/> is the script's <c>event</c>
/// argument, exactly as the worker builds it (and as history stores it); the other fields are what
/// the worker reads next to it (the id for command ids, the time for <c>ctx.now</c>, where it came
/// from for the handler).
/// </summary>
internal sealed record StepEvent(string Json, string Id, string Type, string Tenant, long TimeMs, MessageOrigin Origin, string DataJson)
{
    /// <summary>A decoded event, turned into the script's argument by the worker's own code.</summary>
    public static StepEvent From(SagaEvent evt) =>
        new(Scripting.EventArgument.Json(evt, evt.Origin), evt.Id, evt.Type, evt.Tenant, evt.TimeMs, evt.Origin, evt.DataJson);

    /// <summary>
    /// A script event object as history stores it (<c>{ id, type, source, subject, time, tenant,
    /// data, headers, stream, seq }</c>), taken as it is; null and <paramref name="error"/> when a
    /// field the worker relies on is missing or malformed.
    /// </summary>
    public static StepEvent? FromScriptEvent(JsonElement evt, out string? error)
    {
        error = null;
        if (evt.ValueKind != JsonValueKind.Object)
        {
            error = "event must be an object";
            return null;
        }
        var id = Text(evt, "id");
        var type = Text(evt, "type");
        var tenant = Text(evt, "tenant");
        var stream = Text(evt, "stream");
        var subject = Text(evt, "subject");
        var time = Text(evt, "time");
        var missing = id is null ? "id" : type is null ? "type" : tenant is null ? "tenant" : stream is null ? "stream" : subject is null ? "subject" : time is null ? "time" : null;
        if (missing is not null)
        {
            error = $"event.{missing} must be a non-empty string";
            return null;
        }
        if (!evt.TryGetProperty("seq", out var seqElement) || !seqElement.TryGetUInt64(out var seq))
        {
            error = "event.seq must be a non-negative integer";
            return null;
        }
        if (!evt.TryGetProperty("data", out var data))
        {
            error = "event.data is missing (null when the event has none)";
            return null;
        }
        if (!TryParseTime(time!, out var at))
        {
            error = $"event.time is not an RFC 3339 timestamp: '{time}'";
            return null;
        }
        return new StepEvent(evt.GetRawText(), id!, type!, tenant!, at.ToUnixTimeMilliseconds(), new MessageOrigin(stream!, seq, subject!, at), data.GetRawText());
    }

    public static bool TryParseTime(string text, out DateTimeOffset time) =>
        DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out time);

    private static string? Text(JsonElement evt, string name) =>
        evt.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 } text ? text : null;
}
