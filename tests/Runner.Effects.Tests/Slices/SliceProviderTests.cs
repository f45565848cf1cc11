using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Runner.Core.Transitions;
using Runner.Effects.Providers;
using Runner.Effects.Providers.Slices;
using Runner.Effects.Resilience;
using Microsoft.Extensions.Logging.Abstractions;
using Runner.Testing;
using Xunit;

namespace Runner.Effects.Tests.Slices;

/// <summary>The slice provider through the executor: exit codes, bad requests, secrets; lineage recorded in memory.</summary>
public sealed class SliceProviderTests : IAsyncLifetime
{
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(90));
    private readonly SliceScript _script = new();
    private readonly RecordingLineage _lineage = new();
    private EffectExecutor? _executor;

    private CancellationToken Token => _timeout.Token;

    public async Task InitializeAsync()
    {
        var provider = await _script.ProviderAsync(_lineage, Token);
        _executor = new EffectExecutor([provider], TimeProvider.System, NullLogger.Instance);
    }

    public async Task DisposeAsync()
    {
        await _script.DisposeAsync();
        _timeout.Dispose();
    }

    private ValueTask<EffectExecution> RunAsync(object payload, Runner.Core.Manifests.EffectManifest? effect = null) =>
        _executor!.ExecuteAsync(effect ?? _script.Effect(), Command(payload), Token);

    [Fact]
    public async Task A_successful_slice_reports_its_output_usage_and_publishes_its_lineage()
    {
        var execution = await RunAsync(_script.Payload("ok", "run-ok"));

        Assert.True(execution.Succeeded, execution.Error?.Message);
        var result = JsonNode.Parse(execution.ResultJson!)!;
        Assert.Equal(0, result["exit_code"]!.GetValue<int>());
        Assert.Null(result["signal"]);
        Assert.False(result["oom_killed"]!.GetValue<bool>());
        Assert.Equal(3, result["output"]!["rows_in"]!.GetValue<int>());
        Assert.NotNull(result["cpu_ms"]);
        Assert.Equal(System.Text.Json.JsonValueKind.Number, result["cpu_throttled_ms"]?.GetValueKind());
        Assert.True(result["peak_memory_bytes"]!.GetValue<long>() > 0);
        Assert.Equal(2, result["lineage_events"]!.GetValue<int>());
        Assert.Equal(["run-ok:START", "run-ok:COMPLETE"], _lineage.Published.Select(p => p.MessageId));
        Assert.All(_lineage.Published, p => Assert.Equal("lineage.acme.acme.orders.normalize", p.Subject));
        Assert.Equal(1, _script.Launches);
    }

    [Fact]
    public async Task A_stdout_line_that_is_no_readable_envelope_is_counted_in_the_result()
    {
        var execution = await RunAsync(_script.Payload("malformed", "run-malformed"));

        Assert.True(execution.Succeeded, execution.Error?.Message);
        var result = JsonNode.Parse(execution.ResultJson!)!;
        Assert.Equal(2, result["malformed_events"]!.GetValue<int>());
        Assert.Equal(1, result["output"]!["rows_in"]!.GetValue<int>());
        Assert.Equal(["run-malformed:START"], _lineage.Published.Select(p => p.MessageId));
    }

    [Fact]
    public async Task A_slice_that_exits_0_without_a_readable_result_fails_as_result_missing()
    {
        var execution = await RunAsync(_script.Payload("noresult", "run-noresult"));

        Assert.False(execution.Succeeded);
        Assert.Equal(SliceOutcomes.ResultMissing, execution.Error!.Code);
        var details = JsonNode.Parse(execution.Error.DetailsJson!)!;
        Assert.Equal(0, details["exit_code"]!.GetValue<int>());
        Assert.Equal(1, details["malformed_events"]!.GetValue<int>());
    }

    [Theory]
    [InlineData("fail", SliceOutcomes.SliceFailed, 1)]
    [InlineData("invalid", SliceOutcomes.InvalidSpec, 2)]
    [InlineData("contract", SliceOutcomes.ContractThresholdExceeded, 3)]
    [InlineData("aborted", SliceOutcomes.Aborted, 4)]
    public async Task Exit_codes_become_error_codes_with_the_stderr_tail(string mode, string code, int exitCode)
    {
        var execution = await RunAsync(_script.Payload(mode, "run-" + mode));

        Assert.False(execution.Succeeded);
        Assert.Equal(code, execution.Error!.Code);
        var details = JsonNode.Parse(execution.Error.DetailsJson!)!;
        Assert.Equal(exitCode, details["exit_code"]!.GetValue<int>());
        Assert.Contains(details["stderr_tail"]!.AsArray(), l => l!.GetValue<string>().Contains("starting in mode " + mode, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_slice_program_installed_under_usr_runs_without_a_bind_of_its_own()
    {
        // /usr is in every sandbox, and a declared path under it is refused: the provider must not
        // bind the program there. /usr/bin/printf stands in for runner-slice: it prints its
        // arguments, the run command the provider gives, and exits 0 with no result envelope.
        var provider = await _script.ProviderAsync(_lineage, Token, binary: "/usr/bin/printf");
        var executor = new EffectExecutor([provider], TimeProvider.System, NullLogger.Instance);

        var execution = await executor.ExecuteAsync(_script.Effect(), Command(_script.Payload("ok", "run-usr")), Token);

        Assert.False(execution.Succeeded);
        Assert.Equal(SliceOutcomes.ResultMissing, execution.Error!.Code);
        Assert.DoesNotContain("inside /usr", execution.Error.Message, StringComparison.Ordinal);
        Assert.Equal(0, JsonNode.Parse(execution.Error.DetailsJson!)!["exit_code"]!.GetValue<int>());
    }

    [Fact]
    public async Task A_slice_past_its_timeout_is_killed_and_fails_as_timeout()
    {
        var execution = await RunAsync(_script.Payload("hang", "run-hang", new { timeout_ms = 500 }));

        Assert.Equal(SliceOutcomes.Timeout, execution.Error?.Code);
        Assert.True(JsonNode.Parse(execution.Error!.DetailsJson!)!["timed_out"]!.GetValue<bool>());
    }

    [Fact]
    public async Task A_declared_secret_is_a_file_in_the_sandbox_not_an_environment_variable()
    {
        var execution = await RunAsync(_script.Payload("secret", "run-secret"));

        Assert.True(execution.Succeeded, execution.Error?.Message);
        Assert.Equal("tok-123", JsonNode.Parse(execution.ResultJson!)!["output"]!["secret"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("""{"spec":{"slice":"v1"},"resoures":{}}""", SliceRequest.InvalidSpec, "unknown field 'resoures'")]
    [InlineData("""{"spec":{"slice":"v1"},"resources":{"memory":-1}}""", SliceRequest.InvalidResources, "resources.memory")]
    [InlineData("""{"spec":{"slice":"v1"},"resources":{"cpu":-0.5}}""", SliceRequest.InvalidResources, "resources.cpu")]
    [InlineData("""{"spec":{"slice":"v1"},"resources":{"gpu":1}}""", SliceRequest.InvalidResources, "unknown field 'gpu'")]
    [InlineData("""{"spec":{"slice":"v1"},"paths":{"ro":["/srv/other"]}}""", SliceRequest.InvalidResources, "outside the allowed roots")]
    [InlineData("""{"spec":{"slice":"v1"},"paths":{"ro":["/etc/app"]}}""", SliceRequest.InvalidResources, "inside /etc, which the slice sandbox builds itself")]
    [InlineData("""{"spec":{"slice":"v1"},"paths":{"rw":["/tmp"]}}""", SliceRequest.InvalidResources, "it is each slice's own tmpfs")]
    [InlineData("""{"spec":{"slice":"v1"},"paths":{"rw":["/tmp/../etc"]}}""", SliceRequest.InvalidResources, "not a normalized path")]
    [InlineData("""{"spec":{"slice":"v1"},"resources":{"cpu":2}}""", SliceRequest.ResourcesExceedPoolMax, "cpu 2 is over the maximum of 1")]
    [InlineData("""{"spec":{"slice":"v1"},"resources":{"network":"host"}}""", SliceRequest.ResourcesExceedPoolMax, "network host is not allowed")]
    [InlineData("""{"spec":{"slice":"v1"},"secrets":["root_password"]}""", SliceRequest.InvalidResources, "secret 'root_password'")]
    [InlineData("""{"spec":{"slice":"v1"},"env":{"LD_PRELOAD":"/x.so"}}""", SliceRequest.InvalidResources, "LD_PRELOAD")]
    [InlineData("""{"resources":{}}""", SliceRequest.InvalidSpec, "payload.spec")]
    public async Task A_bad_request_fails_clearly_without_launching(string payload, string code, string message)
    {
        var execution = await _executor!.ExecuteAsync(_script.Effect(), Command(JsonDocument.Parse(payload).RootElement), Token);

        Assert.False(execution.Succeeded);
        Assert.Equal(code, execution.Error!.Code);
        Assert.Contains(message, execution.Error.Message, StringComparison.Ordinal);
        Assert.Equal(0, _script.Launches);
    }

    [Fact]
    public async Task A_slice_that_floods_its_output_has_the_excess_dropped_while_the_worker_stays_responsive()
    {
        var flood = RunAsync(_script.Payload("flood", "run-flood")).AsTask();
        await SagaHarness.WaitUntilAsync(() => File.Exists(Path.Combine(_script.Out, "flooding")) || flood.IsCompleted, TimeSpan.FromSeconds(30), "the slice floods");
        Assert.False(flood.IsCompleted);

        // While it floods, the same worker runs another slice to its end, promptly.
        var clock = Stopwatch.StartNew();
        var beside = await RunAsync(_script.Payload("ok", "run-beside-flood"));
        Assert.True(beside.Succeeded, beside.Error?.Message);
        Assert.InRange(clock.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(10));
        Assert.False(flood.IsCompleted);

        await File.WriteAllTextAsync(Path.Combine(_script.Out, "stop-flood"), "stop", Token);
        var execution = await flood;

        Assert.True(execution.Succeeded, execution.Error?.Message);
        var result = JsonNode.Parse(execution.ResultJson!)!;
        // 100,000 lines at least, against a burst of 1,000 and 200 lines/s.
        Assert.InRange(result["dropped_log_lines"]!.GetValue<long>(), 50_000, long.MaxValue);
        Assert.True(result["output"]!["flooded"]!.GetValue<bool>());
        var quiet = JsonNode.Parse(beside.ResultJson!)!;
        Assert.Equal(0, quiet["dropped_log_lines"]!.GetValue<long>());
    }

    private static CommandMessage Command(object payload) => new()
    {
        CommandId = "cmd-" + Guid.NewGuid().ToString("N")[..12],
        Tenant = "acme",
        Effect = "slice.launch",
        Saga = "pipeline",
        CorrelationId = "pipe-1",
        CausationId = "evt-1",
        Payload = payload is JsonElement element ? element : JsonSerializer.SerializeToElement(payload),
        CreatedAt = "2026-01-01T00:00:00Z",
    };

    private sealed class RecordingLineage : ILineagePublisher
    {
        public List<(string Subject, string MessageId, string Json)> Published { get; } = [];

        public ValueTask PublishAsync(CommandMessage command, string subject, string messageId, string eventJson, CancellationToken cancellationToken)
        {
            lock (Published)
            {
                Published.Add((subject, messageId, eventJson));
            }
            return ValueTask.CompletedTask;
        }
    }
}
