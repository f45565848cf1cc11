using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using NATS.Client.JetStream;
using Runner.Core.Manifests;
using Runner.Core.Transitions;
using Runner.Effects.Providers;
using Runner.Effects.Providers.Slices;
using Runner.Slices;
using Runner.Testing;
using Xunit;

namespace Runner.Effects.Tests.Slices;

/// <summary>
/// The real <c>runner-slice</c> (its JIT build, next to these tests, started by a wrapper that
/// execs <c>dotnet runner-slice.dll</c>) in the sandbox, through a real effect worker and nats-server.
/// </summary>
public sealed class SliceEndToEndTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task A_slice_command_runs_a_jsonl_pipeline_in_the_sandbox_and_reports_its_result_and_lineage()
    {
        using var cts = new CancellationTokenSource(s_timeout);
        using var dir = new TempDirectory("runner-slice-e2e");
        // The program: its build directory is bound read-only; the wrapper runs it with the host's dotnet (under /usr, bound too).
        var programs = AppContext.BaseDirectory.TrimEnd('/');
        Assert.True(File.Exists(Path.Combine(programs, "runner-slice.dll")), "runner-slice.dll is built next to the tests");
        var wrapper = dir.File("runner-slice");
        await File.WriteAllTextAsync(wrapper, $"#!/bin/sh\nexport DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1\nexec dotnet {programs}/runner-slice.dll \"$@\"\n", cts.Token);
        var input = Directory.CreateDirectory(dir.File("in")).FullName;
        var output = Directory.CreateDirectory(dir.File("out")).FullName;
        await File.WriteAllTextAsync(Path.Combine(input, "orders.jsonl"), """
            {"order_id":"o-1","amount":12.5}
            {"order_id":"o-2","amount":0}
            {"order_id":"o-3","amount":7}

            """, cts.Token);
        if (OperatingSystem.IsLinux())
        {
            File.SetUnixFileMode(dir.Path, (UnixFileMode)0x1ED);   // 0755: the slice uid reaches the wrapper and the input
            File.SetUnixFileMode(wrapper, (UnixFileMode)0x1ED);
            File.SetUnixFileMode(input, (UnixFileMode)0x1ED);
            File.SetUnixFileMode(output, (UnixFileMode)0x1FF);     // 0777: and writes its output
        }

        await using var connection = await nats.ConnectAsync();
        var js = new NatsJSContext(connection);
        await EffectStreams.ResetAsync(js, cts.Token);
        var cgroupBase = "runner-test-" + Guid.NewGuid().ToString("N")[..10];
        SliceLauncher? launcher = null;
        var effect = new EffectManifest("slice.launch", EffectManifest.SliceProvider, null, "effects.yaml", 1)
        {
            Slice = new SliceEffectConfig([programs, input], [output], [],
                new SlicePoolPolicy(true, new SliceResources(1, 512L * 1024 * 1024, 128, 60_000, "none"), new SliceResources(1, 512L * 1024 * 1024, 128, 60_000, "none")),
                new Dictionary<string, SlicePoolPolicy>()),
            Retry = RetryPolicy.Default with { MaxAttempts = 1 },
            TimeoutMs = 90_000,
        };
        try
        {
            await using (var node = await EffectNode.StartAsync(nats, [effect], "worker-a", slices: async js =>
            {
                launcher = await SliceLauncher.StartAsync(new SliceLauncherOptions { RunDirectory = dir.File("run"), CgroupBase = cgroupBase }, NullLogger.Instance, TimeProvider.System, cts.Token);
                return new SliceProvider(launcher, new SliceCapacity(2, 1L << 30), new JetStreamLineagePublisher(js), new SliceProviderOptions(wrapper, new SecretReader(dir.File("secrets"))), NullLogger.Instance);
            }))
            {
                var runId = "e2e-" + Guid.NewGuid().ToString("N")[..8];
                var spec = new JsonObject
                {
                    ["slice"] = "v1",
                    ["run"] = new JsonObject { ["id"] = runId, ["job"] = new JsonObject { ["namespace"] = "acme.orders", ["name"] = "normalize" } },
                    ["source"] = new JsonObject { ["type"] = "jsonl", ["path"] = input + "/orders.jsonl" },
                    ["transforms"] = new JsonArray(new JsonObject { ["type"] = "filter", ["where"] = "amount > 0" }),
                    ["sink"] = new JsonObject { ["type"] = "jsonl", ["path"] = output + "/orders-{run_id}.jsonl" },
                };
                var payload = new JsonObject
                {
                    ["spec"] = spec,
                    ["paths"] = new JsonObject { ["ro"] = new JsonArray(programs, input), ["rw"] = new JsonArray(output) },
                };
                await EffectStreams.PublishAsync(js, EffectStreams.Command("acme", "slice.launch", "e2e-1", payload, correlation: "pipe-e2e"), cancellationToken: cts.Token);
                await SagaHarness.WaitUntilAsync(async () => await EffectStreams.CountAsync(js, "WORKFLOW_EVENTS", cts.Token) >= 1, s_timeout, "the slice's result");

                var evt = Assert.Single(await EffectStreams.ReadAsync(js, "WORKFLOW_EVENTS", cts.Token));
                Assert.True(evt.Subject == "workflow.evt.acme.slice.launch.succeeded", evt.Body.ToJsonString());
                var result = evt.Body["data"]!["result"]!;
                Assert.Equal(0, result["exit_code"]!.GetValue<int>());
                Assert.True(result["isolated"]!.GetValue<bool>());
                var reported = result["output"]!;
                Assert.Equal("succeeded", reported["status"]!.GetValue<string>());
                Assert.Equal(runId, reported["run_id"]!.GetValue<string>());
                Assert.Equal(3, reported["records"]!["in"]!.GetValue<long>());
                Assert.Equal(2, reported["records"]!["out"]!.GetValue<long>());
                Assert.Equal(1, reported["records"]!["filtered"]!.GetValue<long>());

                var written = await File.ReadAllLinesAsync(Path.Combine(output, $"orders-{runId}.jsonl"), cts.Token);
                Assert.Equal(["o-1", "o-3"], written.Select(l => JsonNode.Parse(l)!["order_id"]!.GetValue<string>()));

                var lineage = await EffectStreams.ReadAsync(js, "LINEAGE", cts.Token);
                Assert.Equal(["START", "COMPLETE"], lineage.Select(l => l.Body["eventType"]!.GetValue<string>()));
                // OpenLineage run ids are UUIDs: runner-slice derives one from the spec's run id.
                var lineageRun = lineage[0].Body["run"]!["runId"]!.GetValue<string>();
                Assert.True(Guid.TryParse(lineageRun, out _), lineageRun);
                Assert.All(lineage, l =>
                {
                    Assert.Equal("lineage.acme.acme.orders.normalize", l.Subject);
                    Assert.Equal(lineageRun, l.Body["run"]!["runId"]!.GetValue<string>());
                    Assert.Equal("pipe-e2e", l.Headers![Runner.Core.Events.EventHeaders.CorrelationId].ToString());
                });
                Assert.Equal(lineageRun + ":COMPLETE", lineage[1].Headers!["Nats-Msg-Id"].ToString());
                Assert.Equal(2, result["lineage_events"]!.GetValue<int>());
            }
        }
        finally
        {
            if (launcher is not null)
            {
                await launcher.DisposeAsync();
                foreach (var directory in launcher.Capabilities.CgroupBases)
                {
                    await Runner.Slices.Cgroups.CgroupFiles.RemoveTreeAsync(directory, TimeProvider.System, CancellationToken.None);
                }
            }
        }
    }
}
