using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace Runner.Host.Commands;

/// <summary>
/// The pipeline half of <c>runner demo</c>: generates four partitions of order records (a few of
/// them bad), asks the pipeline-run saga for a run, and prints the run's outcome as the saga
/// announces it on <c>pipeline.{tenant}.{pipeline}.run.completed|failed</c> — each partition a
/// slice launched in its own sandbox by the effect worker — with its totals and lineage.
/// </summary>
internal static class DemoPipeline
{
    public const string Tenant = "acme";
    public const string Pipeline = "orders-daily";
    private const int RecordsPerPartition = 25_000;

    /// <summary>The directory slices may read and write (the slice effect's PIPELINE_ROOT).</summary>
    public static string Root(string scratch) => Path.Combine(scratch, "pipelines");

    /// <summary>Writes the inputs and the contract, and returns the run request's data.</summary>
    public static JsonObject Prepare(string root, string runId)
    {
        var dir = Path.Combine(root, runId);
        var input = Path.Combine(dir, "in");
        var output = Path.Combine(dir, "out");
        Directory.CreateDirectory(input);
        Directory.CreateDirectory(output);
        // Slices run as an unprivileged user outside their sandbox: the output directory is theirs to write.
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(output, (UnixFileMode)0x1FF);
        }
        File.WriteAllText(Path.Combine(dir, "orders.v1.yaml"), """
            contract: orders
            version: 1
            fields:
              order_id: { type: string, required: true, pattern: "^o-[0-9]+$" }
              amount:   { type: number, required: true, min: 0 }
              status:   { type: string, enum: [new, paid, shipped] }
              ts:       { type: timestamp }
            """);
        var inputs = new JsonArray();
        var random = new Random(42);
        string[] statuses = ["new", "paid", "shipped"];
        for (var p = 0; p < 4; p++)
        {
            var path = Path.Combine(input, $"p{p}.jsonl");
            // p3's input arrives late: written aside, it is moved into place when its first slice has failed.
            using (var writer = new StreamWriter(p == 3 ? LatePath(path) : path, append: false, new UTF8Encoding(false)))
            {
                for (var i = 0; i < RecordsPerPartition; i++)
                {
                    var id = random.Next(500) == 0 ? $"bad-{p}-{i}" : $"o-{p}{i:000000}";
                    var amount = Math.Round(random.NextDouble() * 1000 - 20, 2).ToString(CultureInfo.InvariantCulture);
                    writer.Write($"{{\"order_id\":\"{id}\",\"customer_id\":\"c-{random.Next(5000)}\",\"amount\":{amount},\"status\":\"{statuses[random.Next(3)]}\",\"ts\":\"2026-11-{random.Next(1, 29):00}T{random.Next(24):00}:00:00Z\"}}\n");
                }
            }
            inputs.Add((JsonNode)new JsonObject { ["partition"] = $"p{p}", ["path"] = path });
        }
        return new JsonObject
        {
            ["run_id"] = runId,
            ["pipeline"] = Pipeline,
            ["pool"] = "etl",
            ["inputs"] = inputs,
            ["output_dir"] = output,
            ["contract"] = new JsonObject { ["schema"] = Path.Combine(dir, "orders.v1.yaml"), ["on_violation"] = "dead_letter", ["max_violation_ratio"] = 0.05 },
            ["transforms"] = new JsonArray(
                new JsonObject { ["type"] = "filter", ["where"] = "amount > 0" },
                new JsonObject { ["type"] = "select", ["fields"] = new JsonArray("order_id", "customer_id", "amount", "status", "ts") },
                new JsonObject { ["type"] = "map", ["set"] = new JsonObject { ["amount_cents"] = "round(amount * 100)" } }),
            ["paths"] = new JsonObject { ["ro"] = new JsonArray(dir), ["rw"] = new JsonArray(output) },
            ["max_attempts"] = 3,
            ["retry_after_ms"] = 1500,
            ["deadline_ms"] = 120_000,
        };
    }

    private static string LatePath(string path) => path + ".late";

    /// <summary>
    /// An ordered consumer of what is published from now on. An ordered consumer is made on the
    /// server only when consuming starts, so "new" would mean "after that" and could miss an event
    /// published in between: it starts after the stream's last sequence as it is now instead.
    /// </summary>
    private static async Task<INatsJSConsumer> FromNowAsync(INatsJSContext js, string stream, string subject, CancellationToken cancellationToken)
    {
        var info = await js.GetStreamAsync(stream, cancellationToken: cancellationToken);
        return await js.CreateOrderedConsumerAsync(stream, new NatsJSOrderedConsumerOpts
        {
            FilterSubjects = [subject],
            DeliverPolicy = ConsumerConfigDeliverPolicy.ByStartSequence,
            OptStartSeq = info.Info.State.LastSeq + 1,
        }, cancellationToken);
    }

    /// <summary>Publishes the run request and waits for the saga's announcement of its outcome.</summary>
    public static async Task<bool> RunAsync(INatsJSContext js, string root, string runId, CancellationToken cancellationToken)
    {
        var data = Prepare(root, runId);
        var late = data["inputs"]![3]!["path"]!.GetValue<string>();
        var failed = $"workflow.evt.{Tenant}.slice.launch.failed";
        var failures = await FromNowAsync(js, "WORKFLOW_EVENTS", failed, cancellationToken);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var arrival = DeliverLateInputAsync(failures, failed, late, stop.Token);
        var outcomes = await FromNowAsync(js, "PIPELINE_EVENTS", $"pipeline.{Tenant}.{Pipeline}.run.*", cancellationToken);
        var subject = $"pipeline.{Tenant}.{Pipeline}.run.requested";
        var request = new JsonObject
        {
            ["specversion"] = "1.0",
            ["id"] = "evt-" + runId,
            ["source"] = "scheduler",
            ["type"] = "pipeline.run.requested",
            ["tenant"] = Tenant,
            ["data"] = data,
        };
        Console.WriteLine();
        Console.WriteLine($"publish  {subject}: run {runId}, 4 partitions of {RecordsPerPartition:N0} orders, each a sandboxed slice on pool etl");
        (await js.PublishAsync(subject, Encoding.UTF8.GetBytes(request.ToJsonString()), cancellationToken: cancellationToken)).EnsureSuccess();

        await foreach (var msg in outcomes.ConsumeAsync<byte[]>(cancellationToken: cancellationToken))
        {
            // A server without multi-filter consumers (before 2.10) ignores the ordered consumer's
            // filter and delivers the whole stream: look at the subject and the shape too.
            if (!msg.Subject.StartsWith($"pipeline.{Tenant}.{Pipeline}.run.", StringComparison.Ordinal))
            {
                continue;
            }
            using var evt = JsonDocument.Parse(msg.Data!);
            // The request itself is on these subjects too: only an announcement has an outcome.
            if (!evt.RootElement.TryGetProperty("data", out var body)
                || !body.TryGetProperty("run_id", out var run) || run.GetString() != runId
                || !body.TryGetProperty("outcome", out var announced))
            {
                continue;
            }
            var outcome = announced.GetString();
            var totals = body.GetProperty("totals");
            Console.WriteLine($"announce {msg.Subject}");
            Console.WriteLine($"  totals: {totals.GetProperty("records_in").GetInt64():N0} records in, {totals.GetProperty("records_out").GetInt64():N0} out, {totals.GetProperty("dead_lettered").GetInt64():N0} dead-lettered, {totals.GetProperty("filtered").GetInt64():N0} filtered, {totals.GetProperty("attempts").GetInt64()} slice launches");
            foreach (var part in body.GetProperty("partitions").EnumerateObject())
            {
                var output = part.Value.GetProperty("output");
                Console.WriteLine($"  {part.Name}: {part.Value.GetProperty("status").GetString()} after {part.Value.GetProperty("attempts").GetInt32()} attempt(s){(output.ValueKind == JsonValueKind.String ? " → " + output.GetString() : "")}");
            }
            var lineage = await js.GetStreamAsync("LINEAGE", cancellationToken: cancellationToken);
            Console.WriteLine($"  lineage: {lineage.Info.State.Messages} OpenLineage events on LINEAGE");
            await stop.CancelAsync();
            await arrival;
            return outcome == "completed";
        }
        return false;
    }

    /// <summary>When the first slice fails (p3, whose input is not there yet), moves p3's input into place.</summary>
    private static async Task DeliverLateInputAsync(INatsJSConsumer failures, string subject, string path, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var msg in failures.ConsumeAsync<byte[]>(cancellationToken: cancellationToken))
            {
                // Only the failures: the filter is not applied by every server (see RunAsync).
                if (msg.Subject != subject)
                {
                    continue;
                }
                using var evt = JsonDocument.Parse(msg.Data!);
                var error = evt.RootElement.GetProperty("data").GetProperty("error");
                Console.WriteLine($"result   {msg.Subject}: {error.GetProperty("code").GetString()} ({FirstLine(error.GetProperty("message").GetString())}); p3's input arrives now, the saga retries it");
                File.Move(LatePath(path), path);
                return;
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private static string FirstLine(string? text) => (text ?? "").Split('\n')[0];
}
