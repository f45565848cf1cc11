using System.Text.Json;
using Runner.Core.Keys;
using Runner.Core.Subjects;

namespace Runner.Core.Transitions;

/// <summary>
/// Checks a script's JSON result against the transition contract:
/// <c>{ state, commands: [{ effect, id?, payload, pool? }], schedules: [{ name, at | after_ms, payload?, deadline? }], cancel: [name], done }</c>.
/// Anything else is a contract violation with a precise message.
/// </summary>
internal static class TransitionOutputParser
{
    public const int MaxCommands = 1_000;
    public const int MaxSchedules = 1_000;

    /// <summary>
    /// The latest due time a timer may have: 9999-12-31T23:59:59.999Z, the last instant a
    /// CloudEvents time can name, and within the 15 digits schedule keys sort by.
    /// </summary>
    public const long MaxDueMs = 253_402_300_799_999;

    /// <summary>Checks a result given as text (the test tools' form); see the UTF-8 overload.</summary>
    public static bool TryParse(string json, long nowMs, out TransitionOutput? output, out string? error) =>
        TryParse(json, nowMs, new System.Buffers.ArrayBufferWriter<byte>(), out output, out error);

    /// <summary>
    /// Checks a result given as text, its UTF-8 written into <paramref name="room"/> (what was there before is
    /// dropped; the result keeps nothing of it). Strict: text that is not valid Unicode is a violation, not replaced.
    /// </summary>
    public static bool TryParse(string json, long nowMs, System.Buffers.ArrayBufferWriter<byte> room, out TransitionOutput? output, out string? error)
    {
        room.ResetWrittenCount();
        try
        {
            room.Advance(Json.StrictUtf8.Encoding.GetBytes(json, room.GetSpan(Json.StrictUtf8.Encoding.GetMaxByteCount(json.Length))));
        }
        catch (ArgumentException ex)
        {
            output = null;
            error = $"result contains a string that is not valid Unicode (a split surrogate pair?): {ex.Message}";
            return false;
        }
        return TryParse(room.WrittenSpan, nowMs, out output, out error);
    }

    /// <summary>
    /// Checks a result given as UTF-8 JSON. The result is read into one document of its own (a copy of
    /// <paramref name="utf8"/>, which the caller may then reuse); the state and each command's payload
    /// are elements of it, not copies of their own.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> utf8, long nowMs, out TransitionOutput? output, out string? error)
    {
        output = null;
        JsonElement root;
        try
        {
            var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = 64 });
            root = JsonElement.ParseValue(ref reader);
            // Past the value the reader finds only the end, or throws for anything but spaces.
            _ = reader.Read();
        }
        catch (JsonException ex)
        {
            error = $"result is not JSON-serializable: {ex.Message}";
            return false;
        }
        try
        {
            return TryRead(root, nowMs, out output, out error);
        }
        catch (InvalidOperationException ex)
        {
            error = $"result contains a string that is not valid Unicode (a split surrogate pair?): {ex.Message}";
            return false;
        }
    }

    private static bool TryRead(JsonElement root, long nowMs, out TransitionOutput? output, out string? error)
    {
        output = null;
        {
            if (root.ValueKind != JsonValueKind.Object)
            {
                error = "on_event must return an object { state, commands, schedules, cancel, done }";
                return false;
            }
            foreach (var property in root.EnumerateObject())
            {
                if (!(property.NameEquals("state"u8) || property.NameEquals("commands"u8) || property.NameEquals("schedules"u8)
                    || property.NameEquals("cancel"u8) || property.NameEquals("done"u8)))
                {
                    error = $"result has unknown field '{property.Name}'";
                    return false;
                }
            }

            var state = root.TryGetProperty("state", out var stateElement) ? stateElement : Json.JsonNull.Element;
            var done = false;
            if (root.TryGetProperty("done", out var doneElement))
            {
                if (doneElement.ValueKind is not (JsonValueKind.True or JsonValueKind.False or JsonValueKind.Null))
                {
                    error = "'done' must be a boolean";
                    return false;
                }
                done = doneElement.ValueKind == JsonValueKind.True;
            }

            if (!TryCommands(root, out var commands, out error)
                || !TrySchedules(root, nowMs, out var schedules, out error)
                || !TryCancel(root, out var cancel, out error))
            {
                return false;
            }
            output = new TransitionOutput(state, commands, schedules, cancel, done);
            return true;
        }
    }

    private static bool TryCommands(JsonElement root, out List<CommandRequest> commands, out string? error)
    {
        commands = [];
        error = null;
        if (!TryArray(root, "commands", MaxCommands, out var array, out error) || array is null)
        {
            return error is null;
        }
        var index = 0;
        foreach (var item in array.Value.EnumerateArray())
        {
            var where = new Where("commands", index++);
            if (item.ValueKind != JsonValueKind.Object)
            {
                error = $"{where} must be an object";
                return false;
            }
            string? effect = null, id = null, pool = null;
            var payload = Json.JsonNull.Element;
            foreach (var property in item.EnumerateObject())
            {
                if (property.NameEquals("effect"u8))
                {
                    effect = StringOrNull(property.Value);
                }
                else if (property.NameEquals("id"u8))
                {
                    id = StringOrNull(property.Value);
                }
                else if (property.NameEquals("pool"u8))
                {
                    pool = StringOrNull(property.Value);
                }
                else if (property.NameEquals("payload"u8))
                {
                    payload = property.Value;
                }
                else
                {
                    error = $"{where} has unknown field '{property.Name}'";
                    return false;
                }
            }
            if (string.IsNullOrEmpty(effect) || SubjectPattern.Validate(effect, allowWildcards: false) is not null)
            {
                error = $"{where}.effect must be a subject-safe name (letters, digits, '-', '_', '.')";
                return false;
            }
            if (id is not null && !StoreKeys.IsValidComponent(id))
            {
                error = $"{where}.id must be a non-empty string of at most 256 characters";
                return false;
            }
            if (pool is not null && SubjectPattern.Validate(pool, allowWildcards: false) is not null)
            {
                error = $"{where}.pool must be a subject-safe token";
                return false;
            }
            commands.Add(new CommandRequest(effect, id, payload, pool));
        }
        return true;
    }

    private static bool TrySchedules(JsonElement root, long nowMs, out List<ScheduleRequest> schedules, out string? error)
    {
        schedules = [];
        error = null;
        if (!TryArray(root, "schedules", MaxSchedules, out var array, out error) || array is null)
        {
            return error is null;
        }
        var index = 0;
        foreach (var item in array.Value.EnumerateArray())
        {
            var where = new Where("schedules", index++);
            if (item.ValueKind != JsonValueKind.Object)
            {
                error = $"{where} must be an object";
                return false;
            }
            string? name = null, payload = null;
            long? at = null, after = null;
            var deadline = false;
            foreach (var property in item.EnumerateObject())
            {
                if (property.NameEquals("name"u8))
                {
                    name = StringOrNull(property.Value);
                }
                else if (property.NameEquals("at"u8))
                {
                    at = Int64OrNull(property.Value);
                }
                else if (property.NameEquals("after_ms"u8))
                {
                    after = Int64OrNull(property.Value);
                }
                else if (property.NameEquals("payload"u8))
                {
                    payload = property.Value.GetRawText();
                }
                else if (property.NameEquals("deadline"u8))
                {
                    if (property.Value.ValueKind is not (JsonValueKind.True or JsonValueKind.False or JsonValueKind.Null))
                    {
                        error = $"{where}.deadline must be a boolean";
                        return false;
                    }
                    deadline = property.Value.ValueKind == JsonValueKind.True;
                }
                else
                {
                    error = $"{where} has unknown field '{property.Name}'";
                    return false;
                }
            }
            if (name is null || !StoreKeys.IsValidComponent(name))
            {
                error = $"{where}.name must be a non-empty string";
                return false;
            }
            if ((at is null) == (after is null))
            {
                error = $"{where} needs exactly one of 'at' (epoch ms) or 'after_ms' (a non-negative integer)";
                return false;
            }
            if (after is < 0 || at is < 0)
            {
                error = $"{where}: times must not be negative";
                return false;
            }
            var due = at ?? nowMs + after!.Value;
            if (due > MaxDueMs)
            {
                error = $"{where}: the timer would be due after 9999-12-31T23:59:59.999Z";
                return false;
            }
            schedules.Add(new ScheduleRequest(name, due, payload, deadline));
        }
        return true;
    }

    private static bool TryCancel(JsonElement root, out List<string> cancel, out string? error)
    {
        cancel = [];
        error = null;
        if (!TryArray(root, "cancel", MaxSchedules, out var array, out error) || array is null)
        {
            return error is null;
        }
        foreach (var item in array.Value.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String || item.GetString() is not { Length: > 0 } name)
            {
                error = "'cancel' must be a list of schedule names";
                return false;
            }
            cancel.Add(name);
        }
        return true;
    }

    private static bool TryArray(JsonElement root, string name, int max, out JsonElement? array, out string? error)
    {
        array = null;
        error = null;
        if (!root.TryGetProperty(name, out var element) || element.ValueKind == JsonValueKind.Null)
        {
            return true;
        }
        if (element.ValueKind != JsonValueKind.Array)
        {
            error = $"'{name}' must be a list";
            return false;
        }
        if (element.GetArrayLength() > max)
        {
            error = $"'{name}' has {element.GetArrayLength()} items, the limit is {max}";
            return false;
        }
        array = element;
        return true;
    }

    private static string? StringOrNull(JsonElement element) => element.ValueKind == JsonValueKind.String ? element.GetString() : null;

    private static long? Int64OrNull(JsonElement element) =>
        element.ValueKind == JsonValueKind.Number && element.TryGetDouble(out var d) && double.IsFinite(d) && d == Math.Floor(d) && Math.Abs(d) < 9e15
            ? (long)d
            : null;

    /// <summary>Names an element in an error message; made into text only when there is an error to report.</summary>
    private readonly record struct Where(string Array, int Index)
    {
        public override string ToString() => $"{Array}[{Index}]";
    }
}
