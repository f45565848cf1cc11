using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Runner.Core.Events;
using Runner.Core.Transitions;

namespace Runner.Sagas.Instances;

/// <summary>
/// Writes one history step (the shape of <see cref="HistoryStep"/>) straight from the transition's
/// own strings: the event input, the state and the payloads are already JSON and go in raw.
/// Everything in a step comes from the log and the script, never from a clock, so a replay on
/// another replica writes the same bytes.
/// </summary>
internal static class HistoryWriter
{
    /// <summary>First 16 hex characters of the SHA-256 of the state JSON as the script returned it.</summary>
    public static string StateHash(string stateJson)
    {
        var bytes = Encoding.UTF8.GetBytes(stateJson);
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(bytes, hash);
        return Convert.ToHexStringLower(hash[..8]);
    }

    public static byte[] Write(
        long version,
        SagaEvent evt,
        MessageOrigin origin,
        ulong inboxSequence,
        long inboxMs,
        string manifestHash,
        bool compensate,
        string? timer,
        TransitionOutput output,
        IReadOnlyList<CommandMessage> commands,
        string eventJson)
    {
        var buffer = new ArrayBufferWriter<byte>(512 + eventJson.Length + output.StateJson.Length);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteNumber("version", version);
            writer.WriteString("event_id", evt.Id);
            writer.WriteString("type", evt.Type);
            writer.WriteString("time", CloudEventEncoder.FormatTime(evt.Time));
            writer.WriteString("stream", origin.Stream);
            writer.WriteNumber("seq", origin.Sequence);
            writer.WriteNumber("inbox_seq", inboxSequence);
            writer.WriteNumber("inbox_at", inboxMs);
            writer.WriteString("manifest", manifestHash);
            writer.WriteString("handler", compensate ? "compensate" : "on_event");
            if (timer is not null)
            {
                writer.WriteString("timer", timer);
            }
            writer.WriteStartArray("commands");
            foreach (var command in commands)
            {
                writer.WriteStartObject();
                writer.WriteString("id", command.CommandId);
                writer.WriteString("effect", command.Effect);
                if (command.Pool is not null)
                {
                    writer.WriteString("pool", command.Pool);
                }
                writer.WritePropertyName("payload");
                command.Payload.WriteTo(writer);
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteStartArray("schedules");
            foreach (var schedule in output.Schedules)
            {
                writer.WriteStartObject();
                writer.WriteString("name", schedule.Name);
                writer.WriteNumber("due_ms", schedule.DueMs);
                if (schedule.Deadline)
                {
                    writer.WriteBoolean("deadline", true);
                }
                if (schedule.PayloadJson is not null)
                {
                    writer.WritePropertyName("payload");
                    writer.WriteRawValue(schedule.PayloadJson, skipInputValidation: true);
                }
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteStartArray("cancel");
            foreach (var name in output.Cancel)
            {
                writer.WriteStringValue(name);
            }
            writer.WriteEndArray();
            writer.WriteBoolean("done", output.Done);
            writer.WriteString("state_hash", StateHash(output.StateJson));
            writer.WritePropertyName("state");
            writer.WriteRawValue(output.StateJson, skipInputValidation: true);
            writer.WritePropertyName("event");
            writer.WriteRawValue(eventJson, skipInputValidation: true);
            writer.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }
}
