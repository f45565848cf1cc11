using static Runner.Scripting.Tests.Scripts;

namespace Runner.Scripting.Tests;

/// <summary>The <c>ctx</c> argument: its fields, their order, and that a script can change none of it.</summary>
public sealed class ContextTests
{
    private const string Source = """
        'use strict';
        function on_event(state, event, ctx) {
          const d = Object.getOwnPropertyDescriptor(ctx, 'now');
          let added = 'no error';
          try { ctx.extra = 1; } catch (e) { added = e.constructor.name; }
          let deleted = 'no error';
          try { delete ctx.key; } catch (e) { deleted = e.constructor.name; }
          return {
            state: {
              keys: Object.keys(ctx),
              now: ctx.now, saga: ctx.saga, key: ctx.key, tenant: ctx.tenant,
              frozen: Object.isFrozen(ctx),
              now_descriptor: [d.writable, d.enumerable, d.configurable],
              added: added, deleted: deleted,
              id_is_function: typeof ctx.id === 'function' && Object.isFrozen(ctx.id),
              random_in_range: ctx.random() >= 0 && ctx.random() < 1,
            },
          };
        }
        """;

    [Fact]
    public void Ctx_carries_the_input_in_order_and_is_frozen()
    {
        var output = Succeeds(Compile(Source), Input(key: "k-7"));

        Assert.Equal(
            """{"keys":["now","saga","key","tenant","id","random"],"now":1700000000123,"saga":"orders","key":"k-7","tenant":"acme","frozen":true,"now_descriptor":[false,true,false],"added":"TypeError","deleted":"TypeError","id_is_function":true,"random_in_range":true}""",
            output.StateJson);
    }

    [Fact]
    public void Each_run_sees_its_own_input_in_ctx_whatever_ran_before_on_the_same_engine()
    {
        var script = Compile("""
            'use strict';
            function on_event(state, event, ctx) {
              if (event.data.kind === 'boom') { throw new Error('boom ' + ctx.key); }
              return { state: { now: ctx.now, key: ctx.key, saga: ctx.saga, tenant: ctx.tenant, frozen: Object.isFrozen(ctx) } };
            }
            """);

        var first = Succeeds(script, Input(key: "k-1", nowMs: 1_000));
        AssertCode(ScriptFailure.ScriptError, Fails(script, Input(kind: "boom", key: "k-2", nowMs: 2_000)));
        var third = Succeeds(script, Input(key: "k-3", nowMs: 3_000));

        // Many more on the same engine: each sees its own values, however often the same code read them before.
        for (var i = 4; i < 1_000; i++)
        {
            var key = "k-" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var later = Succeeds(script, Input(key: key, nowMs: i * 1_000L));
            Assert.Equal($$"""{"now":{{i * 1_000L}},"key":"{{key}}","saga":"orders","tenant":"acme","frozen":true}""", later.StateJson);
        }

        Assert.Equal(1, script.Pool.Created);
        Assert.Equal("""{"now":1000,"key":"k-1","saga":"orders","tenant":"acme","frozen":true}""", first.StateJson);
        Assert.Equal("""{"now":3000,"key":"k-3","saga":"orders","tenant":"acme","frozen":true}""", third.StateJson);
    }
}
