using System.Globalization;
using System.Text.Json;
using Runner.Core.Transitions;
using static Runner.Scripting.Tests.Scripts;

namespace Runner.Scripting.Tests;

public sealed class DeterminismTests
{
    private const string Source = """
        'use strict';
        function on_event(state, event, ctx) {
          if (event.data.kind === 'loop') { while (true) {} }
          const count = state ? state.count + 1 : 1;
          return {
            state: {
              count: count,
              now: Date.now(),
              ctxNow: ctx.now,
              iso: new Date().toISOString(),
              text: String(new Date()),
              call: Date(),
              offset: new Date().getTimezoneOffset(),
              math: [Math.random(), Math.random()],
              ctxRandom: [ctx.random(), ctx.random()],
              id: ctx.id('x'),
              who: [ctx.tenant, ctx.saga, ctx.key],
              type: event.type
            },
            commands: [{ effect: 'http.call', id: ctx.id('x'), payload: { r: Math.random(), at: Date.now() } }],
            schedules: [{ name: 'deadline', after_ms: 1000 }]
          };
        }
        """;

    private static void AssertSameOutput(TransitionOutput expected, TransitionOutput actual)
    {
        Assert.Equal(expected.StateJson, actual.StateJson);
        Assert.Equal(expected.Commands.Select(c => (c.Effect, c.Id, c.PayloadJson, c.Pool)), actual.Commands.Select(c => (c.Effect, c.Id, c.PayloadJson, c.Pool)));
        Assert.Equal(expected.Schedules, actual.Schedules);
        Assert.Equal(expected.Cancel, actual.Cancel);
        Assert.Equal(expected.Done, actual.Done);
    }

    private static JsonElement State(TransitionOutput output) => JsonDocument.Parse(output.StateJson).RootElement;

    [Fact]
    public void Same_input_gives_byte_identical_output_across_50_runs()
    {
        var script = Compile(Source);
        var first = Succeeds(script, Input());

        for (var i = 0; i < 50; i++)
        {
            AssertSameOutput(first, Succeeds(script, Input()));
        }
    }

    [Fact]
    public void Same_input_gives_identical_output_on_separately_compiled_scripts()
    {
        var one = Compile(Source);
        var two = Compile(Source);

        var a = Succeeds(one, Input(stateJson: """{"count":4}"""));
        var b = Succeeds(two, Input(stateJson: """{"count":4}"""));

        AssertSameOutput(a, b);
        Assert.Equal(5, State(a).GetProperty("count").GetInt32());
    }

    [Fact]
    public void Output_does_not_depend_on_the_events_run_before()
    {
        var script = Compile(Source);
        var baseline = Succeeds(script, Input(eventId: "evt-A"));

        for (var i = 0; i < 10; i++)
        {
            Succeeds(script, Input(eventId: "evt-B-" + i.ToString(CultureInfo.InvariantCulture), nowMs: Now + i, key: "other-" + i.ToString(CultureInfo.InvariantCulture)));
            AssertSameOutput(baseline, Succeeds(script, Input(eventId: "evt-A")));
            Fails(script, Input(kind: "loop", eventId: "evt-loop"));
            AssertSameOutput(baseline, Succeeds(script, Input(eventId: "evt-A")));
        }
    }

    [Fact]
    public void Output_is_the_same_when_sandboxes_run_in_parallel()
    {
        var script = Compile(Source);
        var baseline = Succeeds(script, Input());

        var outputs = new TransitionOutput[64];
        Parallel.For(0, outputs.Length, i => outputs[i] = Succeeds(script, Input()));

        Assert.All(outputs, o => AssertSameOutput(baseline, o));
    }

    [Fact]
    public void Clock_reads_the_event_time()
    {
        var script = Compile(Source);

        var state = State(Succeeds(script, Input(nowMs: Now)));

        Assert.Equal(Now, state.GetProperty("now").GetInt64());
        Assert.Equal(Now, state.GetProperty("ctxNow").GetInt64());
        Assert.Equal("2023-11-14T22:13:20.123Z", state.GetProperty("iso").GetString());
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(Now).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture), state.GetProperty("iso").GetString());
        Assert.Equal(0, state.GetProperty("offset").GetInt32());
        Assert.Contains("2023", state.GetProperty("text").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Clock_follows_each_events_time()
    {
        var script = Compile(Source);

        var early = State(Succeeds(script, Input(nowMs: 1_000)));
        var late = State(Succeeds(script, Input(nowMs: 86_400_000)));

        Assert.Equal(1_000, early.GetProperty("now").GetInt64());
        Assert.Equal("1970-01-01T00:00:01.000Z", early.GetProperty("iso").GetString());
        Assert.Equal(86_400_000, late.GetProperty("now").GetInt64());
        Assert.Equal("1970-01-02T00:00:00.000Z", late.GetProperty("iso").GetString());
    }

    [Fact]
    public void Schedules_after_ms_are_relative_to_the_event_time()
    {
        var script = Compile(Source);

        var output = Succeeds(script, Input(nowMs: 5_000));

        Assert.Equal(new ScheduleRequest("deadline", 6_000, null), Assert.Single(output.Schedules));
    }

    [Fact]
    public void Different_event_id_gives_different_random_values_and_ids()
    {
        var script = Compile(Source);

        var one = State(Succeeds(script, Input(eventId: "evt-1")));
        var two = State(Succeeds(script, Input(eventId: "evt-2")));

        Assert.NotEqual(one.GetProperty("math")[0].GetDouble(), two.GetProperty("math")[0].GetDouble());
        Assert.NotEqual(one.GetProperty("ctxRandom")[0].GetDouble(), two.GetProperty("ctxRandom")[0].GetDouble());
        Assert.NotEqual(one.GetProperty("id").GetString(), two.GetProperty("id").GetString());
    }

    [Fact]
    public void Random_values_come_from_the_events_own_seed_even_after_a_transition_that_drew_none()
    {
        var script = Compile("""
            'use strict';
            function on_event(state, event, ctx) {
              return { state: event.data.kind === 'draw' ? { r: [Math.random(), ctx.random()] } : { r: [] } };
            }
            """);
        var expected = new SeededRandom();
        expected.Seed(Runner.Core.Ids.CommandIds.SeedFrom("evt-drawn"));

        // The same pooled sandbox runs both: the first transition draws nothing, so its seed is never made.
        Succeeds(script, Input(eventId: "evt-quiet"));
        var state = State(Succeeds(script, Input(kind: "draw", eventId: "evt-drawn")));

        Assert.Equal([expected.NextDouble(), expected.NextDouble()], state.GetProperty("r").EnumerateArray().Select(v => v.GetDouble()));
    }

    [Fact]
    public void Random_values_are_a_sequence_in_zero_to_one()
    {
        var script = Compile(Source);

        var state = State(Succeeds(script, Input()));

        var values = state.GetProperty("math").EnumerateArray().Concat(state.GetProperty("ctxRandom").EnumerateArray()).Select(v => v.GetDouble()).ToList();
        Assert.All(values, v => Assert.InRange(v, 0.0, 0.9999999999999999));
        Assert.Equal(values.Count, values.Distinct().Count());
    }

    [Fact]
    public void Ctx_id_is_the_stable_command_id()
    {
        var script = Compile(Source);

        var output = Succeeds(script, Input(eventId: "evt-1", key: "order-42"));

        var expected = Core.Ids.CommandIds.Derive(new(Tenant), new(Saga), new("order-42"), "evt-1", "x").Value;
        Assert.Equal(expected, State(output).GetProperty("id").GetString());
        Assert.Equal(expected, Assert.Single(output.Commands).Id);
    }

    [Fact]
    public void Ctx_carries_tenant_saga_and_key()
    {
        var script = Compile(Source);

        var who = State(Succeeds(script, Input(key: "order-7"))).GetProperty("who");

        Assert.Equal([Tenant, Saga, "order-7"], who.EnumerateArray().Select(e => e.GetString()));
    }
}
