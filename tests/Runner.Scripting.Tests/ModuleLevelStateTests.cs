using Runner.Core.Manifests;
using static Runner.Scripting.Tests.Scripts;

namespace Runner.Scripting.Tests;

public sealed class ModuleLevelStateTests
{
    private const string OnEvent = "function on_event(state, event, ctx) { return { state: state }; }\n";

    private static ManifestError RejectOne(string source)
    {
        var error = Assert.Single(Reject(source));
        Assert.Equal("orders.js", error.File);
        return error;
    }

    [Fact]
    public void Functions_consts_and_directives_are_accepted()
    {
        var script = Compile("'use strict';\nconst LIMIT = 5;\nconst NAMES = ['a', 'b'];\n;\nfunction helper(x) { return x + LIMIT; }\n" +
            "function on_event(state, event, ctx) { return { state: { n: helper(1), names: NAMES } }; }\n");

        Assert.Equal("""{"n":6,"names":["a","b"]}""", Succeeds(script, Input()).StateJson);
        Assert.False(script.HasCompensate);
        Assert.Equal(64, script.Hash.Length);
    }

    [Fact]
    public void Top_level_let_is_rejected_with_its_line()
    {
        var error = RejectOne("'use strict';\n" + OnEvent + "let x = 0;\n");

        Assert.Equal(3, error.Line);
        Assert.Equal(1, error.Column);
        Assert.Contains("top-level 'let'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Top_level_var_is_rejected_with_its_line()
    {
        var error = RejectOne(OnEvent + "\n\n  var y = 1;\n");

        Assert.Equal(4, error.Line);
        Assert.Equal(3, error.Column);
        Assert.Contains("top-level 'var'", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("on_event.count = 0;", "ExpressionStatement")]
    [InlineData("(function () {})();", "ExpressionStatement")]
    [InlineData("if (true) { }", "IfStatement")]
    [InlineData("for (;;) { break; }", "ForStatement")]
    [InlineData("class Counter { }", "ClassDeclaration")]
    public void Top_level_statements_other_than_declarations_are_rejected_with_their_line(string statement, string what)
    {
        var error = RejectOne(OnEvent + statement + "\n");

        Assert.Equal(2, error.Line);
        Assert.Contains("top-level " + what + " is not allowed", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("async function later() {}", "later")]
    [InlineData("function* steps() {}", "steps")]
    public void Async_and_generator_functions_are_rejected(string declaration, string name)
    {
        var error = RejectOne(OnEvent + declaration + "\n");

        Assert.Equal(2, error.Line);
        Assert.Contains($"function '{name}' must not be async or a generator", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("const m = new Map();", "Map")]
    [InlineData("const s = new Set([1]);", "Set")]
    [InlineData("const w = new WeakMap();", "WeakMap")]
    [InlineData("const d = new Date(0);", "Date")]
    [InlineData("const b = new ArrayBuffer(8);", "ArrayBuffer")]
    [InlineData("const t = new Uint8Array(8);", "typed array")]
    [InlineData("const p = Promise.resolve(1);", "Promise")]
    [InlineData("const cache = { byId: new Map() };", "Map")]
    [InlineData("const list = [1, [new Set()]];", "Set")]
    public void Top_level_const_holding_mutable_state_is_rejected_when_loading(string declaration, string type)
    {
        var error = RejectOne(OnEvent + declaration + "\n");

        // Rejected before anything runs: a call or `new` in a top-level const initializer could
        // hide mutable state (a {type} here) that freezing cannot reach.
        Assert.Contains("may not call functions or construct objects", error.Message, StringComparison.Ordinal);
        Assert.Equal(OnEvent.Split('\n').Length, error.Line);
        Assert.False(string.IsNullOrEmpty(type));
    }

    [Theory]
    [InlineData("const counter = (function () { let n = 0; return function () { return n++; }; })();")]
    [InlineData("const it = [1, 2, 3].values();")]
    [InlineData("const tagged = String.raw`x`;")]
    public void Top_level_const_initializer_that_could_hide_state_is_rejected_before_running(string declaration)
    {
        var error = RejectOne(OnEvent + declaration + "\n");
        Assert.Contains("may not call functions or construct objects", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Object_freeze_of_literals_and_function_values_are_allowed_at_top_level()
    {
        var ok = SagaScript.TryCompile(Saga, "orders.js",
            OnEvent + "const LIMITS = Object.freeze({ max: 3, names: ['a', 'b'] });\nconst pick = (x) => new Array(x).length;\n",
            ScriptLimits.Default, out _, out var errors);
        Assert.True(ok, string.Join("; ", errors));
    }

    [Fact]
    public void Module_level_code_that_would_never_end_is_rejected_before_running()
    {
        // A getter read at load time runs code without any call syntax.
        var errors = Reject(OnEvent + "const o = { get a() { for (;;) { } } };\nconst x = o.a;\n");

        // Code that would run at load time (a getter read) is rejected before anything runs.
        Assert.Equal([2, 3], errors.Select(e => e.Line));
        Assert.All(errors, e => Assert.Contains("top-level const initializers", e.Message, StringComparison.Ordinal));
    }

    [Fact]
    public void Module_level_code_that_would_throw_is_rejected_before_running()
    {
        var errors = Reject(OnEvent + "const o = { get a() { throw new Error('x'); } };\nconst x = o.a;\n");

        // Code that would run at load time (a getter read) is rejected before anything runs.
        Assert.Equal([2, 3], errors.Select(e => e.Line));
        Assert.All(errors, e => Assert.Contains("top-level const initializers", e.Message, StringComparison.Ordinal));
    }

    [Fact]
    public void Module_level_regex_that_would_time_out_is_rejected_before_running()
    {
        var errors = new List<ManifestError>();
        var ok = false;
        var ex = Record.Exception(() => ok = SagaScript.TryCompile(Saga, "orders.js",
            OnEvent + "const o = { get a() { return /(a+)+$/.test('a'.repeat(40) + '!'); } };\nconst slow = o.a;\n",
            ScriptLimits.Default with { RegexTimeoutMs = 20 }, out _, out errors));

        Assert.Null(ex);
        Assert.False(ok);
        Assert.Equal([2, 3], errors.Select(e => e.Line));
        Assert.All(errors, e => Assert.Contains("top-level const initializers", e.Message, StringComparison.Ordinal));
    }

    [Fact]
    public void Script_without_on_event_is_rejected()
    {
        var error = RejectOne("function compensate(state, event, ctx) { return {}; }\nconst onEvent = 1;\n");

        Assert.Contains("does not define function on_event", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void On_event_defined_as_a_const_arrow_is_not_a_declaration()
    {
        var error = RejectOne("const on_event = (state) => ({ state });\n");

        Assert.Contains("does not define function on_event", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Syntax_error_is_reported_with_its_line()
    {
        var error = RejectOne("""
            'use strict';
            function on_event(state, event, ctx) {
              return { state: , };
            }
            """);

        Assert.Equal(3, error.Line);
        Assert.StartsWith("script does not compile:", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Strict_mode_errors_are_compile_errors()
    {
        var error = RejectOne(OnEvent + "function f() { with (Math) { return 1; } }\n");

        Assert.Equal(2, error.Line);
        Assert.StartsWith("script does not compile:", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_top_level_problem_is_reported_at_once()
    {
        var errors = Reject("let a = 1;\nvar b = 2;\nb++;\nasync function c() {}\n");

        Assert.Equal(
            [(1, "let"), (2, "var"), (3, "ExpressionStatement"), (4, "async"), (1, "on_event")],
            errors.Select(e => (e.Line, Keyword(e.Message))));
    }

    private static string Keyword(string message) =>
        new[] { "'let'", "'var'", "ExpressionStatement", "async", "on_event" }.First(k => message.Contains(k, StringComparison.Ordinal)).Trim('\'');

    [Theory]
    [InlineData("const next = (function () { let n = 0; return function () { n += 1; return n; }; })();")]
    [InlineData("const it = [1, 2, 3, 4, 5].values();\nfunction next() { return it.next().value; }")]
    [InlineData("const gen = (function* () { let i = 0; for (;;) { yield i++; } })();\nfunction next() { return gen.next().value; }")]
    public void Hidden_module_state_is_rejected_or_cannot_change_the_output(string declarations)
    {
        var source = declarations + "\nfunction on_event(state, event, ctx) { return { state: { n: next() } }; }\n";
        if (!SagaScript.TryCompile(Saga, "orders.js", source, ScriptLimits.Default, out var script, out var errors))
        {
            Assert.NotEmpty(errors);
            return;
        }

        var first = script!.Run(Input());
        var second = script.Run(Input());

        Assert.Equal(first.Output?.StateJson, second.Output?.StateJson);
        Assert.Equal(first.Failure, second.Failure);
    }
}
