using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Runner.Slice.Engine;
using Runner.Slice.Lineage;
using Runner.Testing;
using Xunit;

namespace Runner.Slice.Tests.Engine;

/// <summary>Lineage events kept in memory, for tests of what a run emits (not of how they travel).</summary>
internal sealed class RecordingLineage : ILineageSink
{
    private readonly List<(string Type, string Json)> _events = [];

    public IReadOnlyList<(string Type, string Json)> Events
    {
        get
        {
            lock (_events)
            {
                return [.. _events];
            }
        }
    }

    public ValueTask EmitAsync(string eventType, byte[] runEvent, CancellationToken cancellationToken)
    {
        lock (_events)
        {
            _events.Add((eventType, Encoding.UTF8.GetString(runEvent)));
        }
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

/// <summary>Fixtures copied into a temp directory, specs run in process or as the real <c>runner-slice</c> program.</summary>
internal static class SliceTestKit
{
    public static string Fixture(string relative) => Path.Combine(AppContext.BaseDirectory, "Fixtures", relative);

    /// <summary>Copies a fixture directory into <paramref name="into"/>, filling <c>{dir}</c> in specs with the temp path.</summary>
    public static void CopyFixtures(string fixtureDir, TempDirectory into)
    {
        foreach (var file in Directory.GetFiles(Fixture(fixtureDir)))
        {
            var target = into.File(Path.GetFileName(file));
            if (file.EndsWith(".yaml", StringComparison.Ordinal))
            {
                File.WriteAllText(target, File.ReadAllText(file).Replace("{dir}", into.Path, StringComparison.Ordinal));
            }
            else
            {
                File.Copy(file, target);
            }
        }
    }

    public static async Task<(RunResult Result, JsonElement Json, RecordingLineage Lineage)> RunAsync(
        string specFile, RunOptions? options = null, IEndpointFactory? endpoints = null, CancellationToken drain = default)
    {
        var (spec, contracts, problems) = ValidateCommand.Load(specFile);
        Assert.Empty(problems);
        var lineage = new RecordingLineage();
        var runner = new SliceRunner(spec!, contracts, options ?? new RunOptions(), lineage, endpoints ?? new EndpointFactory());
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var result = await runner.RunAsync(drain, timeout.Token);
        return (result, JsonDocument.Parse(result.Json).RootElement.Clone(), lineage);
    }

    /// <summary>Starts <c>runner-slice</c> (the build next to the tests) with the given arguments.</summary>
    public static Process Start(IEnumerable<string> args, IDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "runner-slice.dll"));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        start.Environment.Remove("RUNNER_NATS_URL");
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }
        return Process.Start(start) ?? throw new InvalidOperationException("runner-slice did not start");
    }

    /// <summary>Runs <c>runner-slice</c> to its end: exit code, stdout, stderr.</summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunProcessAsync(IEnumerable<string> args, IDictionary<string, string>? environment = null)
    {
        using var process = Start(args, environment);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Waits until <paramref name="condition"/> holds, polling, or fails after <paramref name="limit"/>.</summary>
    public static async Task WaitUntilAsync(Func<bool> condition, TimeSpan limit, string what)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(limit.TotalSeconds * Stopwatch.Frequency);
        while (!condition())
        {
            if (Stopwatch.GetTimestamp() > deadline)
            {
                Assert.Fail($"timed out waiting for {what}");
            }
            await Task.Delay(10);
        }
    }

    /// <summary>Writes <paramref name="count"/> order records as JSONL; every 50th has an order id the contract refuses.</summary>
    public static void WriteOrders(string path, int count)
    {
        using var writer = new StreamWriter(path, append: false, new UTF8Encoding(false));
        for (var i = 0; i < count; i++)
        {
            var id = i % 50 == 49 ? $"x-{i}" : $"o-{i}";
            writer.Write($"{{\"order_id\":\"{id}\",\"customer_id\":\"c-{i % 977}\",\"amount\":{(i % 13) - 1}.5,\"status\":\"new\",\"ts\":\"2026-01-01T00:00:{i % 60:00}Z\",\"note\":\"{new string('n', i % 40)}\"}}\n");
        }
    }

    public static string OrdersSpec(TempDirectory dir, string runId, int maxRecords = 4096, int everyBatches = 16, string extra = "") => $$"""
        slice: v1
        run: { id: {{runId}}, job: { namespace: acme.orders, name: normalize } }
        source: { type: jsonl, path: "{{dir.File("orders.jsonl")}}" }
        contract: { schema: "{{dir.File("orders.v1.yaml")}}", on_violation: dead_letter, max_violation_ratio: 0.5 }
        transforms:
          - { type: filter, where: "amount > 0" }
          - { type: select, fields: [order_id, customer_id, amount, ts, note] }
          - { type: map, set: { amount_cents: "amount * 100" } }
        sink: { type: jsonl, path: "{{dir.Path}}/out/{run_id}.jsonl" }
        dead_letter: { type: jsonl, path: "{{dir.Path}}/dlq/{run_id}.jsonl" }
        batch: { max_records: {{maxRecords}}, max_wait_ms: 200 }
        checkpoint: { path: "{{dir.Path}}/state/{job}.ckpt", every_batches: {{everyBatches}} }
        {{extra}}
        """;

    public static void WriteContract(TempDirectory dir) => File.Copy(Fixture("golden/orders.v1.yaml"), dir.File("orders.v1.yaml"), overwrite: true);
}
