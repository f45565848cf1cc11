using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Runner.Core.Events;
using Runner.Messaging;
using Runner.Scripting;

namespace Runner.Sagas.Testing;

internal static partial class GoldenFileReader
{
    /// <summary>A short-form event without a time is at this instant plus its step's number in seconds: deterministic, and in order.</summary>
    public static readonly DateTimeOffset Epoch = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static readonly HashSet<string> s_stepFields = ["event", "handler", "expect", "description"];
    private static readonly HashSet<string> s_shortEventFields = ["type", "data", "id", "time", "subject", "ce_subject", "stream", "source", "headers", "seq"];

    /// <summary>What short-form events are filled in from.</summary>
    private sealed record StepContext(string Saga, string Tenant, string Key, StreamNames Streams);

    private static GoldenStep? ReadStep(JsonElement step, int number, int line, StepContext context, string at, List<string> errors)
    {
        if (step.ValueKind != JsonValueKind.Object)
        {
            errors.Add($"{at}: a step is an object {{event, expect}}");
            return null;
        }
        var before = errors.Count;
        Unknown(step, s_stepFields, "step", at, errors);
        ScriptHandler? handler = null;
        if (OptionalText(step, "handler", "step", at, errors) is { } name)
        {
            handler = name switch
            {
                "on_event" => ScriptHandler.OnEvent,
                "compensate" => ScriptHandler.Compensate,
                _ => null,
            };
            if (handler is null)
            {
                errors.Add($"{at}: handler must be on_event or compensate");
            }
        }
        StepEvent? evt = null;
        if (!step.TryGetProperty("event", out var eventElement) || eventElement.ValueKind != JsonValueKind.Object)
        {
            errors.Add($"{at}: 'event' must be an object: a short form {{type, data, ...}} or a full script event (with 'tenant')");
        }
        else
        {
            evt = eventElement.TryGetProperty("tenant", out _) ? FullEvent(eventElement, context, at, errors) : ShortEvent(eventElement, number, context, at, errors);
        }
        // The expectations are checked even when the event is wrong, so every problem shows at once.
        var expect = step.TryGetProperty("expect", out var expectElement) ? ReadExpect(expectElement, evt?.TimeMs ?? 0, at, errors) : new StepOutcome();
        return errors.Count == before && evt is not null && expect is not null ? new GoldenStep(number, line, evt, handler, expect) : null;
    }

    private static StepEvent? FullEvent(JsonElement element, StepContext context, string at, List<string> errors)
    {
        var evt = StepEvent.FromScriptEvent(element, out var error);
        if (evt is null)
        {
            errors.Add($"{at}: {error}");
            return null;
        }
        if (!string.Equals(evt.Tenant, context.Tenant, StringComparison.Ordinal))
        {
            errors.Add($"{at}: event.tenant '{evt.Tenant}' is not the file's tenant '{context.Tenant}'");
            return null;
        }
        return evt;
    }

    /// <summary>
    /// <c>{type, data?, id?, time?, subject?, ce_subject?, stream?, source?, headers?, seq?}</c>, filled in
    /// deterministically and then built into the script's argument by the worker's own code.
    /// </summary>
    private static StepEvent? ShortEvent(JsonElement element, int number, StepContext context, string at, List<string> errors)
    {
        var before = errors.Count;
        foreach (var property in element.EnumerateObject())
        {
            if (!s_shortEventFields.Contains(property.Name))
            {
                errors.Add($"{at}: event: unknown field '{property.Name}' (a short event has {string.Join(", ", s_shortEventFields)}; a full script event has a 'tenant')");
            }
        }
        var type = OptionalText(element, "type", "event", at, errors);
        if (type is null)
        {
            if (!element.TryGetProperty("type", out _))
            {
                errors.Add($"{at}: event.type is required");
            }
            return null;
        }
        var time = Epoch.AddSeconds(number);
        if (element.TryGetProperty("time", out var timeElement))
        {
            if (timeElement.ValueKind == JsonValueKind.Number && timeElement.TryGetInt64(out var ms) && ms >= 0)
            {
                time = DateTimeOffset.FromUnixTimeMilliseconds(ms);
            }
            else if (timeElement.ValueKind != JsonValueKind.String || !StepEvent.TryParseTime(timeElement.GetString()!, out time))
            {
                errors.Add($"{at}: event.time must be an RFC 3339 timestamp or Unix milliseconds");
            }
        }
        ulong seq = (ulong)number;
        if (element.TryGetProperty("seq", out var seqElement) && !seqElement.TryGetUInt64(out seq))
        {
            errors.Add($"{at}: event.seq must be a non-negative integer");
        }
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        if (element.TryGetProperty("headers", out var headersElement))
        {
            if (headersElement.ValueKind != JsonValueKind.Object)
            {
                errors.Add($"{at}: event.headers must be an object of strings");
            }
            else
            {
                foreach (var header in headersElement.EnumerateObject())
                {
                    if (header.Value.ValueKind == JsonValueKind.String)
                    {
                        headers[header.Name] = header.Value.GetString()!;
                    }
                    else
                    {
                        errors.Add($"{at}: event.headers.{header.Name} must be a string");
                    }
                }
            }
        }
        // The router sets tenant-id on every inbox message: a live event always has it.
        headers[EventHeaders.TenantId] = context.Tenant;

        var id = OptionalText(element, "id", "event", at, errors) ?? "e-" + number.ToString(CultureInfo.InvariantCulture);
        var stream = OptionalText(element, "stream", "event", at, errors) ?? (type == TimerEvents.Type ? context.Streams.WorkflowEvents : context.Streams.AggregateEvents);
        var subject = OptionalText(element, "subject", "event", at, errors) ?? DefaultSubject(context, stream, type);
        var source = OptionalText(element, "source", "event", at, errors) ?? "test";
        var ceSubject = OptionalText(element, "ce_subject", "event", at, errors);
        var data = element.TryGetProperty("data", out var dataElement) ? JsonMarshal.GetRawUtf8Value(dataElement).ToArray() : "null"u8.ToArray();
        if (errors.Count > before)
        {
            return null;
        }
        var origin = new MessageOrigin(stream, seq, subject, time);
        return StepEvent.From(new SagaEvent(id, type, source, ceSubject, time, context.Tenant, null, data, headers, origin));
    }

    /// <summary>The subject a live event of this type would have arrived on, for the file's tenant, saga and key.</summary>
    private static string DefaultSubject(StepContext context, string stream, string type)
    {
        if (string.Equals(stream, context.Streams.WorkflowEvents, StringComparison.Ordinal))
        {
            return type == TimerEvents.Type ? Core.Subjects.Subjects.Timer(context.Tenant, context.Saga) : $"workflow.evt.{context.Tenant}.{type}";
        }
        return string.Equals(stream, context.Streams.PipelineEvents, StringComparison.Ordinal)
            ? $"pipeline.{context.Tenant}.{context.Saga}.{type}"
            : $"aggregate.{context.Tenant}.{context.Saga}.{context.Key}.{type}";
    }
}
