using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using NATS.Client.JetStream.Models;
using Runner.Core.Keys;
using Runner.Core.Manifests;
using Runner.Messaging;
using Runner.Scripting;
using Runner.Testing;
using Xunit;
using Xunit.Abstractions;

namespace Runner.Sagas.Tests;

// Regression tests for defects found in review; each asserts the behaviour the design requires.

/// <summary>Script-sandbox findings (no NATS needed).</summary>
[Trait("Category", "ReviewFinding")]
public sealed class ReviewSandboxFindingsTests(ITestOutputHelper output)
{

    private static ScriptInput Input(string eventId = "evt-1") =>
        new(null, $$$"""{"id":"{{{eventId}}}","type":"t","data":{}}""", eventId, 1_700_000_000_000, "acme", "probe", "k1");

    private static SagaScript Compile(string source)
    {
        var ok = SagaScript.TryCompile("probe", "probe.js", source, ScriptLimits.Default, out var script, out var errors);
        Assert.True(ok, string.Join("; ", errors));
        return script!;
    }

    /// <summary>
    /// A getter read in a top-level const initializer runs at load time without any call syntax; the
    /// closure it returns would keep a mutable `let` that freezing cannot reach, and pooled engines
    /// would carry it from one instance's event to the next. Such initializers are rejected.
    /// </summary>
    [Fact]
    public void Closure_returned_by_a_load_time_getter_is_rejected_at_validation()
    {
        var ok = SagaScript.TryCompile("probe", "probe.js", """
            'use strict';
            const next = ({ get f() { let n = 0; return function () { n += 1; return n; }; } }).f;
            function on_event(state, event, ctx) { return { state: { n: next() } }; }
            """, ScriptLimits.Default, out _, out var errors);

        Assert.False(ok);
        Assert.Contains(errors, e => e.Line == 2 && e.Message.Contains("top-level const initializers", StringComparison.Ordinal));
    }

    /// <summary>
    /// Time and memory budgets are checked between statements; one built-in call is not interrupted.
    /// With timeout_ms = 100 and memory_mb = 16, this single expression allocates ~400 MB and runs
    /// for about a second — and succeeds. Many partitions doing this at once can OOM the process.
    /// </summary>
    [Fact]
    public void A_single_builtin_call_over_the_memory_limit_does_not_succeed()
    {
        var script = Compile("""
            'use strict';
            function on_event(state, event, ctx) { return { state: { n: [1, 2, 3].join('x'.repeat(2 ** 26)).length } }; }
            """);

        var before = GC.GetAllocatedBytesForCurrentThread();
        var watch = Stopwatch.StartNew();
        var result = script.Run(Input());
        watch.Stop();
        var allocatedMb = (GC.GetAllocatedBytesForCurrentThread() - before) / (1024 * 1024);
        output.WriteLine($"{watch.ElapsedMilliseconds} ms, {allocatedMb} MB, {result.Output?.StateJson ?? result.Failure?.ToString()}");

        Assert.False(result.Succeeded && allocatedMb > 64, $"memory_mb is 16, the call allocated {allocatedMb} MB in {watch.ElapsedMilliseconds} ms and succeeded");
    }

    /// <summary>
    /// JSON.stringify (and the host's own serialization of the returned value) recurse natively,
    /// outside the recursion limit: ~20k nesting levels, well inside the statement and memory
    /// budgets, overflow a thread-pool thread's stack, which would kill the process. Scripts run on
    /// large-stack script threads, so this completes (if it regressed, the test host would crash).
    /// </summary>
    [Theory]
    [InlineData("JSON.stringify(o).length")]
    [InlineData("String([o]).length")]
    public void Deeply_nested_value_in_a_native_builtin_does_not_kill_the_process(string expression)
    {
        var script = Compile($$"""
            'use strict';
            function on_event(state, event, ctx) {
              let o = {};
              for (let i = 0; i < 20000; i++) { o = { a: o }; }
              let arr = [];
              for (let i = 0; i < 20000; i++) { arr = [arr]; }
              return { state: { length: {{expression.Replace("[o]", "[arr]", StringComparison.Ordinal)}} } };
            }
            """);
        var result = script.Run(Input());

        // Reaching this line is the point; the limits may still stop such a slow call.
        Assert.True(result.Succeeded || result.Failure!.Code is ScriptFailure.Timeout or ScriptFailure.MemoryLimit or ScriptFailure.StatementLimit,
            result.Failure?.ToString());
    }
}

/// <summary>Pipeline findings against a real nats-server.</summary>
[Trait("Category", "ReviewFinding")]
public sealed class ReviewPipelineFindingsTests(NatsServerFixture nats, ITestOutputHelper output) : IClassFixture<NatsServerFixture>
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(15);

    /// <summary>
    /// CloudEventDecoder "never throws", but JsonElement.GetString() throws InvalidOperationException
    /// on an escaped lone surrogate ("\ud800"). The router catches only NatsException/TimeoutException,
    /// so the loop dies, the supervisor restarts it, it re-attaches from the ack floor, reads the same
    /// message and dies again: the whole trigger stream stops, nothing is quarantined.
    /// </summary>
    [Fact]
    public async Task Lone_surrogate_in_a_cloud_event_attribute_is_quarantined_and_the_stream_flows_on()
    {
        var logs = new ReviewLogs();
        await using var h = await SagaHarness.StartAsync(nats, TestSagas.Counter(), o => o with { Partitions = 1 }, loggers: logs);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await h.PublishRawAsync("aggregate.acme.counter.bad.added",
            """{"specversion":"1.0","id":"\ud800","type":"added","source":"s","data":{"n":0}}"""u8.ToArray(), cancellationToken: cts.Token);
        await h.PublishAsync("aggregate.acme.counter.good.added", SagaHarness.CloudEvent("good-1", "added", new { n = 1 }), cancellationToken: cts.Token);

        var settled = await WaitAsync(() => h.Instance("acme", "counter", "good") is not null && h.Quarantine().Count == 1, s_wait);
        foreach (var line in logs.Lines.Take(3))
        {
            output.WriteLine(line);
        }
        Assert.True(settled, "bad event should be quarantined and the good one processed; the router loop keeps crashing instead");
    }

    /// <summary>
    /// TransitionOutputParser reads effect/id/pool/schedule names with GetString(), which throws
    /// InvalidOperationException for a lone surrogate — e.g. a script that truncates a title with
    /// an emoji via slice(). The throw happens after ScriptSandbox.Run's try/catch, escapes
    /// ProcessBatchAsync, and the supervised partition loop retries the same batch forever.
    /// </summary>
    [Fact]
    public async Task Script_output_with_a_split_surrogate_pair_is_quarantined_and_the_partition_flows_on()
    {
        var files = new Dictionary<string, string>
        {
            ["split.yaml"] = TestSagas.CounterManifest.Replace("name: counter", "name: split", StringComparison.Ordinal).Replace("counter.js", "split.js", StringComparison.Ordinal),
            ["split.js"] = """
                'use strict';
                function on_event(state, event, ctx) {
                  const title = event.data.title || 'plain';
                  return { state: { seen: true }, schedules: [{ name: 'remind-' + title.slice(0, 1), after_ms: 1000 }] };
                }
                """,
        };
        var logs = new ReviewLogs();
        await using var h = await SagaHarness.StartAsync(nats, files, o => o with { Partitions = 1 }, loggers: logs);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await h.PublishAsync("aggregate.acme.counter.emoji.added", SagaHarness.CloudEvent("e-1", "added", new { title = "\U0001F600 party" }), cancellationToken: cts.Token);
        await h.PublishAsync("aggregate.acme.counter.plain.added", SagaHarness.CloudEvent("e-2", "added", new { title = "plain" }), cancellationToken: cts.Token);

        var settled = await WaitAsync(() => h.Instance("acme", "split", "plain") is not null, s_wait);
        foreach (var line in logs.Lines.Take(3))
        {
            output.WriteLine(line);
        }
        Assert.True(settled, "the event after the bad one should be processed (the bad one quarantined); the partition loop keeps crashing instead");
    }

    /// <summary>
    /// The router carries the correlation key in the runner-key header; NATS.Net writes header
    /// values with NatsOpts.HeaderEncoding (ASCII), so every non-ASCII character becomes '?'.
    /// Two different keys of the same length become one instance "??" (or, with more
    /// partitions, are quarantined as invalid_routing).
    /// </summary>
    [Fact]
    public async Task Non_ascii_correlation_keys_do_not_merge_distinct_instances()
    {
        var files = TestSagas.Counter();
        files["counter.yaml"] = files["counter.yaml"].Replace("correlation: \"subject[3]\"", "correlation: \"$.data.key\"", StringComparison.Ordinal);
        await using var h = await SagaHarness.StartAsync(nats, files, o => o with { Partitions = 1 });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await h.PublishAsync("aggregate.acme.counter.x.added", SagaHarness.CloudEvent("e1", "added", new { n = 1, key = "\u6CE8\u6587" }), cancellationToken: cts.Token);
        await h.PublishAsync("aggregate.acme.counter.x.added", SagaHarness.CloudEvent("e2", "added", new { n = 2, key = "\u9867\u5BA2" }), cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Listener.Count + h.Quarantine().Count >= 2, s_wait, "both events handled");

        output.WriteLine($"NatsOpts.HeaderEncoding = {new NATS.Client.Core.NatsOpts().HeaderEncoding.WebName}");
        foreach (var notice in h.Listener.Notices)
        {
            output.WriteLine($"{notice.Instance} v{notice.Version} {notice.StateJson}");
        }
        Assert.NotNull(h.Instance("acme", "counter", "\u6CE8\u6587"));
        Assert.NotNull(h.Instance("acme", "counter", "\u9867\u5BA2"));
    }

    /// <summary>
    /// A command whose publish can never succeed (here: larger than WORKFLOW_COMMANDS' max_msg_size,
    /// an operator-tunable limit) stays at the head of the outbox. Every rescan reads the same first
    /// RelayConcurrency keys and drops the fast-path queue, so once the head page is poison no later
    /// command is ever published (and with one poison item, throughput collapses to a page per 5 s).
    /// </summary>
    [Fact]
    public async Task A_command_that_can_never_be_published_does_not_block_later_commands()
    {
        var files = new Dictionary<string, string>
        {
            ["big.yaml"] = TestSagas.CounterManifest.Replace("name: counter", "name: big", StringComparison.Ordinal).Replace("counter.js", "big.js", StringComparison.Ordinal),
            ["effects.yaml"] = TestSagas.LedgerEffect,
            ["big.js"] = """
                'use strict';
                function on_event(state, event, ctx) {
                  const blob = event.data.big ? 'x'.repeat(4096) : '';
                  return { state: {}, commands: [{ effect: 'ledger.add', payload: { blob: blob } }] };
                }
                """,
            ["effects.yaml"] = TestSagas.LedgerEffect,
        };
        await using var h = await SagaHarness.StartAsync(nats, files, o => o with { Partitions = 1, RelayConcurrency = 2 }, start: false);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var commands = await h.Js.GetStreamAsync(h.Options.JetStream.Streams.WorkflowCommands, cancellationToken: cts.Token);
        await h.Js.UpdateStreamAsync(commands.Info.Config with { MaxMsgSize = 2048 }, cts.Token);
        await h.StartRuntimeAsync();

        await h.PublishAsync("aggregate.acme.counter.p1.added", SagaHarness.CloudEvent("p1", "added", new { big = true }), cancellationToken: cts.Token);
        await h.PublishAsync("aggregate.acme.counter.p2.added", SagaHarness.CloudEvent("p2", "added", new { big = true }), cancellationToken: cts.Token);
        await SagaHarness.WaitUntilAsync(() => h.Listener.Count == 2, s_wait, "poison commands committed");
        for (var i = 0; i < 5; i++)
        {
            await h.PublishAsync($"aggregate.acme.counter.ok{i}.added", SagaHarness.CloudEvent($"ok{i}", "added", new { big = false }), cancellationToken: cts.Token);
        }
        await SagaHarness.WaitUntilAsync(() => h.Listener.Count == 7, s_wait, "good commands committed");

        var published = await WaitAsync(async () => (await h.CommandsAsync(cts.Token)).Count >= 5, s_wait);
        output.WriteLine($"outbox items left: {h.Count(KeySpace.Outbox)}, relay published: {h.Runtime!.Relay.Published}");
        Assert.True(published, "the five publishable commands should reach WORKFLOW_COMMANDS; the relay is stuck on the two at the head of the outbox");
    }

    /// <summary>
    /// The pump's `using var attachment` disposes the CTS that `_attachment` still points to while the
    /// pump waits out its back-off. Restart() (called by the router after a failed publish — likely
    /// in the same NATS outage that broke the attach) then throws ObjectDisposedException and kills
    /// the router loop.
    /// </summary>
    [Fact]
    public async Task Restart_while_the_pump_is_backing_off_does_not_throw()
    {
        await using var connection = await nats.ConnectAsync();
        var js = new NATS.Client.JetStream.NatsJSContext(connection);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var batcher = new MessageBatcher(js, "NO_SUCH_STREAM_" + Guid.NewGuid().ToString("N")[..6], new ConsumerConfig("review-probe"),
            _ => ValueTask.FromResult(0UL), 10, NullLogger.Instance, TimeProvider.System, cts.Token);

        await Task.Delay(1000, cts.Token); // the attach has failed and the pump sleeps in its back-off

        var error = Record.Exception(batcher.Restart);
        Assert.Null(error);
    }

    private static async Task<bool> WaitAsync(Func<bool> condition, TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < until)
        {
            if (condition())
            {
                return true;
            }
            await Task.Delay(50);
        }
        return condition();
    }

    private static async Task<bool> WaitAsync(Func<Task<bool>> condition, TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < until)
        {
            if (await condition())
            {
                return true;
            }
            await Task.Delay(200);
        }
        return await condition();
    }
}

/// <summary>Collects warnings and errors (e.g. the supervisor's "loop failed" lines), or every line from <paramref name="minimum"/> up.</summary>
internal sealed class ReviewLogs(LogLevel minimum = LogLevel.Warning) : ILoggerFactory, ILogger
{
    public ConcurrentQueue<string> Lines { get; } = new();

    /// <summary>The same lines' event ids and messages.</summary>
    public ConcurrentQueue<(int Id, string Message)> Events { get; } = new();

    public bool Has(int eventId) => Events.Any(e => e.Id == eventId);

    public void AddProvider(ILoggerProvider provider)
    {
    }

    public ILogger CreateLogger(string categoryName) => this;

    public void Dispose()
    {
    }

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= minimum;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (IsEnabled(logLevel))
        {
            var message = formatter(state, exception);
            Lines.Enqueue($"{logLevel}: {message} [{exception?.GetType().Name}: {exception?.Message}]");
            Events.Enqueue((eventId.Id, message));
        }
    }
}
