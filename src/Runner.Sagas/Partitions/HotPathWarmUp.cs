using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Core;
using Runner.Core.Events;
using Runner.Core.Ids;
using Runner.Core.Keys;
using Runner.Messaging;
using Runner.Sagas.Manifests;
using Runner.Storage;

namespace Runner.Sagas.Partitions;

/// <summary>
/// Runs a built-in saga through the code every event takes — the router's decode, match and
/// correlation, then the partition worker's decode, dedupe read, script, history, outbox items,
/// timers and commit — on a scratch store of its own, before the replica takes any lease. What has
/// no precompiled code is compiled fully optimized on its first call: in a published runner, the
/// generic code over other assemblies' types that its images cannot hold; in a build, all of
/// Runner's, Jint's and the NATS client's code. Without this, a fresh replica's first events wait
/// for that (bench/README.md, "A warm-up before the first lease" and "Precompiled images"). Nothing
/// of it reaches NATS, the replica's store, its metrics or its traces; the scratch store is deleted
/// when it is done.
/// </summary>
internal static class HotPathWarmUp
{
    /// <summary>The built-in saga's tenant (its saga is <c>runner-warm-up</c>, only ever loaded here, on the scratch store).</summary>
    public const string Tenant = "runner-warm-up";

    /// <summary>The scratch directory's name, next to the replica's store directory.</summary>
    public const string DirectoryName = "runner-warm-up";

    /// <summary>Written into the scratch directory first: only a directory holding it is ever deleted.</summary>
    public const string Marker = ".runner-warm-up";

    /// <summary>Instances are run in groups: a batch carries one event of each instance of its group.</summary>
    public const int Groups = 8;

    public const int InstancesPerGroup = 16;

    public const int EventsPerInstance = 4;

    public const int Instances = Groups * InstancesPerGroup;

    public const int Events = Instances * EventsPerInstance;

    /// <summary>Commands each instance's script emits (every other event).</summary>
    private const int CommandsPerInstance = EventsPerInstance / 2;

    private const string Manifest = """
        kind: saga
        name: runner-warm-up
        script: runner-warm-up.js
        triggers:
          - stream: {STREAM}
            subject: "aggregate.*.warm-up.*.noted"
            correlation: "subject[3]"
        """;

    private const string Effects = """
        kind: effect
        name: runner.warm-up
        provider: http
        http: { url: "http://127.0.0.1:9/warm-up" }
        """;

    /// <summary>Starts, updates and finishes an instance; sets, cancels and drops a timer; commands an effect every other event.</summary>
    private const string Script = """
        'use strict';
        function on_event(state, event, ctx) {
          const s = state || { count: 0, total: 0, seen: [], status: 'open' };
          const amount = typeof event.data.amount === 'number' ? event.data.amount : 0;
          const count = s.count + 1;
          const total = s.total + amount;
          const seen = s.seen.concat([event.id]).slice(-3);
          const result = { state: { count: count, total: total, seen: seen, status: count < 4 ? 'open' : 'closed', label: `${event.type}:${count}` } };
          if (count % 2 === 0) {
            result.commands = [{ effect: 'runner.warm-up', id: ctx.id('c' + count), payload: { key: event.data.key, total: total } }];
          }
          if (count === 1) {
            result.schedules = [{ name: 'reminder', after_ms: 60000, payload: { count: count } }];
          }
          if (count === 3) {
            result.cancel = ['reminder'];
          }
          if (count >= 4) {
            result.done = true;
          }
          return result;
        }
        """;

    /// <summary>
    /// Runs the warm-up in <paramref name="scratch"/> (cleared first if a warm-up left it, deleted
    /// after). Returns what it did, checked against what the built-in saga must have left in the
    /// scratch store; throws when that is not what the store holds, so a warm-up that stopped doing
    /// its job is seen. A directory at <paramref name="scratch"/> that is not a warm-up's is left
    /// alone, and the warm-up fails.
    /// </summary>
    public static async Task<WarmUpResult> RunAsync(INatsJSContext js, SagaRuntimeOptions options, string scratch, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        DeleteScratch(scratch);
        Directory.CreateDirectory(scratch);
        // Not cancelled half-way: without its marker the directory would not be deleted below.
        await File.WriteAllTextAsync(Path.Combine(scratch, Marker), "a saga replica's warm-up: deleted when it is done\n", CancellationToken.None);
        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            var streams = options.JetStream.Streams;
            var manifestDirectory = Path.Combine(scratch, "manifests");
            Directory.CreateDirectory(manifestDirectory);
            await File.WriteAllTextAsync(Path.Combine(manifestDirectory, "runner-warm-up.yaml"), Manifest.Replace("{STREAM}", streams.AggregateEvents, StringComparison.Ordinal), cancellationToken);
            await File.WriteAllTextAsync(Path.Combine(manifestDirectory, "runner-warm-up.js"), Script, cancellationToken);
            await File.WriteAllTextAsync(Path.Combine(manifestDirectory, "effects.yaml"), Effects, cancellationToken);
            var loaded = ManifestLoader.Load(manifestDirectory, streams);
            if (!loaded.Succeeded)
            {
                throw new InvalidOperationException("the warm-up saga does not load: " + string.Join("; ", loaded.Errors));
            }
            var manifests = loaded.Set!;

            // Durable, as the replica's own: its commits take the same path.
            using var store = new LmdbStore(new LmdbOptions { Path = Path.Combine(scratch, "store"), InitialMapSize = 16L * 1024 * 1024, Telemetry = false }, NullLogger<LmdbStore>.Instance);
            // One partition, so every instance is this worker's; the router step still computes the replica's own partitions.
            var worker = new PartitionWorker(js, store, () => manifests, options with { Partitions = 1 }, new PartitionId(0), relay: null, listener: null,
                NullLogger.Instance, TimeProvider.System, telemetry: false);
            var sequence = 0UL;
            // Each instance's events come in batches of their own (a round is one event of every instance), so all but
            // the first read the instance as an earlier commit stored it, as most events do.
            for (var round = 0; round < EventsPerInstance; round++)
            {
                for (var group = 0; group < Groups; group++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var batch = new List<JetStreamMessage>(InstancesPerGroup + 1);
                    for (var i = 0; i < InstancesPerGroup; i++)
                    {
                        sequence++;
                        batch.Add(Routed(manifests, options, streams, $"k{group}-{i}", $"w-{group}-{i}-{round}", sequence));
                    }
                    if (round == 1 && group == 0)
                    {
                        // The first event of an instance, delivered again: dropped by its dedupe marker.
                        sequence++;
                        batch.Add(Routed(manifests, options, streams, "k0-0", "w-0-0-0", sequence));
                    }
                    if (!await worker.ProcessBatchAsync(batch, cancellationToken))
                    {
                        throw new InvalidOperationException($"a batch of the warm-up (round {round + 1}, group {group + 1}) did not commit");
                    }
                }
            }
            Check(store, options.HistoryLimit);
            return new WarmUpResult(Events, Instances, Stopwatch.GetElapsedTime(started));
        }
        finally
        {
            try
            {
                DeleteScratch(scratch);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Left for the next start, which deletes it first; what went wrong before, if anything, is what is reported.
            }
        }
    }

    /// <summary>An event as the router turns it into an inbox message: matched, decoded, re-encoded, keyed and given the router's headers.</summary>
    private static JetStreamMessage Routed(ManifestSet manifests, SagaRuntimeOptions options, StreamNames streams, string key, string id, ulong sequence)
    {
        var subject = $"aggregate.{Tenant}.warm-up.{key}.noted";
        var body = Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture,
            $$$"""{"specversion":"1.0","id":"{{{id}}}","source":"runner/warm-up","type":"noted","datacontenttype":"application/json","data":{"key":"{{{key}}}","amount":{{{sequence % 7}}}}}"""));
        var time = DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000 + (long)sequence);
        var origin = new MessageOrigin(streams.AggregateEvents, sequence, subject, time);
        var matches = manifests.Match(streams.AggregateEvents, subject);
        if (matches is not { Count: 1 })
        {
            throw new InvalidOperationException($"the warm-up saga does not match {subject}");
        }
        var (saga, trigger) = matches[0];
        if (!CloudEventDecoder.TryDecode(body, MessageHeaderList.Empty, origin, options.MaxEventBytes, out var evt, out var error))
        {
            throw new InvalidOperationException($"the warm-up event does not decode: {error!.Message}");
        }
        var correlation = trigger.Correlation.Evaluate(evt!)
            ?? throw new InvalidOperationException("the warm-up event has no correlation key");
        _ = Partitioner.PartitionOf(new InstanceId(new TenantId(evt!.Tenant), new SagaName(saga.Name), new CorrelationKey(correlation)), options.Partitions);
        var data = CloudEventEncoder.ToStructuredJson(evt);
        var headers = new NatsHeaders();
        Routing.Router.SetInboxHeaders(headers, string.Create(CultureInfo.InvariantCulture, $"00-{sequence:x32}-{sequence:x16}-01"), evt.Tenant, saga.Name, correlation, "0", origin);
        return JetStreamMessage.InProcess(Core.Subjects.Subjects.Inbox(new PartitionId(0)), streams.Inbox, "warm-up", sequence, time, headers, data);
    }

    /// <summary>
    /// What the built-in saga must have left: every instance done and counted up by all its events,
    /// its commands in the outbox, its timer set and cancelled, a step per event (up to the history
    /// limit), a dedupe marker per event, and nothing quarantined.
    /// </summary>
    private static void Check(LmdbStore store, int historyLimit)
    {
        var prefix = Encoding.UTF8.GetBytes(StoreKeys.Partition(new PartitionId(0)) + StoreKeys.Separator);
        var (records, outbox, schedules, history, dedupe, quarantine) = store.Read(prefix, static (reader, prefix) => (
            reader.Scan(KeySpace.Saga, prefix, int.MaxValue),
            reader.Count(KeySpace.Outbox),
            reader.Count(KeySpace.Schedule),
            reader.Count(KeySpace.History),
            reader.Count(KeySpace.Dedupe),
            reader.Count(KeySpace.Quarantine)));
        foreach (var (_, value) in records)
        {
            var record = JsonSerializer.Deserialize(value, CoreJsonContext.Default.SagaInstanceRecord)
                ?? throw new InvalidOperationException("the warm-up left an unreadable instance");
            var state = record.State;
            if (!record.Done || state.ValueKind != JsonValueKind.Object
                || !state.TryGetProperty("count", out var count) || count.GetInt32() != EventsPerInstance)
            {
                throw new InvalidOperationException($"a warm-up instance ended as {state.GetRawText()} (done: {record.Done}), not counted up by {EventsPerInstance} events and done");
            }
        }
        Expect("instances", records.Count, Instances);
        Expect("outbox items", outbox, Instances * CommandsPerInstance);
        Expect("schedules", schedules, 0);
        Expect("history steps", history, Instances * (long)Math.Min(EventsPerInstance, historyLimit));
        Expect("dedupe markers", dedupe, Events);
        Expect("quarantine records", quarantine, 0);

        static void Expect(string what, long found, long expected)
        {
            if (found != expected)
            {
                throw new InvalidOperationException($"the warm-up left {found} {what}, not {expected}");
            }
        }
    }

    private static void DeleteScratch(string scratch)
    {
        if (!Directory.Exists(scratch))
        {
            return;
        }
        if (!File.Exists(Path.Combine(scratch, Marker)))
        {
            throw new InvalidOperationException($"{scratch} exists and is not a warm-up's: it is left as it is, and the warm-up is not run");
        }
        Directory.Delete(scratch, recursive: true);
    }
}

/// <summary>What a warm-up ran: events through the worker, instances it started and finished, and how long it took.</summary>
internal readonly record struct WarmUpResult(int Events, int Instances, TimeSpan Elapsed);
