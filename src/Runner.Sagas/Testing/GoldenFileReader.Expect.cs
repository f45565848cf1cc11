using System.Text.Json;

namespace Runner.Sagas.Testing;

internal static partial class GoldenFileReader
{
    private static readonly HashSet<string> s_expectFields = ["state", "commands", "schedules", "cancel", "done", "error"];
    private static readonly HashSet<string> s_commandFields = ["effect", "payload", "id", "pool"];
    private static readonly HashSet<string> s_scheduleFields = ["name", "due_ms", "after_ms", "deadline", "payload"];

    /// <summary>A step's <c>expect</c> as an outcome holding only what is to be checked; <c>after_ms</c> is resolved against the event's time.</summary>
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
            var effect = OptionalText(command, "effect", where, at, errors);
            if (effect is null)
            {
                errors.Add($"{at}: {where}.effect is required");
                continue;
            }
            var payload = command.TryGetProperty("payload", out var p) ? p.GetRawText() : "null";
            var checkPool = command.TryGetProperty("pool", out _);
            result.Add(new OutcomeCommand(effect, payload, OptionalText(command, "id", where, at, errors), OptionalText(command, "pool", where, at, errors), checkPool));
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
            var name = OptionalText(schedule, "name", where, at, errors);
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
