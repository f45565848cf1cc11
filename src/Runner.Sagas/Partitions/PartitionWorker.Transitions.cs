using System.Buffers;
using System.Globalization;
using System.Text.Json;
using NATS.Client.JetStream;
using Runner.Core;
using Runner.Core.Events;
using Runner.Core.Ids;
using Runner.Core.Keys;
using Runner.Core.Transitions;
using Runner.Messaging;
using Runner.Sagas.Instances;
using Runner.Sagas.Manifests;
using Runner.Sagas.Outbox;
using Runner.Sagas.Quarantine;
using Runner.Scripting;

namespace Runner.Sagas.Partitions;

internal sealed partial class PartitionWorker
{
    private static readonly SpanNames s_sagaSpans = new("saga");

    private const string Stage = "saga";

    /// <summary>Stands for "no timers" without a table of its own: only read (a remove from it finds nothing, it is never added to).</summary>
    private static readonly Dictionary<string, long> s_noTimers = new(StringComparer.Ordinal);

    private void Process(JetStreamMessage msg, Delivery delivery, ManifestSet manifests, BatchWork work)
    {
        var item = InboxItem.From(msg, delivery);
        if (item.Headers.TryGetValue(EventHeaders.Control, out var action))
        {
            Control(item, action, manifests, work);
            return;
        }
        Process(item, manifests, work);
    }

    /// <summary>
    /// Runs one inbox message through its saga. <paramref name="fromHold"/>: a message held for a
    /// parked instance, run again on resume (its first run already counted it as seen in this
    /// batch); <paramref name="compensate"/>: run <c>compensate</c> whatever the message (cancel).
    /// </summary>
    private void Process(InboxItem item, ManifestSet manifests, BatchWork work, bool fromHold = false, bool compensate = false)
    {
        var headers = item.Headers;
        var sequence = item.Sequence;
        var sagaName = headers.TryGetValue(EventHeaders.Saga, out var rawSaga) ? EventHeaders.Decode(rawSaga) : null;
        var key = headers.TryGetValue(EventHeaders.Key, out var rawKey) ? EventHeaders.Decode(rawKey) : null;
        if (sagaName is null || key is null || !TryOrigin(headers, out var origin))
        {
            Quarantine(work, item, QuarantineRecords.InvalidRouting, "inbox message lacks runner routing headers", sagaName, null, key);
            return;
        }
        var saga = manifests.Saga(sagaName);
        if (saga is null)
        {
            Quarantine(work, item, QuarantineRecords.UnknownSaga, $"saga '{sagaName}' is not in the loaded manifests ({manifests.Hash[..12]})", sagaName, null, key);
            return;
        }
        if (!CloudEventDecoder.TryDecode(item.Data, headers, origin, _options.MaxEventBytes, out var evt, out var decodeError))
        {
            Quarantine(work, item, decodeError!.Code, decodeError.Message, sagaName, null, key);
            return;
        }

        var instance = new InstanceId(new TenantId(evt!.Tenant), new SagaName(sagaName), new CorrelationKey(key));
        // The traceparent is read where it is used: for a span, what the transition sends on, a line logged.
        using var span = _telemetry ? Tracing.Start(SagasTelemetry.Source, s_sagaSpans, sagaName, System.Diagnostics.ActivityKind.Consumer, evt.Headers) : null;
        using var scope = LogScope.For(_logger, evt.Tenant, sagaName, key, evt.Headers);
        span?.SetTag("runner.tenant", evt.Tenant);
        span?.SetTag("runner.saga", sagaName);
        span?.SetTag("runner.correlation_id", key);
        span?.SetTag("runner.event_id", evt.Id);
        if (Partitioner.PartitionOf(instance, _options.Partitions) != _partition)
        {
            Quarantine(work, item, QuarantineRecords.InvalidRouting, "instance does not belong to this partition (partition count changed?)", sagaName, evt.Tenant, key);
            return;
        }

        var dedupeKey = StoreKeys.Dedupe(_partition, instance, evt.Id);
        var seen = new SeenEvent(instance, evt.Id);
        if (!fromHold && work.SeenEvents.Contains(seen))
        {
            return;
        }

        // One read transaction for both lookups: the dedupe marker, and the instance unless an
        // earlier event of this batch already holds its newest version.
        var pending = work.Instances.GetValueOrDefault(instance);
        // Both are read straight from the map, not from copies of their bytes; the instance only for an event not yet seen.
        var inboxMs = item.InboxMs;
        var (remembered, stored) = _store.Read((worker: this, dedupeKey, instanceKey: pending is null ? StoreKeys.Instance(_partition, instance) : null, inboxMs), static (reader, read) =>
            reader.TryGet(KeySpace.Dedupe, read.dedupeKey, out var marker) && read.worker.Remembered(marker, read.inboxMs)
                ? (true, null)
                : (false, read.instanceKey is not null && reader.TryGet(KeySpace.Saga, read.instanceKey, out var record)
                    ? JsonSerializer.Deserialize(record, CoreJsonContext.Default.SagaInstanceRecord)
                    : null));
        if (remembered)
        {
            return;
        }
        work.SeenEvents.Add(seen);

        var current = pending ?? stored;
        if (current?.Done == true && Expired(current, inboxMs))
        {
            // Past its retention a finished instance is gone (whether or not the sweeper has
            // deleted it yet): the key starts a new instance, and the old history goes with it.
            work.Batch.DeletePrefix(KeySpace.History, StoreKeys.HistoryPrefix(_partition, instance));
            current = null;
        }
        if (current?.Done == true)
        {
            PutDedupe(work, dedupeKey, sequence, DedupeRecord.IgnoredCompleted, evt.TimeMs, inboxMs);
            return;
        }
        if (current?.Parked is not null)
        {
            // Parked: this event waits, in order, for the operator (resume, skip or cancel).
            Hold(work, instance, item);
            SagasLog.Held(_logger, evt.Tenant, sagaName, key, evt.Id, current.Parked.EventId);
            return;
        }

        // A timer fires into the script only while the instance still holds it at that due time;
        // a cancelled, replaced or already fired timer is recorded and dropped here, whatever raced.
        TimerData? timer = null;
        var workflowEvents = _options.JetStream.Streams.WorkflowEvents;
        if (IsTimerEvent(workflowEvents, origin, evt.Tenant, sagaName))
        {
            if (!TimerEvents.TryReadData(evt.Data, out var data) || !string.Equals(data.Key, key, StringComparison.Ordinal))
            {
                Quarantine(work, item, QuarantineRecords.InvalidTimer, "timer event without a valid data.key (this instance's), data.name and data.due_ms", sagaName, evt.Tenant, key);
                return;
            }
            long? live = current?.Timers is { } timers && timers.TryGetValue(data.Name, out var liveDue) ? liveDue : null;
            var liveGeneration = current?.TimerGenerations?.GetValueOrDefault(data.Name) ?? 0;
            if (live != data.DueMs || liveGeneration != data.Generation)
            {
                SagasLog.StaleTimerIgnored(_logger, evt.Tenant, sagaName, key, data.Name, data.DueMs, live);
                PutDedupe(work, dedupeKey, sequence, DedupeRecord.IgnoredStaleTimer, evt.TimeMs, inboxMs);
                return;
            }
            timer = data;
        }

        // An operator's cancel runs compensate on the event whatever it is; otherwise the worker's rule decides.
        var handler = compensate && saga.Script.HasCompensate ? ScriptHandler.Compensate : HandlerFor(saga.Script, timer, IsFailureResult(workflowEvents, evt.Type, origin));
        // The state and the event go to the script as they are held (the stored document's bytes, the
        // decoded event's fields), not as JSON texts made for it.
        var input = new ScriptInput(null, null, evt.Id, evt.TimeMs, evt.Tenant, sagaName, key, handler)
        {
            State = current?.State,
            Event = evt,
            Origin = origin,
        };
        var scriptStarted = _time.GetTimestamp();
        var result = saga.Script.Run(input);
        if (_telemetry)
        {
            SagasTelemetry.ScriptDuration.Record(_time.GetElapsedTime(scriptStarted).TotalMilliseconds, new KeyValuePair<string, object?>(SagasTelemetry.SagaTag, sagaName));
        }
        if (!result.Succeeded)
        {
            Tracing.Fail(span, result.Failure!.Code);
            Park(work, instance, current, item, evt, manifests, result.Failure!.Code, result.Failure.Message);
            return;
        }
        // A command no effect manifest declares could never be executed: refuse the whole transition.
        if (UndeclaredEffect(result.Output!, manifests) is { } unknown)
        {
            Park(work, instance, current, item, evt, manifests, QuarantineRecords.UnknownEffect, unknown);
            return;
        }
        var step = new StepInput(origin, null, handler == ScriptHandler.Compensate, timer?.Name);
        // The traceparent goes only on what the transition sends on (commands, timers): most send nothing, and the span's id is a new text each time.
        var output = result.Output!;
        var traceParent = output.Commands.Count + output.Schedules.Count > 0 ? Tracing.TraceParent(span, evt.Headers.GetValueOrDefault(EventHeaders.TraceParent)) : null;
        Apply(work, instance, current, evt, sequence, inboxMs, output, dedupeKey, manifests, step, traceParent);
    }

    /// <summary>
    /// What a history step records of the input besides the event: where it came from, the script input
    /// (null: written from the event and its origin), the handler, the timer.
    /// </summary>
    private readonly record struct StepInput(MessageOrigin Origin, string? EventJson, bool Compensate, string? FiredTimer);

    /// <summary>Whether a done instance's retention has passed by the time of a message stored at <paramref name="inboxMs"/> (the log's own time, as for dedupe markers).</summary>
    private bool Expired(SagaInstanceRecord instance, long inboxMs) =>
        instance.ClosedAtInboxMs > 0 && inboxMs > 0
        && inboxMs - instance.ClosedAtInboxMs >= (long)_options.DoneRetention.TotalMilliseconds;

    private void Apply(
        BatchWork work,
        InstanceId instance,
        SagaInstanceRecord? current,
        SagaEvent evt,
        ulong sequence,
        long inboxMs,
        TransitionOutput output,
        byte[] dedupeKey,
        ManifestSet manifests,
        StepInput step,
        string? traceParent,
        int outboxBase = 0)
    {
        var firedTimer = step.FiredTimer;
        var batch = work.Batch;
        // Most transitions neither hold nor touch a timer: then no copies of the (empty) timer tables.
        var noTimers = current?.Timers is null && current?.TimerGenerations is null && output.Schedules.Count == 0;
        var timers = noTimers ? s_noTimers : current?.Timers is null ? new Dictionary<string, long>(StringComparer.Ordinal) : new Dictionary<string, long>(current.Timers, StringComparer.Ordinal);
        var generations = noTimers ? s_noTimers : current?.TimerGenerations is null ? new Dictionary<string, long>(StringComparer.Ordinal) : new Dictionary<string, long>(current.TimerGenerations, StringComparer.Ordinal);
        var version = (current?.Version ?? 0) + 1;
        byte[] ScheduleKey(long due, string name) => StoreKeys.Schedule(_partition, due, instance, name, generations.GetValueOrDefault(name));

        // The timer that fired is spent. Its schedule item is normally gone already (the scheduler
        // deletes it after the PubAck); deleting it here too covers a crash before that delete.
        if (firedTimer is not null && timers.Remove(firedTimer, out var firedDue))
        {
            batch.Delete(KeySpace.Schedule, ScheduleKey(firedDue, firedTimer));
            generations.Remove(firedTimer);
        }

        // The output's lists are read by index: a foreach over the interface boxes an enumerator.
        for (var i = 0; i < output.Cancel.Count; i++)
        {
            var name = output.Cancel[i];
            if (timers.Remove(name, out var due))
            {
                batch.Delete(KeySpace.Schedule, ScheduleKey(due, name));
                generations.Remove(name);
            }
        }
        for (var i = 0; i < output.Schedules.Count; i++)
        {
            var schedule = output.Schedules[i];
            if (timers.Remove(schedule.Name, out var previous))
            {
                batch.Delete(KeySpace.Schedule, ScheduleKey(previous, schedule.Name));
                generations.Remove(schedule.Name);
            }
            if (output.Done)
            {
                continue;
            }
            timers[schedule.Name] = schedule.DueMs;
            generations[schedule.Name] = version;
            var record = new ScheduleRecord
            {
                Tenant = instance.Tenant.Value,
                Saga = instance.Saga.Value,
                Key = instance.Key.Value,
                Name = schedule.Name,
                DueMs = schedule.DueMs,
                Generation = version,
                Payload = schedule.PayloadJson is null ? null : JsonElement.Parse(schedule.PayloadJson),
                Deadline = schedule.Deadline,
                CausationId = evt.Id,
                TraceParent = traceParent,
            };
            work.Scheduled = true;
            batch.Put(KeySpace.Schedule, ScheduleKey(schedule.DueMs, schedule.Name),
                JsonSerializer.SerializeToUtf8Bytes(record, CoreJsonContext.Default.ScheduleRecord));
        }
        if (output.Done)
        {
            // A finished instance has no timers left to fire.
            foreach (var (name, due) in timers)
            {
                batch.Delete(KeySpace.Schedule, ScheduleKey(due, name));
            }
            timers.Clear();
            generations.Clear();
        }

        // Most transitions send no command: then no lists for none.
        var commandCount = output.Commands.Count;
        var commandIds = commandCount == 0 ? [] : new string[commandCount];
        var messages = commandCount == 0 ? [] : new CommandMessage[commandCount];
        for (var i = 0; i < commandCount; i++)
        {
            var command = output.Commands[i];
            var commandId = CommandIdOf(instance, evt.Id, command, i);
            var message = new CommandMessage
            {
                CommandId = commandId,
                Tenant = instance.Tenant.Value,
                Effect = command.Effect,
                Pool = PoolOf(command, manifests),
                Saga = instance.Saga.Value,
                CorrelationId = instance.Key.Value,
                CausationId = evt.Id,
                Payload = command.Payload,
                CreatedAt = CloudEventEncoder.FormatTime(evt.Time),
                TraceParent = traceParent,
            };
            var outboxKey = StoreKeys.Outbox(_partition, sequence, outboxBase + i);
            work.PutJson(KeySpace.Outbox, outboxKey, message, CoreJsonContext.Default.CommandMessage);
            work.Outbox.Add(new OutboxEntry(outboxKey, message));
            commandIds[i] = commandId;
            messages[i] = message;
        }

        var next = new SagaInstanceRecord
        {
            State = output.State,
            Done = output.Done,
            Version = version,
            Timers = timers.Count == 0 ? null : timers,
            TimerGenerations = generations.Count == 0 ? null : generations,
            CreatedAtMs = current?.CreatedAtMs ?? evt.TimeMs,
            UpdatedAtMs = evt.TimeMs,
            LastEventId = evt.Id,
            ManifestHash = manifests.Hash,
            ClosedAtInboxMs = output.Done ? inboxMs : 0,
        };
        work.PutJson(KeySpace.Saga, StoreKeys.Instance(_partition, instance), next, CoreJsonContext.Default.SagaInstanceRecord);
        var keep = _options.HistoryLimit;
        if (keep > 0)
        {
            HistoryWriter.Put(work, StoreKeys.History(_partition, instance, version),
                version, evt, step.Origin, sequence, inboxMs, manifests.Hash, step.Compensate, firedTimer, output, messages, step.EventJson);
            if (version > keep)
            {
                batch.Delete(KeySpace.History, StoreKeys.History(_partition, instance, version - keep));
            }
        }
        PutDedupe(work, dedupeKey, sequence, DedupeRecord.Applied, evt.TimeMs, inboxMs);
        work.Notices.Add(new TransitionNotice(_partition, instance, next.Version, evt.Id, evt.Type, output.State, commandIds, output.Done));
        work.Instances[instance] = next;
        SagasLog.Transition(_logger, instance.Tenant.Value, instance.Saga.Value, instance.Key.Value, next.Version, evt.Type, evt.Id, output.Commands.Count, output.Schedules.Count, output.Done);
    }

    /// <summary>
    /// The marker's time is the inbox message's own (the stream's timestamp, the same on every
    /// replica that reads it), so whether a marker has expired for a later message is decided by
    /// the log alone, and a replay elsewhere decides it the same way.
    /// </summary>
    private static void PutDedupe(BatchWork work, byte[] key, ulong sequence, string outcome, long atMs, long inboxMs) =>
        work.PutJson(KeySpace.Dedupe, key,
            new DedupeRecord { InboxSequence = sequence, Outcome = outcome, AtMs = atMs, CommittedAtMs = inboxMs },
            CoreJsonContext.Default.DedupeRecord);

    /// <summary>Whether a marker still stands for a message stored at <paramref name="inboxMs"/>: within the retention, in the log's own time.</summary>
    private bool Remembered(ReadOnlySpan<byte> marker, long inboxMs)
    {
        DedupeRecord? record;
        try
        {
            record = JsonSerializer.Deserialize(marker, CoreJsonContext.Default.DedupeRecord);
        }
        catch (JsonException)
        {
            return true; // unreadable: keep treating the event as seen rather than apply it twice
        }
        return record is null || record.CommittedAtMs <= 0 || inboxMs <= 0
            || inboxMs - record.CommittedAtMs < (long)_options.DedupeRetention.TotalMilliseconds;
    }

    private void Quarantine(BatchWork work, JetStreamMessage msg, string reason, string detail, string? saga, string? tenant, string? key, bool parked = false)
    {
        var origin = QuarantineRecords.Add(work.Batch, msg, Stage, reason, detail, _options.QuarantinePayloadBytes, _time, saga, tenant, key, _partition, parked, counted: _telemetry);
        SagasLog.Quarantined(_logger, origin.Stream, origin.Sequence, origin.Subject, Stage, reason, detail, tenant, saga, key);
        work.Terminated.Add(msg);
    }

    /// <summary>Quarantines a message just read (and terminates it), or one held for a parked instance that cannot run any more.</summary>
    private void Quarantine(BatchWork work, InboxItem item, string reason, string detail, string? saga, string? tenant, string? key, bool parked = false)
    {
        if (item.Msg is { } msg)
        {
            Quarantine(work, msg, reason, detail, saga, tenant, key, parked);
            return;
        }
        QuarantineRecords.AddHeld(work.Batch, item.ToHeld(), _options.JetStream.Streams.Inbox, Stage, reason, detail, _options.QuarantinePayloadBytes, _time, saga, tenant, key, _partition, parked, counted: _telemetry);
        SagasLog.Quarantined(_logger, _options.JetStream.Streams.Inbox, item.Sequence, item.Subject, Stage, reason, detail, tenant, saga, key);
    }

    private static bool TryOrigin(IReadOnlyDictionary<string, string> headers, out MessageOrigin origin)
    {
        origin = default;
        if (!headers.TryGetValue(EventHeaders.OriginStream, out var stream)
            || !headers.TryGetValue(EventHeaders.OriginSubject, out var subject)
            || !Number(headers, EventHeaders.OriginSequence, NumberStyles.None, out ulong seq)
            || !Number(headers, EventHeaders.OriginTime, NumberStyles.Integer, out long timeMs))
        {
            return false;
        }
        origin = new MessageOrigin(EventHeaders.Decode(stream), seq, EventHeaders.Decode(subject), DateTimeOffset.FromUnixTimeMilliseconds(timeMs));
        return true;
    }

    /// <summary>A header as an integer: a delivered message's from its bytes (no text is made), a held one's from its text.</summary>
    private static bool Number<T>(IReadOnlyDictionary<string, string> headers, string name, NumberStyles style, out T value) where T : struct, System.Numerics.IBinaryInteger<T>
    {
        if (headers is MessageHeaderList list)
        {
            return list.TryGetNumber(name, style, out value);
        }
        value = T.Zero;
        return headers.TryGetValue(name, out var text) && T.TryParse(text, style, CultureInfo.InvariantCulture, out value);
    }
}
