using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Runner.Core.Transitions;

namespace Runner.Sagas.Testing;

/// <summary>
/// Writes history steps as a JSONL golden file: a header line, then per step the exact script
/// event and everything the step did (state, commands with ids and pools, timers with payloads,
/// cancels, done), so a test of the file checks all of it. Text is written as it is, not
/// \u-escaped: the file is for people to read and diff.
/// </summary>
internal static class GoldenFileWriter
{
    /// <summary>A recorded history: the file's text, the step whose state it starts from (null: version 1, a new instance), and how many steps it holds.</summary>
    public sealed record Recording(string Jsonl, HistoryStep? From, int Steps);

    /// <summary>
    /// Records the kept steps (oldest first) a replay can start from: all of them when they go
    /// back to version 1; else (history is bounded) the first step of the newest unbroken run,
    /// whose state becomes the file's <c>initial_state</c>, and the steps after it.
    /// </summary>
    public static Recording Record(string saga, string tenant, string key, IReadOnlyList<HistoryStep> history)
    {
        var start = 0;
        for (var i = 1; i < history.Count; i++)
        {
            if (history[i].Version != history[i - 1].Version + 1)
            {
                start = i;
            }
        }
        var from = history.Count == 0 || history[start].Version == 1 ? null : history[start];
        var steps = history.Skip(from is null ? start : start + 1).ToList();
        return new Recording(Jsonl(saga, tenant, key, from?.State, steps), from, steps.Count);
    }

    public static string Jsonl(string saga, string tenant, string key, JsonElement? initialState, IEnumerable<HistoryStep> steps)
    {
        var text = new StringBuilder();
        text.Append(Line(writer =>
        {
            writer.WriteStartObject();
            writer.WriteString("saga", saga);
            writer.WriteString("tenant", tenant);
            writer.WriteString("key", key);
            if (initialState is { } state)
            {
                writer.WritePropertyName("initial_state");
                state.WriteTo(writer);
            }
            writer.WriteEndObject();
        }));
        foreach (var step in steps)
        {
            text.Append(Line(writer => WriteStep(writer, step)));
        }
        return text.ToString();
    }

    private static void WriteStep(Utf8JsonWriter writer, HistoryStep step)
    {
        writer.WriteStartObject();
        writer.WritePropertyName("event");
        step.Event.WriteTo(writer);
        writer.WriteStartObject("expect");
        writer.WritePropertyName("state");
        step.State.WriteTo(writer);
        writer.WriteStartArray("commands");
        foreach (var command in step.Commands)
        {
            writer.WriteStartObject();
            writer.WriteString("id", command.Id);
            writer.WriteString("effect", command.Effect);
            // Written even when null: "no pool" is then checked too.
            writer.WriteString("pool", command.Pool);
            writer.WritePropertyName("payload");
            command.Payload.WriteTo(writer);
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
        writer.WriteStartArray("schedules");
        foreach (var timer in step.Schedules)
        {
            writer.WriteStartObject();
            writer.WriteString("name", timer.Name);
            writer.WriteNumber("due_ms", timer.DueMs);
            writer.WriteBoolean("deadline", timer.Deadline);
            writer.WritePropertyName("payload");
            if (timer.Payload is { } payload)
            {
                payload.WriteTo(writer);
            }
            else
            {
                writer.WriteNullValue();
            }
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
        writer.WriteStartArray("cancel");
        foreach (var name in step.Cancel)
        {
            writer.WriteStringValue(name);
        }
        writer.WriteEndArray();
        writer.WriteBoolean("done", step.Done);
        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    private static string Line(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            write(writer);
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan) + "\n";
    }
}
