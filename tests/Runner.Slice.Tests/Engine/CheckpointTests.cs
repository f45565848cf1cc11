using System.Diagnostics;
using System.Text.Json;
using Runner.Slice.Engine;
using Runner.Testing;
using Xunit;

namespace Runner.Slice.Tests.Engine;

/// <summary>
/// Checkpoints: a run killed mid-way and run again with the same run id resumes and writes exactly
/// what an uninterrupted run writes; SIGTERM drains (finish the batch, checkpoint, ABORT, exit 4);
/// a finished run is not redone.
/// </summary>
public sealed class CheckpointTests
{
    private const int Records = 200_000;

    private static async Task<(string Out, string Dead)> ReferenceAsync(string runId)
    {
        using var reference = new TempDirectory("slice-ref");
        SliceTestKit.WriteContract(reference);
        SliceTestKit.WriteOrders(reference.File("orders.jsonl"), Records);
        File.WriteAllText(reference.File("spec.yaml"), SliceTestKit.OrdersSpec(reference, runId, maxRecords: 500, everyBatches: 1));
        var (result, _, _) = await SliceTestKit.RunAsync(reference.File("spec.yaml"));
        Assert.Equal(RunOutcome.Succeeded, result.Outcome);
        return (File.ReadAllText(Path.Combine(reference.Path, "out", runId + ".jsonl")), File.ReadAllText(Path.Combine(reference.Path, "dlq", runId + ".jsonl")));
    }

    private static long CheckpointPosition(string path)
    {
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(path));
            return document.RootElement.GetProperty("source_position").GetInt64();
        }
        catch (Exception e) when (e is IOException or JsonException)
        {
            return 0;
        }
    }

    [Fact]
    public async Task A_run_killed_mid_way_resumes_and_writes_exactly_the_uninterrupted_output()
    {
        const string runId = "resume-1";
        var (expectedOut, expectedDead) = await ReferenceAsync(runId);
        using var dir = new TempDirectory("slice-kill");
        SliceTestKit.WriteContract(dir);
        SliceTestKit.WriteOrders(dir.File("orders.jsonl"), Records);
        File.WriteAllText(dir.File("spec.yaml"), SliceTestKit.OrdersSpec(dir, runId, maxRecords: 500, everyBatches: 1));
        var checkpoint = Path.Combine(dir.Path, "state", "normalize.ckpt");
        var size = new FileInfo(dir.File("orders.jsonl")).Length;

        using (var first = SliceTestKit.Start(["run", dir.File("spec.yaml")]))
        {
            await SliceTestKit.WaitUntilAsync(() => CheckpointPosition(checkpoint) > 0 || first.HasExited, TimeSpan.FromSeconds(60), "a first checkpoint");
            first.Kill();
            await first.WaitForExitAsync();
        }
        var killedAt = CheckpointPosition(checkpoint);
        Assert.InRange(killedAt, 1, size - 1);
        Assert.False(File.Exists(Path.Combine(dir.Path, "out", runId + ".jsonl")), "a killed run must not publish its output");
        Assert.True(File.Exists(Path.Combine(dir.Path, "out", runId + ".jsonl.part")));

        var (exit, stdout, stderr) = await SliceTestKit.RunProcessAsync(["run", dir.File("spec.yaml")]);

        Assert.True(exit == 0, stderr);
        Assert.Equal(expectedOut, File.ReadAllText(Path.Combine(dir.Path, "out", runId + ".jsonl")));
        Assert.Equal(expectedDead, File.ReadAllText(Path.Combine(dir.Path, "dlq", runId + ".jsonl")));
        using var result = JsonDocument.Parse(stdout);
        Assert.Equal(Records, result.RootElement.GetProperty("records").GetProperty("in").GetInt64());
        Assert.False(File.Exists(Path.Combine(dir.Path, "out", runId + ".jsonl.part")));
    }

    [Fact]
    public async Task Sigterm_drains_checkpoints_emits_abort_and_exits_4_then_a_rerun_completes_the_output()
    {
        const string runId = "drain-1";
        var (expectedOut, _) = await ReferenceAsync(runId);
        using var dir = new TempDirectory("slice-term");
        SliceTestKit.WriteContract(dir);
        SliceTestKit.WriteOrders(dir.File("orders.jsonl"), Records);
        File.WriteAllText(dir.File("spec.yaml"), SliceTestKit.OrdersSpec(dir, runId, maxRecords: 500, everyBatches: 1));
        var checkpoint = Path.Combine(dir.Path, "state", "normalize.ckpt");

        using var process = SliceTestKit.Start(["run", dir.File("spec.yaml"), "--events"]);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await SliceTestKit.WaitUntilAsync(() => CheckpointPosition(checkpoint) > 0 || process.HasExited, TimeSpan.FromSeconds(60), "a first checkpoint");
        using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }
        await process.WaitForExitAsync();

        Assert.True(process.ExitCode == 4, await stderr);
        var envelopes = (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
        var lineage = envelopes.Where(e => e.GetProperty("kind").GetString() == "lineage").Select(e => e.GetProperty("event").GetProperty("eventType").GetString()).ToList();
        Assert.Equal("START", lineage[0]);
        Assert.Equal("ABORT", lineage[^1]);
        Assert.Single(lineage, t => t is "COMPLETE" or "FAIL" or "ABORT");
        var result = envelopes[^1];
        Assert.Equal("result", result.GetProperty("kind").GetString());
        Assert.Equal("aborted", result.GetProperty("result").GetProperty("status").GetString());
        var drainedAt = result.GetProperty("result").GetProperty("checkpoint").GetProperty("source_position").GetInt64();
        Assert.Equal(drainedAt, CheckpointPosition(checkpoint));
        Assert.True(drainedAt < new FileInfo(dir.File("orders.jsonl")).Length);

        var (exit, _, errors) = await SliceTestKit.RunProcessAsync(["run", dir.File("spec.yaml")]);
        Assert.True(exit == 0, errors);
        Assert.Equal(expectedOut, File.ReadAllText(Path.Combine(dir.Path, "out", runId + ".jsonl")));
    }

    [Fact]
    public async Task A_completed_run_run_again_reports_its_result_without_redoing_it()
    {
        using var dir = new TempDirectory("slice-replay");
        SliceTestKit.WriteContract(dir);
        SliceTestKit.WriteOrders(dir.File("orders.jsonl"), 1000);
        File.WriteAllText(dir.File("spec.yaml"), SliceTestKit.OrdersSpec(dir, "replay-1"));
        var (first, firstJson, firstLineage) = await SliceTestKit.RunAsync(dir.File("spec.yaml"));
        var output = Path.Combine(dir.Path, "out", "replay-1.jsonl");
        var written = File.GetLastWriteTimeUtc(output);
        File.Delete(dir.File("orders.jsonl"));

        var (second, secondJson, secondLineage) = await SliceTestKit.RunAsync(dir.File("spec.yaml"));

        Assert.Equal(RunOutcome.Succeeded, second.Outcome);
        Assert.True(secondJson.GetProperty("replayed").GetBoolean());
        Assert.False(firstJson.GetProperty("replayed").GetBoolean());
        Assert.Equal(firstJson.GetProperty("records").GetRawText(), secondJson.GetProperty("records").GetRawText());
        Assert.Equal(written, File.GetLastWriteTimeUtc(output));
        Assert.Equal(2, firstLineage.Events.Count);
        Assert.Empty(secondLineage.Events);
    }

    [Fact]
    public async Task A_run_that_died_between_its_completed_checkpoint_and_its_renames_finishes_them_when_run_again()
    {
        using var dir = new TempDirectory("slice-publish");
        SliceTestKit.WriteContract(dir);
        SliceTestKit.WriteOrders(dir.File("orders.jsonl"), 1000);
        File.WriteAllText(dir.File("spec.yaml"), SliceTestKit.OrdersSpec(dir, "publish-1"));
        var (first, firstJson, _) = await SliceTestKit.RunAsync(dir.File("spec.yaml"));
        var output = Path.Combine(dir.Path, "out", "publish-1.jsonl");
        var content = File.ReadAllBytes(output);
        // The state such a death leaves: the checkpoint says completed, the output is still the temp file.
        File.Move(output, output + ".part");

        var (second, secondJson, _) = await SliceTestKit.RunAsync(dir.File("spec.yaml"));

        Assert.Equal(RunOutcome.Succeeded, first.Outcome);
        Assert.Equal(RunOutcome.Succeeded, second.Outcome);
        Assert.True(secondJson.GetProperty("replayed").GetBoolean());
        Assert.Equal(firstJson.GetProperty("records").GetRawText(), secondJson.GetProperty("records").GetRawText());
        Assert.Equal(content, File.ReadAllBytes(output));
        Assert.False(File.Exists(output + ".part"));
    }

    [Fact]
    public async Task Past_the_violation_ratio_the_run_fails_with_exit_3_and_publishes_only_the_dead_letters()
    {
        using var dir = new TempDirectory("slice-ratio");
        SliceTestKit.WriteContract(dir);
        SliceTestKit.WriteOrders(dir.File("orders.jsonl"), 1000);
        File.WriteAllText(dir.File("spec.yaml"), SliceTestKit.OrdersSpec(dir, "ratio-1").Replace("max_violation_ratio: 0.5", "max_violation_ratio: 0.001", StringComparison.Ordinal));

        var (exit, stdout, _) = await SliceTestKit.RunProcessAsync(["run", dir.File("spec.yaml")]);

        Assert.Equal(3, exit);
        using var result = JsonDocument.Parse(stdout);
        Assert.Equal("contract_threshold_exceeded", result.RootElement.GetProperty("status").GetString());
        Assert.Contains("max_violation_ratio", result.RootElement.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(dir.Path, "out", "ratio-1.jsonl")));
        Assert.False(File.Exists(Path.Combine(dir.Path, "out", "ratio-1.jsonl.part")));
        // Every 50th order has a refused id, unless its amount is not positive and the filter drops it first.
        var refused = Enumerable.Range(0, 1000).Count(i => i % 50 == 49 && (i % 13) - 1 + 0.5 > 0);
        Assert.Equal(refused, File.ReadAllLines(Path.Combine(dir.Path, "dlq", "ratio-1.jsonl")).Length);
        Assert.False(File.Exists(Path.Combine(dir.Path, "state", "normalize.ckpt")));
    }

    [Fact]
    public async Task On_violation_fail_stops_at_the_first_bad_record()
    {
        using var dir = new TempDirectory("slice-fail");
        SliceTestKit.WriteContract(dir);
        SliceTestKit.WriteOrders(dir.File("orders.jsonl"), 1000);
        File.WriteAllText(dir.File("spec.yaml"), SliceTestKit.OrdersSpec(dir, "fail-1").Replace("on_violation: dead_letter", "on_violation: fail", StringComparison.Ordinal));

        var (result, json, lineage) = await SliceTestKit.RunAsync(dir.File("spec.yaml"));

        Assert.Equal(RunOutcome.ContractThresholdExceeded, result.Outcome);
        Assert.Contains("x-49", json.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal("FAIL", lineage.Events[^1].Type);
        Assert.False(File.Exists(Path.Combine(dir.Path, "out", "fail-1.jsonl")));
    }

    [Fact]
    public void A_checkpoint_keeps_the_totals_a_resumed_run_reports_lineage_from()
    {
        using var dir = new TempDirectory("slice-ckpt");
        var totals = new RunTotals { RecordsIn = 10, RecordsOut = 7, DeadLettered = 2, Filtered = 1, BytesIn = 900, Batches = 3 };
        totals.DeadLetteredByCode["pattern_mismatch"] = 2;
        totals.DeadLetteredByStage["input_contract"] = 1;
        totals.DeadLetteredByStage["contract"] = 1;
        totals.ViolationsByField["order_id"] = 2;
        totals.ViolationsByField["status"] = 1;
        totals.InputViolationsByField["amount"] = 1;
        new Checkpoint("run-1", Checkpoint.Running, 900, 10, new SinkPosition(500, 7, ["a", "b"]), new SinkPosition(300, 2, null), totals).Save(dir.File("c.ckpt"));

        var loaded = Checkpoint.Load(dir.File("c.ckpt"), "run-1")!;

        Assert.Equal(900, loaded.SourcePosition);
        Assert.Equal(["a", "b"], loaded.Sink.Columns!);
        Assert.Equal(2, loaded.Totals.DeadLetteredByCode["pattern_mismatch"]);
        Assert.Equal(new Dictionary<string, long> { ["order_id"] = 2, ["status"] = 1 }, loaded.Totals.ViolationsByField);
        Assert.Equal(new Dictionary<string, long> { ["amount"] = 1 }, loaded.Totals.InputViolationsByField);
        Assert.Equal(new Dictionary<string, long> { ["contract"] = 1, ["input_contract"] = 1 }, loaded.Totals.DeadLetteredByStage);
        Assert.Equal(1, loaded.Totals.RefusedBeforeTransforms);
        Assert.Null(Checkpoint.Load(dir.File("c.ckpt"), "another-run"));
    }
}
