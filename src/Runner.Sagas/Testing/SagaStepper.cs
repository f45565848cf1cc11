using Runner.Core.Events;
using Runner.Core.Ids;
using Runner.Sagas.Manifests;
using Runner.Sagas.Partitions;
using Runner.Sagas.Quarantine;
using Runner.Scripting;

namespace Runner.Sagas.Testing;

/// <summary>
/// Runs one event through a saga's script the way the partition worker does — the same timer
/// check, handler choice, sandbox, effect check, command ids and pools — with no NATS and no
/// store: the state goes in and the outcome comes out.
/// </summary>
internal static class SagaStepper
{
    /// <param name="handler">Forces <c>on_event</c> or <c>compensate</c>; null chooses as the worker does.</param>
    public static StepOutcome Run(ManifestSet manifests, LoadedSaga saga, string key, string? stateJson, StepEvent evt, ScriptHandler? handler = null)
    {
        TimerData? timer = null;
        if (PartitionWorker.IsTimerEvent(manifests.WorkflowEvents, evt.Origin, evt.Tenant, saga.Name))
        {
            if (!TimerEvents.TryReadData(evt.DataJson, out var data) || !string.Equals(data.Key, key, StringComparison.Ordinal))
            {
                return StepOutcome.Failed(QuarantineRecords.InvalidTimer, "timer event without a valid data.key (this instance's), data.name and data.due_ms");
            }
            timer = data;
        }
        var chosen = handler ?? PartitionWorker.HandlerFor(saga.Script, timer, PartitionWorker.IsFailureResult(manifests.WorkflowEvents, evt.Type, evt.Origin));
        var result = saga.Script.Run(new ScriptInput(stateJson, evt.Json, evt.Id, evt.TimeMs, evt.Tenant, saga.Name, key, chosen));
        if (!result.Succeeded)
        {
            return StepOutcome.Failed(result.Failure!.Code, result.Failure.Message);
        }
        var output = result.Output!;
        if (PartitionWorker.UndeclaredEffect(output, manifests) is { } unknown)
        {
            return StepOutcome.Failed(QuarantineRecords.UnknownEffect, unknown);
        }

        var instance = new InstanceId(new TenantId(evt.Tenant), new SagaName(saga.Name), new CorrelationKey(key));
        var commands = new List<OutcomeCommand>(output.Commands.Count);
        for (var i = 0; i < output.Commands.Count; i++)
        {
            var command = output.Commands[i];
            commands.Add(new OutcomeCommand(command.Effect, command.PayloadJson, PartitionWorker.CommandIdOf(instance, evt.Id, command, i), PartitionWorker.PoolOf(command, manifests), CheckPool: true));
        }
        var schedules = new List<OutcomeTimer>(output.Schedules.Count);
        foreach (var schedule in output.Schedules)
        {
            schedules.Add(new OutcomeTimer(schedule.Name, schedule.DueMs, schedule.Deadline, schedule.PayloadJson ?? "null"));
        }
        return new StepOutcome
        {
            StateJson = output.StateJson,
            Commands = commands,
            Schedules = schedules,
            Cancel = output.Cancel,
            Done = output.Done,
        };
    }
}
