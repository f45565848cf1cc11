using Runner.Core.Manifests;
using Runner.Core.Transitions;
using static Runner.Scripting.Tests.Scripts;

namespace Runner.Scripting.Tests;

public sealed class OutputContractTests
{
    private const string Source = """
        'use strict';
        function on_event(state, event, ctx) {
          switch (event.data.kind) {
            case 'nothing': return;
            case 'null': return null;
            case 'number': return 5;
            case 'string': return 'state';
            case 'array': return [{ state: 1 }];
            case 'function': return function () {};
            case 'unknown-field': return { state: {}, command: [] };
            case 'bad-command': return { commands: [{ payload: {} }] };
            case 'bad-schedule': return { schedules: [{ name: 't', at: 1, after_ms: 1 }] };
            case 'cyclic': { const o = {}; o.self = o; return { state: o }; }
            case 'bigint': return { state: { n: 10n } };
            case 'huge': return { state: { s: 'x'.repeat(300 * 1024) } };
            case 'huge-multibyte': return { state: { s: '\u20ac'.repeat(100 * 1024) } };
            case 'undefined-fields': return { state: { a: undefined, b: 1 }, commands: undefined };
            case 'raw-lone-surrogate': return { state: { t: JSON.rawJSON('"\ud800"') } };
            case 'full': return {
              state: { step: 2 },
              commands: [{ effect: 'slice.launch', id: ctx.id('launch'), payload: { rows: 3 }, pool: 'gpu' }],
              schedules: [{ name: 'deadline', at: ctx.now + 600000 }, { name: 'poll', after_ms: 5000, payload: { n: 1 } }],
              cancel: ['old'],
              done: true
            };
            default: return { state: { ok: true } };
          }
        }
        """;

    private static SagaScript Script(ScriptLimits? limits = null) => Compile(Source, limits);

    private static void NextEventSucceeds(SagaScript script) =>
        Assert.Equal("""{"ok":true}""", Succeeds(script, Input(kind: "normal")).StateJson);

    [Fact]
    public void Full_transition_is_returned()
    {
        var output = Succeeds(Script(), Input(kind: "full"));

        Assert.Equal("""{"step":2}""", output.StateJson);
        var command = Assert.Single(output.Commands);
        Assert.Equal(("slice.launch", Core.Ids.CommandIds.Derive(new(Tenant), new(Saga), new("order-42"), "evt-1", "launch").Value, """{"rows":3}""", "gpu"), (command.Effect, command.Id, command.PayloadJson, command.Pool));
        Assert.Equal([new ScheduleRequest("deadline", Now + 600_000, null), new ScheduleRequest("poll", Now + 5_000, """{"n":1}""")], output.Schedules);
        Assert.Equal(["old"], output.Cancel);
        Assert.True(output.Done);
    }

    [Fact]
    public void Undefined_fields_are_left_out()
    {
        var output = Succeeds(Script(), Input(kind: "undefined-fields"));

        Assert.Equal("""{"b":1}""", output.StateJson);
        Assert.Empty(output.Commands);
    }

    [Theory]
    [InlineData("nothing", "returned nothing")]
    [InlineData("null", "returned nothing")]
    [InlineData("number", "must return an object")]
    [InlineData("string", "must return an object")]
    [InlineData("array", "must return an object")]
    [InlineData("function", "not JSON-serializable")]
    [InlineData("unknown-field", "unknown field 'command'")]
    [InlineData("bad-command", "commands[0].effect")]
    [InlineData("bad-schedule", "exactly one of 'at'")]
    public void Contract_violation_is_an_output_contract_failure(string kind, string reason)
    {
        var script = Script();

        var failure = Fails(script, Input(kind: kind));

        AssertCode(ScriptFailure.OutputContract, failure);
        Assert.Contains(reason, failure.Message, StringComparison.Ordinal);
        NextEventSucceeds(script);
    }

    [Theory]
    [InlineData("cyclic")]
    [InlineData("bigint")]
    public void Result_that_json_cannot_represent_is_a_script_error(string kind)
    {
        var script = Script();

        AssertCode(ScriptFailure.ScriptError, Fails(script, Input(kind: kind)));
        NextEventSucceeds(script);
    }

    [Fact]
    public void Output_over_max_output_bytes_is_too_large()
    {
        var script = Script();

        var failure = Fails(script, Input(kind: "huge"));

        AssertCode(ScriptFailure.OutputTooLarge, failure);
        Assert.Contains(ScriptLimits.Default.MaxOutputBytes.ToString(System.Globalization.CultureInfo.InvariantCulture), failure.Message, StringComparison.Ordinal);
        NextEventSucceeds(script);
    }

    [Fact]
    public void Output_under_a_raised_limit_is_accepted()
    {
        var output = Succeeds(Script(ScriptLimits.Default with { MaxOutputBytes = 1024 * 1024, MemoryMb = 64 }), Input(kind: "huge"));

        Assert.True(output.StateJson.Length > 300 * 1024);
    }

    [Fact]
    public void Output_limit_counts_utf8_bytes_not_characters()
    {
        var script = Script();

        var result = script.Run(Input(kind: "huge-multibyte"));

        Assert.True(result.Succeeded is false, $"a result of {result.Output?.StateJson.Length} characters and {System.Text.Encoding.UTF8.GetByteCount(result.Output?.StateJson ?? "")} UTF-8 bytes passed a {ScriptLimits.Default.MaxOutputBytes}-byte limit");
        AssertCode(ScriptFailure.OutputTooLarge, result.Failure);
    }

    [Fact]
    public void Raw_json_text_that_is_not_valid_unicode_is_a_violation_not_replaced()
    {
        var script = Script();

        var failure = Fails(script, Input(kind: "raw-lone-surrogate"));

        AssertCode(ScriptFailure.OutputContract, failure);
        Assert.Contains("not valid Unicode", failure.Message, StringComparison.Ordinal);
        NextEventSucceeds(script);
    }
}
