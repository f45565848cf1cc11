using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
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
/// timers and commit — on a scratch store of its own, before the replica takes any lease. Runner's
/// own code, Jint and the NATS client have no precompiled images and are compiled fully optimized
/// on their first call: without this, a fresh replica's first events wait for several hundred
/// milliseconds of that (bench/README.md, "A warm-up before the first lease"). Nothing of it
/// reaches NATS, the replica's store, its metrics or its traces; the scratch store is deleted when
/// it is done.
/// </summary>
internal static class HotPathWarmUp
{
    /// <summary>The built-in saga. Its name cannot clash with anything: it is only ever loaded here.</summary>
    public const string SagaName = "runner-warm-up";

    public const string Tenant = "runner-warm-up";

    /// <summary>Instances per batch; each gets <see cref="EventsPerInstance"/> events in the batch, so each batch starts, updates and finishes them.</summary>
    public const int InstancesPerBatch = 16;

    public const int EventsPerInstance = 4;

    /// <summary>Batches run: enough calls for framework code to reach its optimized tier too (it is recompiled after 30 calls).</summary>
    public const int Batches = 8;

    public const int Events = Batches * InstancesPerBatch * EventsPerInstance;

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
    /// Runs the warm-up in <paramref name="scratch"/> (made empty first, deleted after). Returns what
    /// it did, checked against what the built-in saga must have left in the scratch store; throws
    /// when that is not what the store holds, so a warm-up that stopped doing its job is seen.
    /// </summary>
    public static async Task<WarmUpResult> RunAsync(INatsJSContext js, SagaRuntimeOptions options, string scratch, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        DeleteScratch(scratch);
        try
        {
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

            using var store = new LmdbStore(new LmdbOptions { Path = Path.Combine(scratch, "store"), Durable = false, InitialMapSize = 16L * 1024 * 1024, Telemetry = false }, NullLogger<LmdbStore>.Instance);
            // One partition, so every instance is this worker's; the router step still computes the replica's own partitions.
            var worker = new PartitionWorker(js, store, () => manifests, options with { Partitions = 1 }, new PartitionId(0), relay: null, listener: null,
                NullLogger.Instance, TimeProvider.System, telemetry: false);
            var sequence = 0UL;
            for (var b = 0; b < Batches; b++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var batch = new List<JetStreamMessage>(InstancesPerBatch * EventsPerInstance);
                for (var e = 0; e < EventsPerInstance; e++)
                {
                    for (var i = 0; i < InstancesPerBatch; i++)
                    {
                        sequence++;
                        batch.Add(Routed(manifests, options, streams, $"k{b}-{i}", sequence));
                    }
                }
                if (!await worker.ProcessBatchAsync(batch, cancellationToken))
                {
                    throw new InvalidOperationException($"the warm-up's batch {b + 1} did not commit");
                }
            }
            var done = Check(store);
            return new WarmUpResult(Events, done, Stopwatch.GetElapsedTime(started));
        }
        finally
        {
            DeleteScratch(scratch);
        }
    }

    /// <summary>An event as the router turns it into an inbox message: matched, decoded, re-encoded, keyed and given the router's headers.</summary>
    private static JetStreamMessage Routed(ManifestSet manifests, SagaRuntimeOptions options, StreamNames streams, string key, ulong sequence)
    {
        var subject = $"aggregate.{Tenant}.warm-up.{key}.noted";
        var body = Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture,
            $$$"""{"specversion":"1.0","id":"w-{{{sequence}}}","source":"runner/warm-up","type":"noted","datacontenttype":"application/json","data":{"key":"{{{key}}}","amount":{{{sequence % 7}}}}}"""));
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

        var headers = new StringBuilder("NATS/1.0\r\n");
        Header(headers, EventHeaders.TenantId, evt.Tenant);
        Header(headers, EventHeaders.Saga, EventHeaders.Encode(saga.Name));
        Header(headers, EventHeaders.Key, EventHeaders.Encode(correlation));
        Header(headers, EventHeaders.Partition, "0");
        Header(headers, EventHeaders.OriginStream, origin.Stream);
        Header(headers, EventHeaders.OriginSequence, sequence.ToString(CultureInfo.InvariantCulture));
        Header(headers, EventHeaders.OriginSubject, subject);
        Header(headers, EventHeaders.OriginTime, time.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture));
        headers.Append("\r\n");
        // As the server names a delivery ($JS.ACK.stream.consumer.delivered.sseq.cseq.time.pending): the worker reads it from there.
        var reply = string.Create(CultureInfo.InvariantCulture, $"$JS.ACK.{streams.Inbox}.warm-up.1.{sequence}.{sequence}.{time.ToUnixTimeMilliseconds() * 1_000_000}.0");
        return new JetStreamMessage(DiscardedAcks.Instance, Core.Subjects.Subjects.Inbox(new PartitionId(0)), reply, Encoding.ASCII.GetBytes(headers.ToString()), data, Encoding.ASCII);

        static void Header(StringBuilder block, string name, string value) => block.Append(name).Append(": ").Append(value).Append("\r\n");
    }

    /// <summary>Every instance the warm-up started must be done, its state counted up by all its events; returns how many.</summary>
    private static int Check(LmdbStore store)
    {
        var prefix = Encoding.UTF8.GetBytes(StoreKeys.Partition(new PartitionId(0)) + StoreKeys.Separator);
        var records = store.Read(prefix, static (reader, prefix) => reader.Scan(KeySpace.Saga, prefix, int.MaxValue));
        var done = 0;
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
            done++;
        }
        if (done != Batches * InstancesPerBatch)
        {
            throw new InvalidOperationException($"the warm-up left {done} instances, not {Batches * InstancesPerBatch}");
        }
        return done;
    }

    private static void DeleteScratch(string scratch)
    {
        if (Directory.Exists(scratch))
        {
            Directory.Delete(scratch, recursive: true);
        }
    }
}

/// <summary>What a warm-up ran: events through the worker, instances it started and finished, and how long it took.</summary>
internal readonly record struct WarmUpResult(int Events, int Instances, TimeSpan Elapsed);
