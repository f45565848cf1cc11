using System.Globalization;

namespace Runner.Sagas.Testing;

/// <summary>
/// Compares an expected step outcome with an actual one and names every difference, one line
/// each (<c>state.total: expected 30, got 40</c>, <c>commands[1]: missing …</c>). Only what the
/// expected outcome holds is checked, so a golden file can pin just the state, and a recorded
/// history step (which holds everything) pins all of it.
/// </summary>
internal static class OutcomeComparer
{
    public static List<string> Compare(StepOutcome expected, StepOutcome actual)
    {
        var differences = new List<string>();
        if (expected.Error is not null || actual.Error is not null)
        {
            CompareErrors(expected, actual, differences);
            return differences;
        }
        if (expected.StateJson is not null)
        {
            JsonDiff.Compare("state", expected.StateJson, actual.StateJson ?? "null", differences);
        }
        if (expected.Commands is not null)
        {
            CompareCommands(expected.Commands, actual.Commands ?? [], differences);
        }
        if (expected.Schedules is not null)
        {
            CompareSchedules(expected.Schedules, actual.Schedules ?? [], differences);
        }
        if (expected.Cancel is not null)
        {
            var wanted = expected.Cancel.Order(StringComparer.Ordinal).ToList();
            var got = (actual.Cancel ?? []).Order(StringComparer.Ordinal).ToList();
            if (!wanted.SequenceEqual(got, StringComparer.Ordinal))
            {
                differences.Add($"cancel: expected [{string.Join(", ", wanted)}], got [{string.Join(", ", got)}]");
            }
        }
        if (expected.Done is { } done && done != (actual.Done ?? false))
        {
            differences.Add($"done: expected {Bool(done)}, got {Bool(actual.Done ?? false)}");
        }
        return differences;
    }

    private static void CompareErrors(StepOutcome expected, StepOutcome actual, List<string> differences)
    {
        if (expected.Error is null)
        {
            differences.Add($"error: the event was refused ({actual.Error}): {actual.ErrorDetail}");
        }
        else if (actual.Error is null)
        {
            differences.Add($"error: expected {expected.Error}, got a transition");
        }
        else if (!string.Equals(expected.Error, actual.Error, StringComparison.Ordinal))
        {
            differences.Add($"error: expected {expected.Error}, got {actual.Error}: {actual.ErrorDetail}");
        }
    }

    /// <summary>By position: the order of a transition's commands is what the script returned.</summary>
    private static void CompareCommands(IReadOnlyList<OutcomeCommand> expected, IReadOnlyList<OutcomeCommand> actual, List<string> differences)
    {
        for (var i = 0; i < expected.Count; i++)
        {
            var want = expected[i];
            var at = $"commands[{i}]";
            if (i >= actual.Count)
            {
                differences.Add($"{at}: missing {Show(want)}");
                continue;
            }
            var got = actual[i];
            if (!string.Equals(want.Effect, got.Effect, StringComparison.Ordinal))
            {
                differences.Add($"{at}: expected {Show(want)}, got {Show(got)}");
                continue;
            }
            if (want.Id is not null && !string.Equals(want.Id, got.Id, StringComparison.Ordinal))
            {
                differences.Add($"{at}.id: expected {want.Id}, got {got.Id}");
            }
            if (want.CheckPool && !string.Equals(want.Pool, got.Pool, StringComparison.Ordinal))
            {
                differences.Add($"{at}.pool: expected {want.Pool ?? "none"}, got {got.Pool ?? "none"}");
            }
            JsonDiff.Compare($"{at}.payload", want.PayloadJson, got.PayloadJson, differences);
        }
        for (var i = expected.Count; i < actual.Count; i++)
        {
            differences.Add($"commands: unexpected {Show(actual[i])}");
        }
    }

    /// <summary>By name: a timer is known by its name (a later schedule of the same name replaces it).</summary>
    private static void CompareSchedules(IReadOnlyList<OutcomeTimer> expected, IReadOnlyList<OutcomeTimer> actual, List<string> differences)
    {
        var unmatched = actual.ToList();
        foreach (var want in expected)
        {
            var at = $"schedules.{want.Name}";
            var index = unmatched.FindIndex(t => string.Equals(t.Name, want.Name, StringComparison.Ordinal));
            if (index < 0)
            {
                differences.Add($"{at}: missing, expected due {Due(want.DueMs)}");
                continue;
            }
            var got = unmatched[index];
            unmatched.RemoveAt(index);
            if (want.DueMs != got.DueMs)
            {
                differences.Add($"{at}.due_ms: expected {Due(want.DueMs)}, got {Due(got.DueMs)}");
            }
            if (want.Deadline is { } deadline && deadline != (got.Deadline ?? false))
            {
                differences.Add($"{at}.deadline: expected {Bool(deadline)}, got {Bool(got.Deadline ?? false)}");
            }
            if (want.PayloadJson is not null)
            {
                JsonDiff.Compare($"{at}.payload", want.PayloadJson, got.PayloadJson ?? "null", differences);
            }
        }
        foreach (var extra in unmatched)
        {
            differences.Add($"schedules: unexpected {extra.Name} due {Due(extra.DueMs)}");
        }
    }

    private static string Show(OutcomeCommand command) => $"{command.Effect} {JsonDiff.Show(command.PayloadJson)}";

    private static string Due(long ms) =>
        ms is >= 0 and <= 253_402_300_799_999
            ? string.Create(CultureInfo.InvariantCulture, $"{ms} ({DateTimeOffset.FromUnixTimeMilliseconds(ms):yyyy-MM-ddTHH:mm:ss.fffZ})")
            : ms.ToString(CultureInfo.InvariantCulture);

    private static string Bool(bool value) => value ? "true" : "false";
}
