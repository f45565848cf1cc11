using System.Globalization;
using System.Text.Json;
using Runner.Core.Events;
using Runner.Core.Ids;
using Runner.Core.Transitions;
using Runner.Sagas.Manifests;
using Runner.Scripting;

namespace Runner.Sagas.Partitions;

/// <summary>
/// What the worker decides from an event and a script's result, without NATS or LMDB: the script's
/// input, the handler, whether the effects exist, the ids and pools of commands. The offline saga
/// tester (<c>Runner.Sagas.Testing</c>) runs the same rules, so a test passes exactly when the
/// worker would have done the same.
/// </summary>
internal sealed partial class PartitionWorker
{
    /// <summary>A failed effect result: <c>workflow.evt.{tenant}.{effect}.failed</c> on WORKFLOW_EVENTS.</summary>
    internal static bool IsFailureResult(string workflowEvents, string type, MessageOrigin origin) =>
        string.Equals(origin.Stream, workflowEvents, StringComparison.Ordinal)
        && origin.Subject.EndsWith(".failed", StringComparison.Ordinal)
        && type.Length > 0;

    /// <summary>This saga's own timer: <c>workflow.evt.{tenant}.timer.{saga}</c> on WORKFLOW_EVENTS.</summary>
    internal static bool IsTimerEvent(string workflowEvents, MessageOrigin origin, string tenant, string saga) =>
        string.Equals(origin.Stream, workflowEvents, StringComparison.Ordinal)
        && string.Equals(origin.Subject, Core.Subjects.Subjects.Timer(tenant, saga), StringComparison.Ordinal);

    /// <summary>
    /// <c>compensate</c> for a deadline timer or a failed effect result when the script has one;
    /// <c>on_event</c> for everything else.
    /// </summary>
    internal static ScriptHandler HandlerFor(SagaScript script, TimerData? timer, bool failureResult)
    {
        var compensate = timer is { } fired ? fired.Deadline : failureResult;
        return script.HasCompensate && compensate ? ScriptHandler.Compensate : ScriptHandler.OnEvent;
    }

    /// <summary>Why the transition must be refused when it commands an effect no loaded manifest declares; null when every effect is declared.</summary>
    internal static string? UndeclaredEffect(TransitionOutput output, ManifestSet manifests)
    {
        // By index: a foreach over the interface would box the list's enumerator, once per transition.
        var commands = output.Commands;
        for (var i = 0; i < commands.Count; i++)
        {
            var command = commands[i];
            if (manifests.Effect(command.Effect) is null)
            {
                return $"the transition commands effect '{command.Effect}', which no loaded effect manifest declares ({manifests.Hash[..12]})";
            }
        }
        return null;
    }

    /// <summary>The command's id: the script's own, or <c>ctx.id("$command.{index}")</c> when it gave none.</summary>
    internal static string CommandIdOf(InstanceId instance, string eventId, CommandRequest command, int index) =>
        command.Id ?? CommandIds.Derive(instance.Tenant, instance.Saga, instance.Key, eventId, "$command." + index.ToString(CultureInfo.InvariantCulture)).Value;

    /// <summary>The command's pool: the script's own, or the effect manifest's.</summary>
    internal static string? PoolOf(CommandRequest command, ManifestSet manifests) => command.Pool ?? manifests.DefaultPool(command.Effect);
}
