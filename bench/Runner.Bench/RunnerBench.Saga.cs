namespace Runner.Bench;

internal sealed partial class RunnerBench
{
    public const string Manifest = """
        kind: saga
        name: bench
        script: bench.js
        triggers:
          - stream: AGGREGATE_EVENTS
            subject: "aggregate.*.bench.*.>"
            correlation: "subject[3]"
        limits: { timeout_ms: 200, max_statements: 100000, memory_mb: 16, recursion: 64 }
        """;

    /// <summary>The effect the bench saga commands; a transition may only command declared effects.</summary>
    public const string Effects = """
        kind: effect
        name: bench.noted
        provider: http
        http: { url: "http://127.0.0.1:9/x" }
        """;

    /// <summary>Folds a counter and emits one command per event, echoing the event's marker and publish time.</summary>
    public const string Script = """
        'use strict';
        function on_event(state, event, ctx) {
          const count = (state ? state.count : 0) + 1;
          return {
            state: { count: count },
            commands: [{ effect: 'bench.noted', id: ctx.id('noted'),
                         payload: { p: event.data.p, n: event.data.n, t: event.data.t, count: count } }],
          };
        }
        """;
}
