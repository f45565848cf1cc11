using System.Buffers;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Runner.Core.Keys;
using Runner.Core.Transitions;

namespace Runner.Core.Events;

/// <summary>What a timer looks like on the wire, in WORKFLOW_EVENTS (docs/contracts.md §8).</summary>
internal readonly record struct TimerData(string Key, string Name, long DueMs, long Generation, bool Deadline);

/// <summary>
/// The <c>timer.fired</c> CloudEvent the scheduler publishes for a stored schedule item, and how a
/// partition worker reads one back. Everything in it comes from the stored record, so a timer
/// published twice (a crash between its PubAck and the delete) is the same event with the same id.
/// </summary>
internal static class TimerEvents
{
    public const string Type = "timer.fired";
    public const string Source = "runner/scheduler";

    /// <summary>
    /// <c>timer:{tenant}:{saga}:{key}:{name}:{due_ms}:{gen}</c>: one id per setting of a timer (the
    /// generation is the instance version that set it, so setting a timer again at the same due
    /// time makes a new event, not a duplicate). Two cases use a digest of the timer instead,
    /// <c>timer:sha256:{40 hex}:{due_ms}:{gen}</c>: an id longer than
    /// an event id may be (256, it is a key component), and a tenant, key or name holding a
    /// <c>:</c>, where the plain form would be ambiguous (key <c>a:b</c> with name <c>c</c> against
    /// key <c>a</c> with name <c>b:c</c>) and the second timer would be dropped as a duplicate.
    /// </summary>
    public static string Id(ScheduleRecord record)
    {
        var id = string.Create(CultureInfo.InvariantCulture, $"timer:{record.Tenant}:{record.Saga}:{record.Key}:{record.Name}:{record.DueMs}:{record.Generation}");
        if (StoreKeys.IsValidComponent(id) && id.Count(c => c == ':') == 6)
        {
            return id;
        }
        var identity = Encoding.UTF8.GetBytes(string.Join(StoreKeys.Separator, record.Tenant, record.Saga, record.Key, record.Name));
        return string.Create(CultureInfo.InvariantCulture, $"timer:sha256:{Convert.ToHexStringLower(SHA256.HashData(identity))[..40]}:{record.DueMs}:{record.Generation}");
    }

    /// <summary>Structured-mode CloudEvents JSON. <c>time</c> is the due time, so <c>ctx.now</c> is the same on every replica.</summary>
    public static byte[] Body(ScheduleRecord record)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            CloudEventEncoder.WriteAttributes(writer, Id(record), Source, Type, DateTimeOffset.FromUnixTimeMilliseconds(record.DueMs), record.Tenant, dataContentType: null);
            writer.WriteStartObject("data");
            writer.WriteString("saga", record.Saga);
            writer.WriteString("key", record.Key);
            writer.WriteString("name", record.Name);
            writer.WriteNumber("due_ms", record.DueMs);
            writer.WriteNumber("gen", record.Generation);
            writer.WriteBoolean("deadline", record.Deadline);
            writer.WritePropertyName("payload");
            if (record.Payload is { } payload)
            {
                payload.WriteTo(writer);
            }
            else
            {
                writer.WriteNullValue();
            }
            writer.WriteEndObject();
            writer.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Reads <c>data</c> of a timer event; false when it lacks a valid key, name or due time.</summary>
    public static bool TryReadData(string dataJson, out TimerData data) =>
        TryReadData(System.Text.Encoding.UTF8.GetBytes(dataJson), out data);

    /// <summary>Reads a timer event's data from its UTF-8 JSON.</summary>
    public static bool TryReadData(ReadOnlyMemory<byte> dataJson, out TimerData data)
    {
        data = default;
        try
        {
            using var doc = JsonDocument.Parse(dataJson);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("key", out var key) || key.ValueKind != JsonValueKind.String
                || !root.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String
                || !root.TryGetProperty("due_ms", out var due) || !due.TryGetInt64(out var dueMs))
            {
                return false;
            }
            var deadline = root.TryGetProperty("deadline", out var flag) && flag.ValueKind == JsonValueKind.True;
            var generation = root.TryGetProperty("gen", out var gen) && gen.TryGetInt64(out var genValue) ? genValue : 0;
            var keyText = key.GetString()!;
            var nameText = name.GetString()!;
            if (!StoreKeys.IsValidComponent(keyText) || !StoreKeys.IsValidComponent(nameText))
            {
                return false;
            }
            data = new TimerData(keyText, nameText, dueMs, generation, deadline);
            return true;
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            return false;
        }
    }
}
