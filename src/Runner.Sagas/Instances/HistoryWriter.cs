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
    public static string StateHash(string stateJson) => StateHash(System.Text.Encoding.UTF8.GetBytes(stateJson));

    /// <summary>As <see cref="StateHash(string)"/>, from the state's UTF-8 text (the same bytes, so the same hash).</summary>
    public static string StateHash(ReadOnlySpan<byte> stateUtf8)
    {
        Span<char> hex = stackalloc char[StateHashLength];
        return new string(StateHash(stateUtf8, hex));
    }

    private const int StateHashLength = 16;

    /// <summary>As <see cref="StateHash(ReadOnlySpan{byte})"/>, into <paramref name="hex"/> (16 characters) rather than a new text.</summary>
    private static ReadOnlySpan<char> StateHash(ReadOnlySpan<byte> stateUtf8, Span<char> hex)
    {
        Span<byte> hash = stackalloc byte[32];
        System.Security.Cryptography.SHA256.HashData(stateUtf8, hash);
        Convert.TryToHexStringLower(hash[..(StateHashLength / 2)], hex, out var written);
        return hex[..written];
    }

    /// <summary>Puts the step into <paramref name="work"/>'s batch, written into its pooled room.</summary>
    public static void Put(
        Partitions.BatchWork work,
        byte[] key,
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
        string? eventJson) =>
        work.PutJson(Core.Keys.KeySpace.History, key, new Step(version, evt, origin, inboxSequence, inboxMs, manifestHash, compensate, timer, output, commands, eventJson), WriteStep);

    private readonly record struct Step(
        long Version, SagaEvent Event, MessageOrigin Origin, ulong InboxSequence, long InboxMs, string ManifestHash,
        bool Compensate, string? Timer, TransitionOutput Output, IReadOnlyList<CommandMessage> Commands, string? EventJson);

    private static void WriteStep(Utf8JsonWriter writer, Step s)
    {
        writer.WriteStartObject();
        writer.WriteNumber("version", s.Version);
        writer.WriteString("event_id", s.Event.Id);
        writer.WriteString("type", s.Event.Type);
        CloudEventEncoder.WriteTime(writer, "time", s.Event.Time);
        writer.WriteString("stream", s.Origin.Stream);
        writer.WriteNumber("seq", s.Origin.Sequence);
        writer.WriteNumber("inbox_seq", s.InboxSequence);
        writer.WriteNumber("inbox_at", s.InboxMs);
        writer.WriteString("manifest", s.ManifestHash);
        writer.WriteString("handler", s.Compensate ? "compensate" : "on_event");
        if (s.Timer is not null)
        {
            writer.WriteString("timer", s.Timer);
        }
        writer.WriteStartArray("commands");
        // The lists are read by index: a foreach over the interface boxes an enumerator, for each step.
        for (var i = 0; i < s.Commands.Count; i++)
        {
            var command = s.Commands[i];
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
        for (var i = 0; i < s.Output.Schedules.Count; i++)
        {
            var schedule = s.Output.Schedules[i];
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
        for (var i = 0; i < s.Output.Cancel.Count; i++)
        {
            writer.WriteStringValue(s.Output.Cancel[i]);
        }
        writer.WriteEndArray();
        writer.WriteBoolean("done", s.Output.Done);
        var state = System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(s.Output.State);
        Span<char> hash = stackalloc char[StateHashLength];
        writer.WriteString("state_hash", StateHash(state, hash));
        writer.WritePropertyName("state");
        writer.WriteRawValue(state, skipInputValidation: true);
        writer.WritePropertyName("event");
        if (s.EventJson is null)
        {
            // The script's event argument, written from the event as the script got it.
            Scripting.EventArgument.Write(writer, s.Event, s.Origin);
        }
        else
        {
            writer.WriteRawValue(s.EventJson, skipInputValidation: true);
        }
        writer.WriteEndObject();
    }
}
