using System.Globalization;
using System.Text.Json.Nodes;
using Runner.Testing;
using Xunit;

namespace Runner.Host.Tests;

/// <summary>
/// The GC a real <c>runner serve</c> process runs with: what the shipped runtime configuration sets,
/// what <c>/info</c> and the start log say of it, that an operator's <c>DOTNET_*</c> variable
/// overrides it (bench/README.md, "One GC heap"), and the start-up heap compacted once.
/// </summary>
public sealed class RuntimeTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private const string Manifest = """
        kind: saga
        name: noop
        script: noop.js
        triggers:
          - stream: AGGREGATE_EVENTS
            subject: "aggregate.*.noop.*.added"
            correlation: "subject[3]"
        """;

    [Fact]
    public async Task A_runner_runs_non_concurrent_server_GC_sized_by_DATAS_and_reports_it()
    {
        var (runtime, output) = await RuntimeAsync(new Dictionary<string, string>(StringComparer.Ordinal));

        var gc = runtime["gc"]!;
        Assert.True(gc["server"]!.GetValue<bool>(), $"not server GC: {runtime}");
        Assert.False(gc["concurrent"]!.GetValue<bool>(), $"concurrent GC: {runtime}");
        Assert.Equal(1, gc["dynamic_adaptation"]!.GetValue<long>());
        // With DATAS, the most heaps it may use: one per processor.
        Assert.Equal(Environment.ProcessorCount, gc["heaps"]!.GetValue<int>());
        Assert.Equal(Environment.ProcessorCount, runtime["processors"]!.GetValue<int>());
        Assert.Contains($"server GC, {Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture)} heap(s), DATAS on", output, StringComparison.Ordinal);
        // The heap start-up left was compacted once, before any event came: a full collection in a process that has
        // taken nothing yet.
        Assert.True(gc["collections"]!["gen2"]!.GetValue<int>() >= 1, $"no full collection at start-up: {runtime}");
        // A build's runner, not a published one: its code has no precompiled image, and it says so.
        Assert.False(runtime["precompiled"]!.GetValue<bool>(), $"a built runner reported as precompiled: {runtime}");
        Assert.Contains("DATAS on, code compiled on first call", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Precompiled_code_is_told_from_code_compiled_on_first_call_by_the_assembly_s_image()
    {
        // The shared framework ships with ReadyToRun images; this test assembly and a build's runner do not.
        Assert.True(Runner.Host.Operations.RuntimeReport.HasReadyToRunImage(typeof(object).Assembly.Location));
        Assert.False(Runner.Host.Operations.RuntimeReport.HasReadyToRunImage(typeof(RuntimeTests).Assembly.Location));
        Assert.False(Runner.Host.Operations.RuntimeReport.HasReadyToRunImage(RunnerProcess.Dll));
        Assert.False(Runner.Host.Operations.RuntimeReport.HasReadyToRunImage(Path.Combine(Path.GetTempPath(), "no-such-assembly.dll")));
    }

    [Fact]
    public async Task An_operator_can_set_one_heap_or_workstation_GC_from_the_environment_and_sees_it()
    {
        // One heap set explicitly turns DATAS off (bench/README.md, "One GC heap": fewer, longer pauses).
        var (one, oneOutput) = await RuntimeAsync(new Dictionary<string, string>(StringComparer.Ordinal) { ["DOTNET_GCHeapCount"] = "1" });
        Assert.Equal(1, one["gc"]!["heaps"]!.GetValue<int>());
        Assert.Equal(0, one["gc"]!["dynamic_adaptation"]!.GetValue<long>());
        Assert.Contains("server GC, 1 heap(s), DATAS off", oneOutput, StringComparison.Ordinal);

        var (workstation, workstationOutput) = await RuntimeAsync(new Dictionary<string, string>(StringComparer.Ordinal) { ["DOTNET_gcServer"] = "0" });
        Assert.False(workstation["gc"]!["server"]!.GetValue<bool>(), $"still server GC: {workstation}");
        // /info and the log agree: DATAS is a server GC mode, off here whatever the runtime's own setting says.
        Assert.Equal(0, workstation["gc"]!["dynamic_adaptation"]!.GetValue<long>());
        Assert.Contains("workstation GC, 1 heap(s), DATAS off", workstationOutput, StringComparison.Ordinal);
    }

    /// <summary>Starts a saga runner with <paramref name="extra"/> in its environment and returns its <c>/info</c> runtime section and its output.</summary>
    private async Task<(JsonNode Runtime, string Output)> RuntimeAsync(Dictionary<string, string> extra)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var dir = new TempDirectory("runner-runtime");
        Directory.CreateDirectory(dir.File("manifests"));
        await File.WriteAllTextAsync(dir.File("manifests/noop.yaml"), Manifest, cts.Token);
        await File.WriteAllTextAsync(dir.File("manifests/noop.js"), "function on_event(state, event, ctx) { return { state: state }; }", cts.Token);
        var shared = new Dictionary<string, string>(extra, StringComparer.Ordinal)
        {
            ["RUNNER_NATS_URL"] = nats.Url,
            ["RUNNER_MANIFESTS"] = dir.File("manifests"),
            ["RUNNER_MODE"] = "saga",
            ["RUNNER_PARTITIONS"] = "2",
            ["RUNNER_CONSUMER_PREFIX"] = "runtime",
        };
        // The build's runner on the JIT: its runtime configuration is what these tests read (NativeRunnerTests read the native one's).
        using var replica = new SagaReplica("runtime", dir.File("data"), shared, RunnerProcess.Jit);
        replica.Start();
        try
        {
            while (true)
            {
                // The start log's runtime line is written before /info answers, but reaches the output through the
                // console logger's queue and the pipe: both are waited for.
                if (await replica.RuntimeAsync(cts.Token) is { } runtime && replica.Output.Contains(" DATAS o", StringComparison.Ordinal))
                {
                    return (runtime.DeepClone(), replica.Output);
                }
                Assert.False(replica.ExitedByItself, $"the runner exited:\n{replica.Tail()}");
                try
                {
                    await Task.Delay(100, cts.Token);
                }
                catch (OperationCanceledException)
                {
                    Assert.Fail($"no /info within 60 s:\n{replica.Tail()}");
                }
            }
        }
        finally
        {
            await replica.KillAsync(CancellationToken.None);
        }
    }
}
