using System.Security.Cryptography;
using System.Text;
using Runner.Core.Transitions;

namespace Runner.Sagas.Instances;

/// <summary>
/// Where a reset of an instance to version <see cref="To"/> starts and what it replays: the state
/// after step <see cref="To"/> (null for version 0, a new instance), the timers that were live then
/// (folded from the steps up to it, with the step that set each), and the steps after it whose
/// events run again with the current script.
/// </summary>
internal sealed record ResetPlan(
    long From,
    long To,
    string? StateJson,
    IReadOnlyDictionary<string, (HistoryStep SetBy, HistoryTimer Timer)> Timers,
    IReadOnlyList<HistoryStep> Replay)
{
    /// <summary>Most steps one reset replays (one control message's transitions share its inbox sequence in their outbox keys).</summary>
    public const int MaxSteps = 99;

    /// <summary>The plan, or why there is none: a reset needs the kept history to go back to version 1 unbroken (the timers live at the target are folded from it).</summary>
    public static (ResetPlan? Plan, string? Error) Make(IReadOnlyList<HistoryStep> history, long currentVersion, long to)
    {
        if (to < 0 || to >= currentVersion)
        {
            return (null, $"the target version must be in [0, {currentVersion - 1}] (the instance is at {currentVersion})");
        }
        for (var i = 0; i < history.Count; i++)
        {
            if (history[i].Version != i + 1)
            {
                return (null, history.Count == 0 || history[0].Version != 1
                    ? $"its history is kept from version {(history.Count == 0 ? currentVersion + 1 : history[0].Version)} on: a reset needs every step from version 1"
                    : $"its history has a gap before version {history[i].Version}");
            }
        }
        if (history.Count != currentVersion)
        {
            return (null, $"its history holds {history.Count} step(s) for version {currentVersion}");
        }
        if (currentVersion - to > MaxSteps)
        {
            return (null, $"a reset replays at most {MaxSteps} steps; this one would replay {currentVersion - to}");
        }
        var timers = new Dictionary<string, (HistoryStep, HistoryTimer)>(StringComparer.Ordinal);
        foreach (var step in history.Take((int)to))
        {
            if (step.Timer is not null)
            {
                timers.Remove(step.Timer);
            }
            foreach (var name in step.Cancel)
            {
                timers.Remove(name);
            }
            foreach (var timer in step.Schedules)
            {
                timers[timer.Name] = (step, timer);
            }
            if (step.Done)
            {
                timers.Clear();
            }
        }
        var state = to == 0 ? null : history[(int)to - 1].State.GetRawText();
        return (new ResetPlan(currentVersion, to, state, timers, [.. history.Skip((int)to)]), null);
    }

    /// <summary>
    /// What an operator must quote to apply a reset they have seen the dry run of: it names the
    /// instance, the version it was at, the target and the script that replays, so a token from a
    /// dry run no longer fits once any of them changed.
    /// </summary>
    public static string Token(string tenant, string saga, string key, long from, long to, string scriptHash) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{tenant}\u001f{saga}\u001f{key}\u001f{from}\u001f{to}\u001f{scriptHash}")))[..12];
}
