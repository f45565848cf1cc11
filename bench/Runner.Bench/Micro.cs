using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Core.Events;
using Runner.Core.Ids;
using Runner.Core.Keys;
using Runner.Messaging;
using Runner.Sagas;
using Runner.Sagas.Manifests;
using Runner.Sagas.Partitions;
using Runner.Scripting;
using Runner.Storage;
using Runner.Testing;

namespace Runner.Bench;

/// <summary>
/// Diagnostic (--micro): the per-event CPU and allocation of each in-process step, one thread,
/// no network — script run, router decode, partition worker batch (Process + LMDB commit), and
/// the latency of a durable LMDB commit (fsync). Tells where the end-to-end CPU goes.
/// </summary>
internal static class Micro
{
    public static async Task RunAsync(BenchOptions options, TextWriter output, CancellationToken cancellationToken)
    {
        using var dir = new TempDirectory("runner-bench-micro");
        var manifestDir = dir.File("manifests");
        Directory.CreateDirectory(manifestDir);
        await File.WriteAllTextAsync(Path.Combine(manifestDir, "bench.yaml"), RunnerBench.Manifest, cancellationToken);
        await File.WriteAllTextAsync(Path.Combine(manifestDir, "bench.js"), RunnerBench.Script, cancellationToken);
        await File.WriteAllTextAsync(Path.Combine(manifestDir, "effects.yaml"), RunnerBench.Effects, cancellationToken);
        var runtimeOptions = new SagaRuntimeOptions { Partitions = 1, JetStream = new JetStreamSettings { Batch = options.Batch } };
        var manifests = ManifestLoader.Load(manifestDir, runtimeOptions.JetStream.Streams).Set!;
        var saga = manifests.Saga(Wire.Saga)!;
        var iterations = Math.Max(1_000, options.Events);

        output.WriteLine(Text.Inv($"micro: {iterations} iterations per step on one thread (after as many warm-up iterations); machine load {File.ReadAllText("/proc/loadavg").Trim()}"));

        // 1. The script alone (Jint sandbox from the pool: parse state + event, call on_event, serialize, parse output).
        var origin = new MessageOrigin("AGGREGATE_EVENTS", 1, Wire.Subject(1), DateTimeOffset.UnixEpoch);
        CloudEventDecoder.TryDecode(Wire.Event(1, 1, 123), new Dictionary<string, string>(), origin, 1 << 20, out var evt, out _);
        var eventJson = Scripting.EventArgument.Json(evt!, origin);
        // On a script thread, as the partition worker runs it (elsewhere each call would start a thread of its own).
        await ScriptThreads.RunAsync(() =>
        {
            Measure(output, "script: SagaScript.Run (Jint on_event, counter + 1 command)", iterations, i =>
            {
                var input = new ScriptInput("{\"count\":5}", eventJson, "1-" + i.ToString(CultureInfo.InvariantCulture), 1_000, Wire.Tenant, Wire.Saga, "k1");
                if (!saga.Script.Run(input).Succeeded)
                {
                    throw new InvalidOperationException("script failed");
                }
            });
            return true;
        });

        // PubAck parse, as the pipeline reads one per publish: the client's serializer, then Runner's reader.
        var pubAck = new System.Buffers.ReadOnlySequence<byte>("{\"stream\":\"RUNNER_INBOX\",\"seq\":1234567}"u8.ToArray());
        Measure(output, "PubAck: the client's serializer", iterations, _ =>
            NatsJSJsonSerializer<NATS.Client.JetStream.Models.PubAckResponse>.Default.Deserialize(pubAck));
        var pubAckReader = new PubAckReader();
        Measure(output, "PubAck: PubAckReader", iterations, _ => pubAckReader.Read(pubAck));

        // 2. Router work per event, without the publish: headers, match, decode, re-encode, key, partition.
        Measure(output, "router: headers + match + CloudEvent decode + re-encode + key", iterations, i =>
        {
            var headers = MessageHeaderList.Empty;
            foreach (var (s, trigger) in manifests.Match("AGGREGATE_EVENTS", Wire.Subject(i % 1000)) ?? [])
            {
                var o = new MessageOrigin("AGGREGATE_EVENTS", (ulong)i + 1, Wire.Subject(i % 1000), DateTimeOffset.UnixEpoch);
                CloudEventDecoder.TryDecode(Wire.Event(1, i, 123), headers, o, 1 << 20, out var e, out _);
                _ = CloudEventEncoder.ToStructuredJson(e!);
                var key = trigger.Correlation.Evaluate(e!);
                _ = Partitioner.PartitionOf(new InstanceId(new TenantId(e!.Tenant), new SagaName(s.Name), new CorrelationKey(key!)), 16);
            }
        });

        // 3. A partition worker batch: Process every message (decode, dedupe read, load state, script,
        //    records, serialize) and commit it in one LMDB transaction. Non-durable here: CPU only.
        foreach (var durable in new[] { false, true })
        {
            using var store = new LmdbStore(new LmdbOptions { Path = dir.File(durable ? "lmdb-durable" : "lmdb"), Durable = durable }, NullLogger<LmdbStore>.Instance);
            await using var connection = new NatsConnection(new NatsOpts { Url = "nats://127.0.0.1:1" });
            var worker = new PartitionWorker(new NatsJSContext(connection), store, () => manifests, runtimeOptions, new PartitionId(0), null, null, NullLogger.Instance, TimeProvider.System);
            var batchSize = options.Batch;
            var sequence = 0UL;
            List<JetStreamMessage> NextBatch()
            {
                var batch = new List<JetStreamMessage>(batchSize);
                for (var j = 0; j < batchSize; j++)
                {
                    sequence++;
                    var n = (int)sequence;
                    var key = "k" + (n % options.Keys).ToString(CultureInfo.InvariantCulture);
                    var headers = new NatsHeaders
                    {
                        [EventHeaders.TenantId] = Wire.Tenant,
                        [EventHeaders.Saga] = Wire.Saga,
                        [EventHeaders.Key] = key,
                        [EventHeaders.Partition] = "0",
                        [EventHeaders.OriginStream] = "AGGREGATE_EVENTS",
                        [EventHeaders.OriginSequence] = sequence.ToString(CultureInfo.InvariantCulture),
                        [EventHeaders.OriginSubject] = Wire.Subject(n % options.Keys),
                        [EventHeaders.OriginTime] = "1700000000000",
                    };
                    batch.Add(Delivered(Core.Subjects.Subjects.Inbox(new PartitionId(0)), headers, Wire.Event(7, n, 123), sequence));
                }
                return batch;
            }
            var batches = Math.Max(4, iterations / batchSize);
            for (var b = 0; b < batches; b++)
            {
                await worker.ProcessBatchAsync(NextBatch(), cancellationToken);
            }
            var prepared = Enumerable.Range(0, batches).Select(_ => NextBatch()).ToList();
            using var types = AllocTypes.StartIfAsked();
            var commits0 = store.Writer.Commits;
            var cpu0 = ProcessCpu();
            var alloc0 = GC.GetTotalAllocatedBytes(precise: true);
            var started = Stopwatch.GetTimestamp();
            foreach (var batch in prepared)
            {
                if (!await worker.ProcessBatchAsync(batch, cancellationToken))
                {
                    throw new InvalidOperationException("batch did not commit");
                }
            }
            var wall = Stopwatch.GetElapsedTime(started).TotalSeconds;
            if (store.Writer.Commits == commits0)
            {
                throw new InvalidOperationException("the worker committed nothing: its messages were not taken as new deliveries");
            }
            var cpu = ProcessCpu() - cpu0;
            var alloc = GC.GetTotalAllocatedBytes(precise: true) - alloc0;
            var events = batches * batchSize;
            if (types is not null)
            {
                types.On = false;
                types.Print(output);
            }
            output.WriteLine(Text.Inv($"  worker batch of {batchSize} (Process ×{batchSize} + 1 commit, durable={durable}): {1e6 * wall / events,7:F1} µs/event wall, {1e6 * cpu / events,7:F1} µs/event cpu (all threads), {alloc / (double)events / 1024,6:F1} KiB/event; {1e3 * wall / batches:F2} ms/batch; {store.Writer.Commits - commits0} commits"));
        }

        // 4. Durable commit latency (the fsync a partition waits for before it acks).
        using (var store = new LmdbStore(new LmdbOptions { Path = dir.File("lmdb-fsync") }, NullLogger<LmdbStore>.Instance))
        {
            var samples = new List<long>();
            for (var i = 0; i < 200; i++)
            {
                var batch = new WriteBatch();
                batch.Put(KeySpace.Checkpoint, StoreKeys.Checkpoint("micro", new PartitionId(0)), BitConverter.GetBytes(i));
                var t = Stopwatch.GetTimestamp();
                await store.Writer.CommitAsync(batch, cancellationToken);
                samples.Add((long)Stopwatch.GetElapsedTime(t).TotalMicroseconds);
            }
            output.WriteLine($"  durable LMDB commit of one small write, sequential: {new Percentiles(samples.Skip(20)).Summary()}");
        }
    }

    private static double ProcessCpu()
    {
        var stat = File.ReadAllText("/proc/self/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
    }

    private static void Measure(TextWriter output, string name, int iterations, Action<int> step)
    {
        for (var i = 0; i < iterations; i++)
        {
            step(i);
        }
        var alloc0 = GC.GetAllocatedBytesForCurrentThread();
        var started = Stopwatch.GetTimestamp();
        for (var i = 0; i < iterations; i++)
        {
            step(iterations + i);
        }
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var alloc = GC.GetAllocatedBytesForCurrentThread() - alloc0;
        output.WriteLine(Text.Inv($"  {name}: {1e6 * seconds / iterations,7:F1} µs/op, {alloc / (double)iterations / 1024,6:F1} KiB/op"));
    }

    /// <summary>An inbox message as the partition worker receives it: its headers as the bytes they come in; acks go nowhere.</summary>
    private static JetStreamMessage Delivered(string subject, NatsHeaders headers, byte[] data, ulong sequence) =>
        JetStreamMessage.InProcess(subject, "RUNNER_INBOX", "micro", sequence, DateTimeOffset.UnixEpoch, headers, data);
}
