using static Runner.Scripting.Tests.Scripts;

namespace Runner.Scripting.Tests;

public sealed class PrototypePollutionTests
{
    private const string Source = """
        'use strict';
        const CONFIG = { limit: 3, nested: { list: [1, 2] } };
        function on_event(state, event, ctx) {
          const kind = event.data.kind;
          if (kind === 'object-prototype') { Object.prototype.polluted = 1; }
          if (kind === 'proto-accessor') { ({}).__proto__.polluted = 1; }
          if (kind === 'define-property') { Object.defineProperty(Object.prototype, 'polluted', { value: 1 }); }
          if (kind === 'array-push') { Array.prototype.push = function () { return 0; }; }
          if (kind === 'json') { JSON.stringify = function () { return '{}'; }; }
          if (kind === 'math') { Math.floor = function () { return 7; }; }
          if (kind === 'math-random') { Math.random = function () { return 0.5; }; }
          if (kind === 'string-prototype') { String.prototype.trim = function () { return 'pwned'; }; }
          if (kind === 'delete-builtin') { delete Array.prototype.map; }
          if (kind === 'global') { globalThis.polluted = 1; }
          if (kind === 'implicit-global') { polluted = 1; }
          if (kind === 'function-property') { on_event.polluted = 1; }
          if (kind === 'const') { CONFIG.limit = 99; }
          if (kind === 'nested-const') { CONFIG.nested.list.push(3); }
          if (kind === 'ctx') { ctx.now = 0; }
          if (kind === 'ctx-id-property') { ctx.id.polluted = 1; }
          if (kind === 'ctx-random-property') { ctx.random.polluted = 1; }
          const arr = [];
          arr.push(1);
          return {
            state: {
              object: ({}).polluted === undefined,
              array: arr.length === 1 && typeof [].map === 'function',
              json: JSON.stringify({ a: 1 }) === '{"a":1}',
              math: Math.floor(1.5) === 1 && Math.random !== undefined && ' x '.trim() === 'x',
              global: typeof globalThis.polluted === 'undefined',
              fn: on_event.polluted === undefined,
              config: CONFIG.limit === 3 && CONFIG.nested.list.length === 2,
              ctx: ctx.id.polluted === undefined && ctx.random.polluted === undefined
            }
          };
        }
        """;

    private const string Clean = """{"object":true,"array":true,"json":true,"math":true,"global":true,"fn":true,"config":true,"ctx":true}""";

    [Fact]
    public void Untouched_script_sees_clean_intrinsics()
    {
        Assert.Equal(Clean, Succeeds(Compile(Source), Input()).StateJson);
    }

    [Theory]
    [InlineData("object-prototype")]
    [InlineData("proto-accessor")]
    [InlineData("define-property")]
    [InlineData("array-push")]
    [InlineData("json")]
    [InlineData("math")]
    [InlineData("math-random")]
    [InlineData("string-prototype")]
    [InlineData("delete-builtin")]
    [InlineData("global")]
    [InlineData("implicit-global")]
    [InlineData("function-property")]
    [InlineData("const")]
    [InlineData("nested-const")]
    [InlineData("ctx")]
    public void Writing_to_shared_objects_fails_and_the_next_instance_sees_nothing(string kind)
    {
        var script = Compile(Source);

        var failure = Fails(script, Input(kind: kind, key: "attacker"));

        AssertCode(ScriptFailure.ScriptError, failure);
        Assert.Equal(Clean, Succeeds(script, Input(key: "victim")).StateJson);
    }

    [Theory]
    [InlineData("ctx-id-property")]
    [InlineData("ctx-random-property")]
    public void Writing_to_ctx_functions_does_not_leak_into_the_next_instance(string kind)
    {
        var script = Compile(Source);

        // Failing is fine (the engine is then dropped); succeeding is fine only if nothing sticks.
        script.Run(Input(kind: kind, key: "attacker"));

        Assert.Equal(Clean, Succeeds(script, Input(key: "victim")).StateJson);
    }
}
