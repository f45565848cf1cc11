using System.Text.Json;
using Runner.Core.Ids;
using Runner.Core.Transitions;
using Runner.Messaging;
using Runner.Sagas.Manifests;
using Runner.Sagas.Testing;
using Runner.Testing;
using Xunit;

namespace Runner.Sagas.Tests.Testing;

/// <summary>
/// Golden files run in process against real manifest files: steps go through the saga's script
/// with the worker's own rules (event argument, handler, command ids, pools), the state threads
/// from step to step, and every difference is named by step and path.
/// </summary>
public sealed class GoldenRunnerTests : IDisposable
{
    private readonly TempDirectory _dir = new("runner-golden");
    private readonly ManifestSet _manifests;

    public GoldenRunnerTests()
    {
        var loaded = ManifestLoader.Load(GoldenSaga.WriteManifests(_dir.File("manifests")), new StreamNames(), _ => null);
        Assert.True(loaded.Succeeded, string.Join('\n', loaded.Errors));
        _manifests = loaded.Set!;
    }

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Yaml_golden_file_passes_and_runs_each_event_as_the_worker_would()
    {
        var results = Run("pass.yaml", GoldenSaga.PassingYaml);

        Assert.Equal(3, results.Count);
        Assert.All(results, r => Assert.True(r.Passed, string.Join('\n', r.Differences)));
        // Command ids as the worker derives them: ctx.id('ledger'), or "$command.{index}" when the script gave none.
        Assert.Equal(Id("e-1", "$command.0"), results[0].Actual.Commands![0].Id);
        Assert.Equal("payments", results[0].Actual.Commands![0].Pool);
        Assert.Equal(Id("e-2", "ledger"), results[1].Actual.Commands![0].Id);
        Assert.Null(results[1].Actual.Commands![0].Pool);

        // The short form is filled in deterministically and built into the worker's event argument.
        using var evt = JsonDocument.Parse(results[0].Step.Event.Json);
        var root = evt.RootElement;
        Assert.Equal("e-1", root.GetProperty("id").GetString());
        Assert.Equal("aggregate.acme.orders.o-1.order.created", root.GetProperty("subject").GetString());
        Assert.Equal("2026-01-01T00:00:01.000Z", root.GetProperty("time").GetString());
        Assert.Equal("AGGREGATE_EVENTS", root.GetProperty("stream").GetString());
        Assert.Equal(1UL, root.GetProperty("seq").GetUInt64());
        Assert.Equal("acme", root.GetProperty("headers").GetProperty("tenant-id").GetString());
        Assert.Equal("workflow.evt.acme.payment.charge.succeeded", results[2].Step.Event.Origin.Subject);
    }

    [Fact]
    public void Differences_name_the_step_the_path_and_both_values()
    {
        var results = Run("fail.yaml", """
            saga: orders
            steps:
              - event: { type: order.created, data: { total: 10 } }
                expect:
                  state: { status: open, total: 40, opened_at: 1767225601000, extra: true }
                  commands:
                    - { effect: payment.charge, pool: gpu, payload: { total: 10 } }
                    - { effect: ledger.add, payload: { price: 1 } }
                  schedules:
                    - { name: deadline, after_ms: 1000 }
                  done: true
              - event: { type: item.added, data: { price: 20 } }
                expect:
                  state: { status: open, total: 30.0, opened_at: 1767225601000 }
                  commands: []
            """);

        Assert.Equal("step 1 (order.created e-1)", results[0].Title);
        Assert.Equal(
            [
                "state.total: expected 40, got 10",
                "state.extra: missing, expected true",
                "commands[0].pool: expected gpu, got payments",
                "commands[1]: missing ledger.add {\"price\":1}",
                "schedules.deadline.due_ms: expected 1767225602000 (2026-01-01T00:00:02.000Z), got 1767225661000 (2026-01-01T00:01:01.000Z)",
                "done: expected true, got false",
            ],
            results[0].Differences);
        // The state threads on from what the script returned, and 30.0 is the number 30.
        Assert.Equal(["commands: unexpected ledger.add {\"price\":20}"], results[1].Differences);
    }

    [Fact]
    public void Failed_results_and_deadlines_go_to_compensate_unless_the_step_names_the_handler()
    {
        var failed = Run("failed.yaml", """
            saga: orders
            initial_state: { status: open, total: 10 }
            steps:
              - event: { type: payment.charge.failed, stream: WORKFLOW_EVENTS, data: { outcome: failed } }
                handler: on_event
                expect: { state: { status: open, total: 10 }, done: false }
              - event: { type: payment.charge.failed, stream: WORKFLOW_EVENTS, data: { outcome: failed } }
                expect: { state: { status: cancelled, total: 10, why: payment.charge.failed }, done: true }
            """);
        Assert.All(failed, r => Assert.True(r.Passed, string.Join('\n', r.Differences)));

        // A full script event, as history stores it: this saga's deadline timer.
        var timer = """{"id":"timer:acme:orders:o-1:deadline:1767225661000:1","type":"timer.fired","source":"runner/scheduler","subject":"workflow.evt.acme.timer.orders","time":"2026-01-01T00:01:01.000Z","tenant":"acme","data":{"saga":"orders","key":"o-1","name":"deadline","due_ms":1767225661000,"gen":1,"deadline":true,"payload":{"reason":"late"}},"headers":{"tenant-id":"acme"},"stream":"WORKFLOW_EVENTS","seq":7}""";
        var deadline = Run("deadline.jsonl", string.Join('\n',
            """{"saga":"orders","tenant":"acme","key":"o-1","initial_state":{"status":"open","total":10}}""",
            "{\"event\":" + timer.Replace("\"key\":\"o-1\"", "\"key\":\"o-2\"", StringComparison.Ordinal) + ""","expect":{"error":"invalid_timer"}}""",
            "{\"event\":" + timer + ""","expect":{"state":{"status":"cancelled","total":10,"why":"timer.fired"},"commands":[],"done":true}}"""));
        Assert.All(deadline, r => Assert.True(r.Passed, string.Join('\n', r.Differences)));
        Assert.Equal(timer, deadline[1].Step.Event.Json);
    }

    [Fact]
    public void Expected_script_errors_pass_and_leave_the_state_as_it_was()
    {
        var results = Run("errors.yaml", """
            saga: orders
            steps:
              - event: { type: order.created, data: { total: 10 } }
              - event: { type: order.broken }
                expect: { error: script_error }
              - event: { type: order.misrouted, data: { effect: nobody.home } }
                expect: { error: unknown_effect }
              - event: { type: item.added, data: { price: 5 } }
                expect: { state: { status: open, total: 15, opened_at: 1767225601000 } }
              - event: { type: payment.charge.succeeded, stream: WORKFLOW_EVENTS }
                expect: { done: true }
              - event: { type: item.added, data: { price: 5 } }
                expect: { error: ignored_completed }
            """);
        Assert.All(results, r => Assert.True(r.Passed, string.Join('\n', r.Differences)));
        Assert.Contains("cannot handle e-2", results[1].Actual.ErrorDetail, StringComparison.Ordinal);
        Assert.Contains("nobody.home", results[2].Actual.ErrorDetail, StringComparison.Ordinal);

        var unexpected = Run("unexpected.yaml", """
            saga: orders
            steps:
              - event: { type: order.broken }
                expect: { state: null }
              - event: { type: order.created, data: { total: 1 } }
                expect: { error: script_error }
            """);
        Assert.StartsWith("error: the event was refused (script_error): ", Assert.Single(unexpected[0].Differences), StringComparison.Ordinal);
        Assert.Equal(["error: expected script_error, got a transition"], unexpected[1].Differences);
    }

    [Fact]
    public void Invalid_golden_files_report_every_problem_with_file_and_line()
    {
        var yaml = Read("bad.yaml", """
            saga: orders
            tenant: acme
            colour: blue
            steps:
              - event: { type: order.created, dat: 1 }
                expect: { commands: [ { payload: 1 } ] }
              - event: { type: order.created }
                handler: sideways
                expect: { schedules: [ { name: t } ], error: script_error }
            """);
        Assert.Null(yaml.File);
        var path = _dir.File("bad.yaml");
        Assert.Contains($"{path}:3: header: unknown field 'colour'", yaml.Errors[0], StringComparison.Ordinal);
        Assert.Contains(yaml.Errors, e => e.StartsWith($"{path}:5: step 1: event: unknown field 'dat'", StringComparison.Ordinal));
        Assert.Contains($"{path}:5: step 1: expect.commands[0].effect is required", yaml.Errors);
        Assert.Contains($"{path}:7: step 2: handler must be on_event or compensate", yaml.Errors);
        Assert.Contains($"{path}:7: step 2: expect.error stands alone: a refused event changes nothing else", yaml.Errors);

        var jsonl = Read("bad.jsonl", "{\"saga\":\"orders\"}\n\n{\"event\":{\"type\":\"a\"}}\n{\"event\": {\"type\": \n");
        Assert.StartsWith($"{_dir.File("bad.jsonl")}:4: not JSON:", Assert.Single(jsonl.Errors), StringComparison.Ordinal);

        var noSaga = Read("nosaga.jsonl", "{\"tenant\":\"a.b\"}\n");
        Assert.Equal(
            [$"{_dir.File("nosaga.jsonl")}:1: header: 'saga' (the saga's name) is required", $"{_dir.File("nosaga.jsonl")}:1: header: tenant must be one subject token of at most 256 characters"],
            noSaga.Errors);
    }

    [Fact]
    public void The_comparer_checks_only_what_is_expected_and_a_recorded_step_in_full()
    {
        var actual = new StepOutcome
        {
            StateJson = """{"total":30,"items":[1,2]}""",
            Commands = [new OutcomeCommand("ledger.add", """{"price":20}""", "orders-aaa", "pool-1", CheckPool: true)],
            Schedules = [new OutcomeTimer("deadline", 5000, false, "null")],
            Cancel = [],
            Done = false,
        };
        Assert.Empty(OutcomeComparer.Compare(new StepOutcome { StateJson = """{"items":[1,2.0],"total":30}""" }, actual));

        var recorded = StepOutcome.FromHistory(new HistoryStep
        {
            Version = 2, EventId = "e-2", Type = "item.added", Time = "2026-01-01T00:00:02.000Z", Stream = "AGGREGATE_EVENTS",
            ManifestHash = "abc", Handler = "on_event", StateHash = "0", State = Json("""{"total":30,"items":[1,2,3]}"""),
            Commands = [new HistoryCommand { Id = "orders-bbb", Effect = "ledger.add", Payload = Json("""{"price":20}""") }],
            Schedules = [new HistoryTimer { Name = "deadline", DueMs = 5000 }],
            Cancel = ["reminder"],
            Event = Json("{}"),
        });
        Assert.Equal(
            [
                "state.items[2]: missing, expected 3",
                "commands[0].id: expected orders-bbb, got orders-aaa",
                "commands[0].pool: expected none, got pool-1",
                "cancel: expected [reminder], got []",
            ],
            OutcomeComparer.Compare(recorded, actual));
    }

    [Fact]
    public void Recorded_history_replays_clean_and_bounded_history_starts_from_the_oldest_kept_state()
    {
        // History as the worker keeps it: each step's exact event and everything it did.
        var history = Run("source.yaml", GoldenSaga.PassingYaml).Select((r, i) => new HistoryStep
        {
            Version = i + 1, EventId = r.Step.Event.Id, Type = r.Step.Event.Type, Time = "-", Stream = r.Step.Event.Origin.Stream,
            ManifestHash = _manifests.Hash, Handler = "on_event", StateHash = "-", State = Json(r.Actual.StateJson!),
            Commands = r.Actual.Commands!.Select(c => new HistoryCommand { Id = c.Id!, Effect = c.Effect, Pool = c.Pool, Payload = Json(c.PayloadJson) }).ToList(),
            Schedules = r.Actual.Schedules!.Select(t => new HistoryTimer { Name = t.Name, DueMs = t.DueMs, Deadline = t.Deadline ?? false, Payload = Json(t.PayloadJson!) }).ToList(),
            Cancel = r.Actual.Cancel!.ToList(),
            Done = r.Actual.Done ?? false,
            Event = Json(r.Step.Event.Json),
        }).ToList();

        var full = GoldenFileWriter.Record("orders", "acme", "o-1", history);
        Assert.Null(full.From);
        Assert.Equal(3, full.Steps);
        var replayed = Run("full.jsonl", full.Jsonl);
        Assert.Equal(3, replayed.Count);
        Assert.All(replayed, r => Assert.True(r.Passed, string.Join('\n', r.Differences)));
        // Everything was recorded, so everything is checked: ids and pools too.
        Assert.Equal("payments", replayed[0].Step.Expect.Commands![0].Pool);
        Assert.True(replayed[0].Step.Expect.Commands![0].CheckPool);
        Assert.Equal(history[0].Commands[0].Id, replayed[0].Step.Expect.Commands![0].Id);

        var bounded = GoldenFileWriter.Record("orders", "acme", "o-1", history[1..]);
        Assert.Equal(2, bounded.From?.Version);
        Assert.Equal(1, bounded.Steps);
        var read = Read("bounded.jsonl", bounded.Jsonl);
        Assert.True(JsonDiff.Equal(history[1].State.GetRawText(), read.File!.InitialStateJson!));
        var step = Assert.Single(GoldenRunner.Run(read.File, _manifests, _manifests.Saga("orders")!));
        Assert.True(step.Passed, string.Join('\n', step.Differences));
        Assert.Equal("payment.charge.succeeded", step.Step.Event.Type);

        // A gap (the limit was lowered) starts the recording after it.
        var gap = GoldenFileWriter.Record("orders", "acme", "o-1", [history[0], history[2]]);
        Assert.Equal(3, gap.From?.Version);
        Assert.Equal(0, gap.Steps);
    }

    private List<GoldenStepResult> Run(string name, string text)
    {
        var read = Read(name, text);
        Assert.True(read.File is not null, string.Join('\n', read.Errors));
        var saga = _manifests.Saga(read.File.Saga);
        Assert.NotNull(saga);
        return GoldenRunner.Run(read.File, _manifests, saga);
    }

    private GoldenFileReader.Result Read(string name, string text)
    {
        File.WriteAllText(_dir.File(name), text);
        return GoldenFileReader.Read(_dir.File(name), new StreamNames());
    }

    private static string Id(string eventId, string name) =>
        CommandIds.Derive(new TenantId("acme"), new SagaName("orders"), new CorrelationKey("o-1"), eventId, name).Value;

    private static JsonElement Json(string text)
    {
        using var doc = JsonDocument.Parse(text);
        return doc.RootElement.Clone();
    }
}
