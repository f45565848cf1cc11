using System.Text.Json;
using Runner.Core;
using Runner.Core.Events;
using Runner.Core.Ids;
using Runner.Core.Keys;
using Runner.Core.Transitions;
using Runner.Sagas.Manifests;
using Runner.Sagas.Quarantine;

namespace Runner.Sagas.Partitions;

/// <summary>
/// Parking: a transition that fails (the script throws, breaks a limit, returns what the contract
/// refuses, or commands an effect no manifest declares) parks its instance instead of skipping the
/// event. The failed message and every later one for the instance are held, in inbox order, in the
/// partition's store (and its snapshots), while the rest of the partition flows. An operator's
/// control message in the same inbox — so a replay reaches the same outcome — resumes (runs the
/// held messages again, with the script version current at the control message), skips (drops the
/// failed event with a dedupe marker saying so, then resumes) or cancels (runs <c>compensate</c> on
/// the failed event, then resumes).
/// </summary>
internal sealed partial class PartitionWorker
{
    public const string Resume = "resume";
    public const string Skip = "skip";
    public const string Cancel = "cancel";

    public const string ResetAction = "reset";

    /// <summary>What an operator can do to a parked instance.</summary>
    public static readonly string[] ControlActions = [Resume, Skip, Cancel];

    private static readonly string[] s_allControlActions = [Resume, Skip, Cancel, ResetAction];

    private void Park(BatchWork work, InstanceId instance, SagaInstanceRecord? current, InboxItem item, SagaEvent evt, ManifestSet manifests, string reason, string detail)
    {
        var parked = (current ?? new SagaInstanceRecord
        {
            State = Core.Json.JsonNull.Element,
            Version = 0,
            CreatedAtMs = evt.TimeMs,
            UpdatedAtMs = evt.TimeMs,
            ManifestHash = manifests.Hash,
        }) with
        {
            Parked = new ParkedRecord { EventId = evt.Id, Type = evt.Type, InboxSequence = item.Sequence, Reason = reason, Detail = detail, AtMs = item.InboxMs },
        };
        work.Batch.Put(KeySpace.Saga, StoreKeys.Instance(_partition, instance), JsonSerializer.SerializeToUtf8Bytes(parked, CoreJsonContext.Default.SagaInstanceRecord));
        work.Instances[instance] = parked;
        Hold(work, instance, item);
        // The quarantine record stays what invariant 8 promises (reason and context, message terminated); the event itself waits with the instance.
        Quarantine(work, item, reason, detail + " (instance parked: resume, skip or cancel it)", instance.Saga.Value, instance.Tenant.Value, instance.Key.Value, parked: true);
        if (_telemetry)
        {
            SagasTelemetry.Parked.Add(1, new KeyValuePair<string, object?>(SagasTelemetry.SagaTag, instance.Saga.Value), new KeyValuePair<string, object?>(SagasTelemetry.ReasonTag, reason));
        }
        SagasLog.Parked(_logger, instance.Tenant.Value, instance.Saga.Value, instance.Key.Value, evt.Id, reason, detail);
    }

    private void Hold(BatchWork work, InstanceId instance, InboxItem item)
    {
        HeldOf(work, instance).Add(item);
        work.Batch.Put(KeySpace.Held, StoreKeys.Held(_partition, instance, item.Sequence), JsonSerializer.SerializeToUtf8Bytes(item.ToHeld(), CoreJsonContext.Default.HeldMessage));
    }

    /// <summary>Every message held for <paramref name="instance"/> now, in inbox order: the store's, as this batch has changed them.</summary>
    private List<InboxItem> HeldOf(BatchWork work, InstanceId instance)
    {
        if (!work.Held.TryGetValue(instance, out var held))
        {
            held = [.. _store.Read(reader => reader.Scan(KeySpace.Held, StoreKeys.HistoryPrefix(_partition, instance), int.MaxValue))
                .Select(kv => InboxItem.From(JsonSerializer.Deserialize(kv.Value, CoreJsonContext.Default.HeldMessage)!))];
            work.Held[instance] = held;
        }
        return held;
    }

    /// <summary>An operator's control message: <c>resume</c>, <c>skip</c> or <c>cancel</c> one parked instance.</summary>
    private void Control(InboxItem item, string rawAction, ManifestSet manifests, BatchWork work)
    {
        string? Header(string name) => item.Headers.TryGetValue(name, out var value) ? EventHeaders.Decode(value) : null;
        var (tenant, sagaName, key) = (Header(EventHeaders.TenantId), Header(EventHeaders.Saga), Header(EventHeaders.Key));
        var action = rawAction.Trim().ToLowerInvariant();
        if (tenant is null || sagaName is null || key is null || !s_allControlActions.Contains(action, StringComparer.Ordinal)
            || !StoreKeys.IsValidComponent(tenant) || !StoreKeys.IsValidComponent(sagaName) || !StoreKeys.IsValidComponent(key))
        {
            Quarantine(work, item, QuarantineRecords.InvalidControl,
                $"a control message needs {EventHeaders.Control} one of {string.Join('|', s_allControlActions)}, and {EventHeaders.TenantId}, {EventHeaders.Saga}, {EventHeaders.Key}", sagaName, tenant, key);
            return;
        }
        var instance = new InstanceId(new TenantId(tenant), new SagaName(sagaName), new CorrelationKey(key));
        if (Partitioner.PartitionOf(instance, _options.Partitions) != _partition)
        {
            Quarantine(work, item, QuarantineRecords.InvalidRouting, "control message for an instance of another partition", sagaName, tenant, key);
            return;
        }
        var current = work.Instances.GetValueOrDefault(instance);
        if (current is null && _store.Read(reader => reader.Get(KeySpace.Saga, StoreKeys.Instance(_partition, instance))) is { } raw)
        {
            current = JsonSerializer.Deserialize(raw, CoreJsonContext.Default.SagaInstanceRecord);
        }
        if (action == ResetAction)
        {
            Reset(work, item, instance, current, manifests);
            return;
        }
        if (current?.Parked is null)
        {
            SagasLog.ControlIgnored(_logger, action, tenant, sagaName, key, "the instance is not parked");
            return;
        }
        if (action == Cancel && manifests.Saga(sagaName)?.Script.HasCompensate != true)
        {
            SagasLog.ControlIgnored(_logger, action, tenant, sagaName, key, "the saga's script has no compensate");
            return;
        }

        var held = HeldOf(work, instance);
        var items = held.ToList();
        held.Clear();
        var resumed = current with { Parked = null };
        work.Batch.Put(KeySpace.Saga, StoreKeys.Instance(_partition, instance), JsonSerializer.SerializeToUtf8Bytes(resumed, CoreJsonContext.Default.SagaInstanceRecord));
        work.Instances[instance] = resumed;
        SagasLog.ControlApplied(_logger, action, tenant, sagaName, key, current.Parked.EventId, items.Count);
        for (var i = 0; i < items.Count; i++)
        {
            var next = items[i];
            work.Batch.Delete(KeySpace.Held, StoreKeys.Held(_partition, instance, next.Sequence));
            if (i == 0 && action == Skip)
            {
                MarkSkipped(work, instance, next);
                continue;
            }
            Process(next, manifests, work, fromHold: true, compensate: i == 0 && action == Cancel);
            if (work.Instances.GetValueOrDefault(instance)?.Parked is not null)
            {
                // Parked again (Process held that message again): the rest stay held behind it.
                held.AddRange(items.Skip(i + 1));
                break;
            }
        }
    }

    /// <summary>Records the skipped event as seen, so a copy of it is not applied later either.</summary>
    private void MarkSkipped(BatchWork work, InstanceId instance, InboxItem item)
    {
        if (TryOrigin(item.Headers, out var origin)
            && CloudEventDecoder.TryDecode(item.Data, item.Headers, origin, _options.MaxEventBytes, out var evt, out _))
        {
            var dedupeKey = StoreKeys.Dedupe(_partition, instance, evt!.Id);
            work.SeenEvents.Add(new SeenEvent(instance, evt.Id));
            PutDedupe(work, dedupeKey, item.Sequence, DedupeRecord.Skipped, evt.TimeMs, item.InboxMs);
        }
    }
}
