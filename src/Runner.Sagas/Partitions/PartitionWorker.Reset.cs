using System.Globalization;
using System.Text;
using System.Text.Json;
using Runner.Core;
using Runner.Core.Events;
using Runner.Core.Ids;
using Runner.Core.Keys;
using Runner.Core.Transitions;
using Runner.Sagas.Instances;
using Runner.Sagas.Manifests;
using Runner.Sagas.Quarantine;
using Runner.Sagas.Testing;
using Runner.Scripting;

namespace Runner.Sagas.Partitions;

/// <summary>
/// Reset: an operator's control message takes an instance back to an earlier version of its
/// history and runs the events after it again with the current script: the steps after the target
/// are replaced by the replayed ones, which take their versions again (history stays the
/// instance's effective sequence; each replayed step names the control message's inbox sequence). The
/// state is the recorded one at the target, its timers those live then; the instance's live
/// schedule items go, and those of the target come back. Commands the replay issues again carry
/// the ids they had (same event, same name), so the effect workers' claims answer them without
/// running them again; a command the fixed script issues differently is new. The message names the
/// version the instance must still be at: one that moved on since the operator's dry run is left alone.
/// </summary>
internal sealed partial class PartitionWorker
{
    private void Reset(BatchWork work, InboxItem item, InstanceId instance, SagaInstanceRecord? current, ManifestSet manifests)
    {
        var (tenant, saga, key) = (instance.Tenant.Value, instance.Saga.Value, instance.Key.Value);
        if (!item.Headers.TryGetValue(EventHeaders.ResetTo, out var toText) || !long.TryParse(toText, NumberStyles.None, CultureInfo.InvariantCulture, out var to)
            || !item.Headers.TryGetValue(EventHeaders.ResetFrom, out var fromText) || !long.TryParse(fromText, NumberStyles.None, CultureInfo.InvariantCulture, out var from))
        {
            Quarantine(work, item, QuarantineRecords.InvalidControl, $"a reset needs {EventHeaders.ResetTo} and {EventHeaders.ResetFrom} versions", saga, tenant, key);
            return;
        }
        string? refusal = current is null ? "there is no such instance"
            : current.Parked is not null ? "the instance is parked: resume, skip or cancel it first"
            : current.Version != from ? $"the instance is at version {current.Version}, not {from}: it moved on since the dry run"
            : manifests.Saga(saga) is null ? "the saga is not in the loaded manifests"
            : null;
        if (refusal is not null)
        {
            SagasLog.ControlIgnored(_logger, ResetAction, tenant, saga, key, refusal);
            return;
        }
        var script = manifests.Saga(saga)!.Script;
        var history = _store.Read(reader => reader.Scan(KeySpace.History, StoreKeys.HistoryPrefix(_partition, instance), int.MaxValue))
            .Select(kv => JsonSerializer.Deserialize(kv.Value, CoreJsonContext.Default.HistoryStep)!).ToList();
        var (plan, error) = ResetPlan.Make(history, current!.Version, to);
        if (plan is null)
        {
            SagasLog.ControlIgnored(_logger, ResetAction, tenant, saga, key, error!);
            return;
        }

        var mark = work.Save();
        // The live timers go; those live at the target come back, with the generations that set them.
        foreach (var (name, due) in current.Timers ?? [])
        {
            work.Batch.Delete(KeySpace.Schedule, StoreKeys.Schedule(_partition, due, instance, name, current.TimerGenerations?.GetValueOrDefault(name) ?? 0));
        }
        var timers = new Dictionary<string, long>(StringComparer.Ordinal);
        var generations = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var (name, (setBy, timer)) in plan.Timers)
        {
            timers[name] = timer.DueMs;
            generations[name] = setBy.Version;
            var record = new ScheduleRecord
            {
                Tenant = tenant,
                Saga = saga,
                Key = key,
                Name = name,
                DueMs = timer.DueMs,
                Generation = setBy.Version,
                Payload = timer.Payload,
                Deadline = timer.Deadline,
                CausationId = setBy.EventId,
            };
            work.Batch.Put(KeySpace.Schedule, StoreKeys.Schedule(_partition, timer.DueMs, instance, name, setBy.Version),
                JsonSerializer.SerializeToUtf8Bytes(record, CoreJsonContext.Default.ScheduleRecord));
            work.Scheduled = true;
        }
        // The steps after the target are superseded: history keeps the instance's effective
        // sequence, and the replayed steps take their versions again.
        foreach (var step in plan.Replay)
        {
            work.Batch.Delete(KeySpace.History, StoreKeys.History(_partition, instance, step.Version));
        }
        var start = current with
        {
            Version = to,
            State = plan.StateJson is null ? Core.Json.JsonNull.Element : JsonDocument.Parse(plan.StateJson).RootElement.Clone(),
            Done = false,
            ClosedAtInboxMs = 0,
            Timers = timers.Count == 0 ? null : timers,
            TimerGenerations = generations.Count == 0 ? null : generations,
        };
        work.Batch.Put(KeySpace.Saga, StoreKeys.Instance(_partition, instance), JsonSerializer.SerializeToUtf8Bytes(start, CoreJsonContext.Default.SagaInstanceRecord));
        work.Instances[instance] = start;

        var state = start;
        for (var k = 0; k < plan.Replay.Count; k++)
        {
            var step = plan.Replay[k];
            if (ReplayStep(work, instance, state, step, item, manifests, script, k) is { } failure)
            {
                work.Restore(mark);
                work.Instances[instance] = current;
                SagasLog.ControlIgnored(_logger, ResetAction, tenant, saga, key, $"v{step.Version} ({step.Type} {step.EventId}) fails with the current script: {failure}; nothing changed");
                return;
            }
            state = work.Instances[instance];
        }
        SagasLog.ResetApplied(_logger, tenant, saga, key, from, to, plan.Replay.Count, state.Version);
    }

    /// <summary>Runs one recorded step's event again on <paramref name="state"/>; null when it applied (or was a timer no longer live), else why it failed.</summary>
    private string? ReplayStep(BatchWork work, InstanceId instance, SagaInstanceRecord state, HistoryStep step, InboxItem item, ManifestSet manifests, SagaScript script, int index)
    {
        var stepEvent = StepEvent.FromScriptEvent(step.Event, out var unreadable);
        if (stepEvent is null)
        {
            return $"the recorded event cannot be read: {unreadable}";
        }
        TimerData? timer = null;
        if (IsTimerEvent(manifests.WorkflowEvents, stepEvent.Origin, stepEvent.Tenant, instance.Saga.Value))
        {
            if (!TimerEvents.TryReadData(stepEvent.DataJson, out var data))
            {
                return "the recorded timer event has no valid data";
            }
            // The replay sets timers anew, with new generations: a timer fires again when the state
            // being rebuilt holds it at that due time.
            if (state.Timers?.GetValueOrDefault(data.Name) != data.DueMs)
            {
                return null;
            }
            timer = data;
        }
        var handler = step.Handler == "compensate" && script.HasCompensate ? ScriptHandler.Compensate
            : HandlerFor(script, timer, IsFailureResult(manifests.WorkflowEvents, stepEvent.Type, stepEvent.Origin));
        var result = script.Run(new ScriptInput(null, stepEvent.Json, stepEvent.Id, stepEvent.TimeMs, stepEvent.Tenant, instance.Saga.Value, instance.Key.Value, handler)
        {
            State = state.State,
        });
        if (!result.Succeeded)
        {
            return $"{result.Failure!.Code}: {result.Failure.Message}";
        }
        if (UndeclaredEffect(result.Output!, manifests) is { } unknown)
        {
            return unknown;
        }
        var source = step.Event.TryGetProperty("source", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString()! : "";
        var evt = new SagaEvent(stepEvent.Id, stepEvent.Type, source, null, DateTimeOffset.FromUnixTimeMilliseconds(stepEvent.TimeMs), stepEvent.Tenant, null,
            Encoding.UTF8.GetBytes(stepEvent.DataJson), new Dictionary<string, string>(), stepEvent.Origin);
        var dedupeKey = StoreKeys.Dedupe(_partition, instance, evt.Id);
        Apply(work, instance, state, evt, item.Sequence, item.InboxMs, result.Output!, dedupeKey, manifests,
            new StepInput(stepEvent.Origin, stepEvent.Json, handler == ScriptHandler.Compensate, timer?.Name), traceParent: null, outboxBase: index * 1000);
        return null;
    }
}
