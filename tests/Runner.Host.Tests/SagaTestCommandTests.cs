using Runner.Testing;
using Xunit;

namespace Runner.Host.Tests;

/// <summary>
/// <c>runner saga test</c> as CI runs it: the real binary, real manifest files, no NATS; one line
/// per file, the differences under a failing one, and the exit code says how it went.
/// </summary>
public sealed class SagaTestCommandTests : IDisposable
{
    private readonly TempDirectory _dir = new("runner-sagatest");
    private readonly CancellationTokenSource _cts = new(TimeSpan.FromSeconds(60));

    public SagaTestCommandTests()
    {
        GoldenSaga.WriteManifests(_dir.File("manifests"));
        Directory.CreateDirectory(_dir.File("golden/more"));
    }

    public void Dispose()
    {
        _cts.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public async Task Yaml_and_jsonl_golden_files_pass_including_an_expected_script_error()
    {
        // The YAML file names its manifests (relative to itself); the JSONL one takes --manifests or RUNNER_MANIFESTS.
        await File.WriteAllTextAsync(_dir.File("golden/orders.yaml"), "manifests: ../manifests\n" + GoldenSaga.PassingYaml, _cts.Token);
        await File.WriteAllTextAsync(_dir.File("golden/more/errors.jsonl"), """
            {"saga":"orders","tenant":"acme","key":"o-9"}
            {"event":{"type":"order.created","data":{"total":5}},"expect":{"state":{"status":"open","total":5,"opened_at":1767225601000},"commands":[{"effect":"payment.charge","payload":{"total":5}}]}}
            {"event":{"type":"order.broken"},"expect":{"error":"script_error"}}
            {"event":{"type":"item.added","data":{"price":1}},"expect":{"state":{"status":"open","total":6,"opened_at":1767225601000}}}
            """, _cts.Token);

        var (code, output) = await RunAsync(["saga", "test", _dir.File("golden"), "--manifests", _dir.File("manifests")]);
        Assert.True(code == 0, output);
        Assert.Contains($"ok   {_dir.File("golden/more/errors.jsonl")}  (3 steps)", output, StringComparison.Ordinal);
        Assert.Contains($"ok   {_dir.File("golden/orders.yaml")}  (3 steps)", output, StringComparison.Ordinal);
        Assert.Contains("2 file(s): 2 passed, 0 failed", output, StringComparison.Ordinal);

        (code, output) = await RunAsync(["saga", "test", _dir.File("golden/more/errors.jsonl")], new() { ["RUNNER_MANIFESTS"] = _dir.File("manifests") });
        Assert.True(code == 0, output);
        Assert.Contains("1 file(s): 1 passed, 0 failed", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_difference_prints_a_readable_diff_and_exits_1()
    {
        await File.WriteAllTextAsync(_dir.File("golden/orders.yaml"), GoldenSaga.PassingYaml, _cts.Token);
        await File.WriteAllTextAsync(_dir.File("golden/wrong.yaml"), """
            saga: orders
            steps:
              - event: { type: order.created, data: { total: 10 } }
              - event: { type: item.added, data: { price: 20 } }
                expect:
                  state: { status: open, total: 40, opened_at: 1767225601000 }
                  commands: [ { effect: ledger.add, payload: { price: 30 } } ]
            """, _cts.Token);

        var (code, output) = await RunAsync(["saga", "test", _dir.File("golden"), "--manifests", _dir.File("manifests")]);
        Assert.True(code == 1, output);
        Assert.Contains($"ok   {_dir.File("golden/orders.yaml")}  (3 steps)", output, StringComparison.Ordinal);
        Assert.Contains($"""
            FAIL {_dir.File("golden/wrong.yaml")}
              step 2 (item.added e-2): state.total: expected 40, got 30
              step 2 (item.added e-2): commands[0].payload.price: expected 30, got 20
            """, output, StringComparison.Ordinal);
        Assert.Contains("2 file(s): 1 passed, 1 failed", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_invalid_golden_file_is_named_with_its_line_and_exits_2()
    {
        await File.WriteAllTextAsync(_dir.File("golden/orders.yaml"), GoldenSaga.PassingYaml, _cts.Token);
        await File.WriteAllTextAsync(_dir.File("golden/invalid.yaml"), """
            saga: orders
            steps:
              - event: { type: order.created }
              - event: { type: item.added }
                expect: { done: maybe }
            """, _cts.Token);
        await File.WriteAllTextAsync(_dir.File("golden/more/broken.jsonl"), "{\"saga\":\"orders\"}\n{\"event\":\n", _cts.Token);

        var (code, output) = await RunAsync(["saga", "test", _dir.File("golden"), "--manifests", _dir.File("manifests")]);
        Assert.True(code == 2, output);
        Assert.Contains($"ERR  {_dir.File("golden/invalid.yaml")}", output, StringComparison.Ordinal);
        Assert.Contains($"{_dir.File("golden/invalid.yaml")}:4: step 2: expect.done must be true or false", output, StringComparison.Ordinal);
        Assert.Contains($"{_dir.File("golden/more/broken.jsonl")}:2: not JSON", output, StringComparison.Ordinal);
        Assert.Contains($"ok   {_dir.File("golden/orders.yaml")}", output, StringComparison.Ordinal);
        Assert.Contains("3 file(s): 1 passed, 0 failed, 2 not run", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Manifests_that_do_not_load_a_saga_they_lack_and_bad_usage_exit_2()
    {
        await File.WriteAllTextAsync(_dir.File("golden/orders.yaml"), GoldenSaga.PassingYaml, _cts.Token);
        await File.WriteAllTextAsync(_dir.File("golden/other.yaml"), "saga: shipping\nsteps: []\n", _cts.Token);
        await File.WriteAllTextAsync(_dir.File("manifests/orders.js"), "function on_event(state, event, ctx) { return { state: state }\n", _cts.Token);

        var (code, output) = await RunAsync(["saga", "test", _dir.File("golden/orders.yaml"), "--manifests", _dir.File("manifests")]);
        Assert.True(code == 2, output);
        Assert.Contains($"the manifests at {_dir.File("manifests")} do not load", output, StringComparison.Ordinal);
        Assert.Contains("script does not compile", output, StringComparison.Ordinal);

        GoldenSaga.WriteManifests(_dir.File("manifests"));
        (code, output) = await RunAsync(["saga", "test", _dir.File("golden/other.yaml"), "--manifests", _dir.File("manifests")]);
        Assert.True(code == 2, output);
        Assert.Contains("saga 'shipping' is not in the manifests", output, StringComparison.Ordinal);

        (code, output) = await RunAsync(["saga", "test"]);
        Assert.True(code == 2, output);
        Assert.Contains("usage: runner saga test PATH", output, StringComparison.Ordinal);
        (code, output) = await RunAsync(["saga", "test", _dir.File("nothing-here")]);
        Assert.True(code == 2, output);
        Assert.Contains("no such file or directory", output, StringComparison.Ordinal);
    }

    private async Task<(int Code, string Output)> RunAsync(string[] args, Dictionary<string, string>? environment = null)
    {
        using var runner = RunnerProcess.Start(args, environment ?? []);
        var code = await runner.WaitForExitAsync(_cts.Token);
        return (code, runner.Output);
    }
}
