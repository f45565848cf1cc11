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

    public static string Id(string commandId) => "result:" + commandId;

    public static string Subject(string tenant, string effect, bool succeeded) =>
        $"workflow.evt.{tenant}.{effect}.{(succeeded ? Succeeded : Failed)}";

    /// <summary>The result event's subject and its UTF-8 JSON (what is published and what the claim stores, the same bytes).</summary>
    public static (string Subject, byte[] Event) Build(CommandMessage command, EffectExecution execution, DateTimeOffset startedAt, DateTimeOffset finishedAt)
    {
        // Written with the thread's JSON writer (building it never awaits): a fresh one takes 4 KiB per command.
        var json = Core.Json.ThreadJsonWriter.ToUtf8((command, execution, startedAt, finishedAt), static (writer, input) =>
        {
            var (command, execution, startedAt, finishedAt) = input;
            var outcome = execution.Succeeded ? Succeeded : Failed;
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
            CloudEventEncoder.WriteTime(writer, "started_at", startedAt);
            CloudEventEncoder.WriteTime(writer, "finished_at", finishedAt);
            writer.WriteEndObject();
            writer.WriteEndObject();
        });
        return (Subject(command.Tenant, command.Effect, execution.Succeeded), json);
    }
}
