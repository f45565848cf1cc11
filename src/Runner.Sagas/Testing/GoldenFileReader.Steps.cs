using System.Globalization;
using System.Text.Json;
using Runner.Core.Events;
using Runner.Messaging;
using Runner.Scripting;

namespace Runner.Sagas.Testing;

internal static partial class GoldenFileReader
{
    /// <summary>Short-form events without a time are this many seconds after it, one per step: deterministic, and in order.</summary>
    public static readonly DateTimeOffset Epoch = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static readonly HashSet<string> s_stepFields = ["event", "handler", "expect", "description"];
    private static readonly HashSet<string> s_shortEventFields = ["type", "data", "id", "time", "subject", "ce_subject", "stream", "source", "headers", "seq"];
    private static readonly HashSet<string> s_expectFields = ["state", "commands", "schedules", "cancel", "done", "error"];
    private static readonly HashSet<string> s_commandFields = ["effect", "payload", "id", "pool"];
    private static readonly HashSet<string> s_scheduleFields = ["name", "due_ms", "after_ms", "deadline", "payload"];

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
        if (String(step, "handler", "step", at, errors) is { } name)
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
        var type = String(element, "type", "event", at, errors);
        if (type is null)
        {
            errors.Add($"{at}: event.type is required");
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

        var id = String(element, "id", "event", at, errors) ?? "e-" + number.ToString(CultureInfo.InvariantCulture);
        var stream = String(element, "stream", "event", at, errors) ?? (type == TimerEvents.Type ? context.Streams.WorkflowEvents : context.Streams.AggregateEvents);
        var subject = String(element, "subject", "event", at, errors) ?? DefaultSubject(context, stream, type);
        var source = String(element, "source", "event", at, errors) ?? "test";
        var ceSubject = String(element, "ce_subject", "event", at, errors);
        var data = element.TryGetProperty("data", out var dataElement) ? dataElement.GetRawText() : "null";
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

    private static StepOutcome? ReadExpect(JsonElement expect, long eventTimeMs, string at, List<string> errors)
    {
        if (expect.ValueKind != JsonValueKind.Object)
        {
            errors.Add($"{at}: 'expect' must be an object with any of {string.Join(", ", s_expectFields)}");
            return null;
        }
        var before = errors.Count;
        Unknown(expect, s_expectFields, "expect", at, errors);
        if (expect.TryGetProperty("error", out var error))
        {
            if (error.ValueKind != JsonValueKind.String || error.GetString() is not { Length: > 0 } code)
            {
                errors.Add($"{at}: expect.error must be a quarantine reason code, e.g. script_error");
                return null;
            }
            if (expect.EnumerateObject().Count() > 1)
            {
                errors.Add($"{at}: expect.error stands alone: a refused event changes nothing else");
                return null;
            }
            return StepOutcome.Failed(code, string.Empty);
        }
        bool? done = null;
        if (expect.TryGetProperty("done", out var doneElement))
        {
            if (doneElement.ValueKind is JsonValueKind.True or JsonValueKind.False)
            {
                done = doneElement.GetBoolean();
            }
            else
            {
                errors.Add($"{at}: expect.done must be true or false");
            }
        }
        List<string>? cancel = null;
        if (expect.TryGetProperty("cancel", out var cancelElement))
        {
            cancel = [];
            if (cancelElement.ValueKind != JsonValueKind.Array)
            {
                errors.Add($"{at}: expect.cancel must be a list of timer names");
            }
            else
            {
                foreach (var item in cancelElement.EnumerateArray())
                {
                    if (item.ValueKind == JsonValueKind.String)
                    {
                        cancel.Add(item.GetString()!);
                    }
                    else
                    {
                        errors.Add($"{at}: expect.cancel must be a list of timer names");
                    }
                }
            }
        }
        var outcome = new StepOutcome
        {
            StateJson = expect.TryGetProperty("state", out var state) ? state.GetRawText() : null,
            Commands = expect.TryGetProperty("commands", out var commands) ? ReadCommands(commands, at, errors) : null,
            Schedules = expect.TryGetProperty("schedules", out var schedules) ? ReadSchedules(schedules, eventTimeMs, at, errors) : null,
            Cancel = cancel,
            Done = done,
        };
        return errors.Count == before ? outcome : null;
    }

    private static List<OutcomeCommand> ReadCommands(JsonElement commands, string at, List<string> errors)
    {
        var result = new List<OutcomeCommand>();
        if (commands.ValueKind != JsonValueKind.Array)
        {
            errors.Add($"{at}: expect.commands must be a list");
            return result;
        }
        var index = 0;
        foreach (var command in commands.EnumerateArray())
        {
            var where = $"expect.commands[{index++}]";
            if (command.ValueKind != JsonValueKind.Object)
            {
                errors.Add($"{at}: {where} must be an object {{effect, payload, id?, pool?}}");
                continue;
            }
            Unknown(command, s_commandFields, where, at, errors);
            var effect = String(command, "effect", where, at, errors);
            if (effect is null)
            {
                errors.Add($"{at}: {where}.effect is required");
                continue;
            }
            var payload = command.TryGetProperty("payload", out var p) ? p.GetRawText() : "null";
            var checkPool = command.TryGetProperty("pool", out _);
            result.Add(new OutcomeCommand(effect, payload, String(command, "id", where, at, errors), String(command, "pool", where, at, errors), checkPool));
        }
        return result;
    }

    private static List<OutcomeTimer> ReadSchedules(JsonElement schedules, long eventTimeMs, string at, List<string> errors)
    {
        var result = new List<OutcomeTimer>();
        if (schedules.ValueKind != JsonValueKind.Array)
        {
            errors.Add($"{at}: expect.schedules must be a list");
            return result;
        }
        var index = 0;
        foreach (var schedule in schedules.EnumerateArray())
        {
            var where = $"expect.schedules[{index++}]";
            if (schedule.ValueKind != JsonValueKind.Object)
            {
                errors.Add($"{at}: {where} must be an object {{name, due_ms | after_ms, deadline?, payload?}}");
                continue;
            }
            Unknown(schedule, s_scheduleFields, where, at, errors);
            var name = String(schedule, "name", where, at, errors);
            long? due = schedule.TryGetProperty("due_ms", out var d) && d.TryGetInt64(out var dueMs) && dueMs >= 0 ? dueMs : null;
            long? after = schedule.TryGetProperty("after_ms", out var a) && a.TryGetInt64(out var afterMs) && afterMs >= 0 ? afterMs : null;
            if (name is null || (due is null) == (after is null))
            {
                errors.Add($"{at}: {where} needs a name and exactly one of due_ms (Unix ms) or after_ms (after the event's time), non-negative integers");
                continue;
            }
            bool? deadline = null;
            if (schedule.TryGetProperty("deadline", out var flag))
            {
                if (flag.ValueKind is JsonValueKind.True or JsonValueKind.False)
                {
                    deadline = flag.GetBoolean();
                }
                else
                {
                    errors.Add($"{at}: {where}.deadline must be true or false");
                }
            }
            var payload = schedule.TryGetProperty("payload", out var p) ? p.GetRawText() : null;
            result.Add(new OutcomeTimer(name, due ?? eventTimeMs + after!.Value, deadline, payload));
        }
        return result;
    }
}
