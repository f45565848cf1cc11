using System.Buffers;
using System.Text;
using System.Text.Json;
using Runner.Core.Events;
using Runner.Core.Transitions;
using Runner.Effects.Providers;

namespace Runner.Effects.Workers;

/// <summary>
/// Builds the result CloudEvent of a command: <c>workflow.evt.{tenant}.{effect}.{succeeded|failed}</c>,
/// id <c>result:{command_id}</c>, data
/// <c>{ command_id, correlation_id, saga, effect, outcome, result | error, attempts, started_at, finished_at }</c>.
/// </summary>
internal static class ResultEvents
{
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string Source = "runner/effects";

    /// <summary>
    /// A result is written into a buffer kept per thread (building it never awaits): a fresh
    /// writer would take 4 KiB (the JSON writer's smallest request) for every command.
    /// </summary>
    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    /// <summary>A buffer grown past this by a large result is not kept.</summary>
    private const int KeptBufferBytes = 64 * 1024;

    public static string Id(string commandId) => "result:" + commandId;

    public static string Subject(string tenant, string effect, bool succeeded) =>
        $"workflow.evt.{tenant}.{effect}.{(succeeded ? Succeeded : Failed)}";

    public static (string Subject, string Json) Build(CommandMessage command, EffectExecution execution, DateTimeOffset startedAt, DateTimeOffset finishedAt)
    {
        var outcome = execution.Succeeded ? Succeeded : Failed;
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(4096);
        buffer.ResetWrittenCount();
        var writer = t_writer ??= new Utf8JsonWriter(buffer);
        writer.Reset(buffer);
        try
        {
            CloudEventEncoder.WriteAttributes(writer, Id(command.CommandId), Source, command.Effect + "." + outcome, finishedAt, command.Tenant, "application/json");
            writer.WriteStartObject("data");
            writer.WriteString("command_id", command.CommandId);
            writer.WriteString("correlation_id", command.CorrelationId);
            writer.WriteString("saga", command.Saga);
            writer.WriteString("effect", command.Effect);
            writer.WriteString("outcome", outcome);
            if (execution.Succeeded)
            {
                writer.WritePropertyName("result");
                writer.WriteRawValue(execution.ResultJson ?? "null");
            }
            else
            {
                var error = execution.Error ?? new EffectError(EffectErrorCodes.ProviderError, "the effect failed without a reason");
                writer.WriteStartObject("error");
                writer.WriteString("code", error.Code);
                writer.WriteString("message", error.Message);
                if (error.Status is { } status)
                {
                    writer.WriteNumber("status", status);
                }
                if (error.DetailsJson is { } details)
                {
                    writer.WritePropertyName("details");
                    writer.WriteRawValue(details);
                }
                writer.WriteEndObject();
            }
            writer.WriteNumber("attempts", execution.Attempts);
            writer.WriteString("started_at", CloudEventEncoder.FormatTime(startedAt));
            writer.WriteString("finished_at", CloudEventEncoder.FormatTime(finishedAt));
            writer.WriteEndObject();
            writer.WriteEndObject();
            writer.Flush();
            return (Subject(command.Tenant, command.Effect, execution.Succeeded), Encoding.UTF8.GetString(buffer.WrittenSpan));
        }
        finally
        {
            if (buffer.Capacity > KeptBufferBytes)
            {
                t_buffer = null;
                t_writer = null;
            }
        }
    }
}
