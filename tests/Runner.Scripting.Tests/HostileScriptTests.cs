using Runner.Core.Manifests;
using static Runner.Scripting.Tests.Scripts;

namespace Runner.Scripting.Tests;

public sealed class HostileScriptTests
{
    private const string Source = """
        'use strict';
        function recurse(n) { return recurse(n + 1) + 1; }
        function viaEval() { return eval('viaEval()'); }
        function on_event(state, event, ctx) {
          const kind = event.data.kind;
          if (kind === 'loop') { while (true) {} }
          if (kind === 'catch-loop') { for (;;) { try { while (true) {} } catch (e) {} } }
          if (kind === 'finally-loop') { for (;;) { try { while (true) {} } finally { continue; } } }
          if (kind === 'recurse') { recurse(0); }
          if (kind === 'catch-recurse') { for (;;) { try { recurse(0); } catch (e) {} } }
          if (kind === 'eval') { eval('1 + 1'); }
          if (kind === 'eval-recurse') { viaEval(); }
          if (kind === 'function') { new Function('return 1')(); }
          if (kind === 'constructor') { (() => 0).constructor('return globalThis')(); }
          if (kind === 'indirect-eval') { (0, eval)('1 + 1'); }
          if (kind === 'array') { new Array(1e9).fill(0); }
          if (kind === 'array-push') { const a = []; for (;;) { a.push(a.length); } }
          if (kind === 'catch-array') { for (;;) { try { new Array(1e9).fill(0); } catch (e) {} } }
          if (kind === 'string') { let s = 'x'; for (;;) { s = s + s; } }
          if (kind === 'rope') { let s = 'x'; for (let i = 0; i < 27; i++) { s = s + s; } return { state: { last: s.charCodeAt(s.length - 1), length: s.length } }; }
          if (kind === 'string-concat') { let s = ''; for (;;) { s += 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' + s.length; } }
          if (kind === 'objects') { const all = []; for (;;) { all.push({ a: all.length, b: [1, 2, 3] }); } }
          if (kind === 'redos') { /(a+)+$/.test('a'.repeat(40) + '!'); }
          if (kind === 'catch-redos') { for (;;) { try { /(a+)+$/.test('a'.repeat(40) + '!'); } catch (e) {} } }
          if (kind === 'system') { System.IO.File.ReadAllText('/etc/passwd'); }
          if (kind === 'import') { importNamespace('System.IO'); }
          if (kind === 'clr') { clr.System; }
          if (kind === 'require') { require('fs'); }
          if (kind === 'timer') { setTimeout(function () {}, 0); }
          return { state: { ok: true, kind: kind } };
        }
        """;

    private static readonly ScriptLimits s_limits = ScriptLimits.Default with { TimeoutMs = 200, RegexTimeoutMs = 50 };

    private static async Task<ScriptFailure> FailsWithin(SagaScript script, string kind)
    {
        var (result, _) = await RunBounded(script, Input(kind: kind, eventId: "hostile-" + kind));
        Assert.False(result.Succeeded, kind + " should fail");
        return result.Failure!;
    }

    private static void NextEventSucceeds(SagaScript script)
    {
        var output = Succeeds(script, Input(kind: "normal", eventId: "after"));
        Assert.Equal("""{"ok":true,"kind":"normal"}""", output.StateJson);
    }

    [Theory]
    [InlineData("loop")]
    [InlineData("catch-loop")]
    [InlineData("finally-loop")]
    public async Task Endless_loop_is_stopped_and_the_next_event_succeeds(string kind)
    {
        var script = Compile(Source, s_limits);

        var failure = await FailsWithin(script, kind);

        Assert.Contains(failure.Code, new[] { ScriptFailure.StatementLimit, ScriptFailure.Timeout });
        NextEventSucceeds(script);
    }

    [Fact]
    public async Task Endless_loop_hits_the_statement_limit_first_when_time_is_plentiful()
    {
        var script = Compile(Source, ScriptLimits.Default with { TimeoutMs = 60_000, MaxStatements = 1_000 });

        var failure = await FailsWithin(script, "catch-loop");

        AssertCode(ScriptFailure.StatementLimit, failure);
        NextEventSucceeds(script);
    }

    [Fact]
    public async Task Endless_loop_hits_the_timeout_when_statements_are_plentiful()
    {
        var script = Compile(Source, ScriptLimits.Default with { TimeoutMs = 100, MaxStatements = 100_000_000 });

        var (result, elapsed) = await RunBounded(script, Input(kind: "catch-loop"));

        AssertCode(ScriptFailure.Timeout, result.Failure);
        Assert.True(elapsed >= TimeSpan.FromMilliseconds(100), $"stopped after {elapsed}, before its 100 ms limit");
        NextEventSucceeds(script);
    }

    [Theory]
    [InlineData("recurse")]
    [InlineData("catch-recurse")]
    public async Task Deep_recursion_is_stopped_and_the_next_event_succeeds(string kind)
    {
        var script = Compile(Source, s_limits);

        var failure = await FailsWithin(script, kind);

        AssertCode(ScriptFailure.RecursionLimit, failure);
        NextEventSucceeds(script);
    }

    [Theory]
    [InlineData("eval")]
    [InlineData("eval-recurse")]
    [InlineData("function")]
    [InlineData("constructor")]
    [InlineData("indirect-eval")]
    public async Task String_compilation_is_disabled(string kind)
    {
        var script = Compile(Source, s_limits);

        var failure = await FailsWithin(script, kind);

        AssertCode(ScriptFailure.ScriptError, failure);
        NextEventSucceeds(script);
    }

    [Theory]
    [InlineData("array")]
    [InlineData("array-push")]
    [InlineData("catch-array")]
    [InlineData("string")]
    [InlineData("string-concat")]
    [InlineData("objects")]
    public async Task Memory_bomb_hits_the_memory_limit_and_the_next_event_succeeds(string kind)
    {
        var script = Compile(Source, s_limits with { TimeoutMs = 10_000, MaxStatements = 100_000_000 });

        var failure = await FailsWithin(script, kind);

        AssertCode(ScriptFailure.MemoryLimit, failure);
        NextEventSucceeds(script);
    }

    [Fact]
    public async Task Memory_limit_holds_for_a_doubling_string_built_between_samples()
    {
        var script = Compile(Source, s_limits with { TimeoutMs = 10_000, MaxStatements = 100_000_000 });

        var (result, _) = await RunBounded(script, Input(kind: "rope"));

        AssertCode(ScriptFailure.MemoryLimit, result.Failure);
        NextEventSucceeds(script);
    }

    [Theory]
    [InlineData("redos")]
    [InlineData("catch-redos")]
    public async Task Catastrophic_regex_hits_the_regex_timeout_and_the_next_event_succeeds(string kind)
    {
        var script = Compile(Source, s_limits with { TimeoutMs = 10_000 });

        var (result, elapsed) = await RunBounded(script, Input(kind: kind));

        AssertCode(ScriptFailure.RegexTimeout, result.Failure);
        Assert.True(elapsed < TimeSpan.FromSeconds(5), $"regex ran {elapsed}");
        NextEventSucceeds(script);
    }

    [Theory]
    [InlineData("system", "System")]
    [InlineData("import", "importNamespace")]
    [InlineData("clr", "clr")]
    [InlineData("require", "require")]
    [InlineData("timer", "setTimeout")]
    public async Task Host_access_is_not_defined(string kind, string name)
    {
        var script = Compile(Source, s_limits);

        var failure = await FailsWithin(script, kind);

        AssertCode(ScriptFailure.ScriptError, failure);
        Assert.Contains(name + " is not defined", failure.Message, StringComparison.Ordinal);
        NextEventSucceeds(script);
    }

    [Fact]
    public async Task Every_hostile_event_in_a_row_leaves_the_same_script_usable()
    {
        var script = Compile(Source, s_limits with { TimeoutMs = 2_000, MaxStatements = 1_000_000 });
        string[] kinds = ["loop", "recurse", "eval", "function", "array", "redos", "system", "catch-loop"];

        foreach (var kind in kinds)
        {
            await FailsWithin(script, kind);
            NextEventSucceeds(script);
        }
    }
}
