namespace Runner.Sagas.Tests;

/// <summary>Manifests and scripts the integration tests run.</summary>
internal static class TestSagas
{
    public const string CounterManifest = """
        kind: saga
        name: counter
        script: counter.js
        triggers:
          - stream: AGGREGATE_EVENTS
            subject: "aggregate.*.counter.*.>"
            correlation: "subject[3]"
        limits: { timeout_ms: 200, max_statements: 100000, memory_mb: 16, recursion: 64 }
        """;

    /// <summary>Folds every event: counts, remembers the order of data.n, emits one command per event.</summary>
    public const string CounterScript = """
        'use strict';
        function on_event(state, event, ctx) {
          state = state || { count: 0, order: [] };
          if (event.type === 'finish') {
            return { state: Object.assign({}, state, { finished: true }), cancel: ['reminder'], done: true };
          }
          const next = { count: state.count + 1, order: state.order.concat([event.data.n]) };
          return {
            state: next,
            commands: [{ effect: 'ledger.add', id: ctx.id('add'), payload: { n: event.data.n, total: next.count } }],
            schedules: [{ name: 'reminder', after_ms: 60000 }],
          };
        }
        """;

    /// <summary>Declares the effect the counter scripts command; a saga may only command declared effects.</summary>
    public const string LedgerEffect = """
        kind: effect
        name: ledger.add
        provider: http
        http: { url: "http://127.0.0.1:9/ledger" }
        """;

    public static Dictionary<string, string> Counter() => new()
    {
        ["counter.yaml"] = CounterManifest,
        ["counter.js"] = CounterScript,
        ["effects.yaml"] = LedgerEffect,
    };

    public const string FoldManifest = """
        kind: saga
        name: fold
        script: fold.js
        triggers:
          - stream: AGGREGATE_EVENTS
            subject: "aggregate.*.fold.*.>"
            correlation: "subject[3]"
        """;

    /// <summary>
    /// Every transition commands ledger.add with the running order of data.n and the script's
    /// version mark: the commands alone show whether each transition saw the exact fold before it.
    /// An 'arm' event sets a timer; the timer's transition commands once more.
    /// </summary>
    public static string FoldScript(string mark = "v1") => $$"""
        'use strict';
        function on_event(state, event, ctx) {
          state = state || { order: [], marks: [] };
          if (event.type === 'timer.fired') {
            return { state: state, commands: [{ effect: 'ledger.add', id: ctx.id('rang'), payload: { rang: event.data.name, order: state.order, mark: '{{mark}}' } }] };
          }
          const next = { order: state.order.concat([event.data.n]), marks: state.marks.concat(['{{mark}}']) };
          const out = { state: next, commands: [{ effect: 'ledger.add', id: ctx.id('add'), payload: { n: event.data.n, order: next.order, mark: '{{mark}}' } }] };
          if (event.type === 'arm') {
            out.schedules = [{ name: 'ring', after_ms: event.data.after_ms }];
          }
          return out;
        }
        """;

    public static Dictionary<string, string> Fold(string mark = "v1") => new()
    {
        ["fold.yaml"] = FoldManifest,
        ["fold.js"] = FoldScript(mark),
        ["effects.yaml"] = LedgerEffect,
    };

    // The time limit is far above what any of its scripts needs: the loops stop at the statement
    // limit and the regex at its own limit, and a good event on a starved test machine (JIT, GC,
    // other suites) must not run into the time limit and be quarantined with the hostile ones.
    public const string HostileManifest = """
        kind: saga
        name: hostile
        script: hostile.js
        triggers:
          - stream: AGGREGATE_EVENTS
            subject: "aggregate.*.hostile.*.>"
            correlation: "subject[3]"
        limits: { timeout_ms: 2000, max_statements: 50000, memory_mb: 8, recursion: 32, regex_timeout_ms: 20 }
        """;

    public const string HostileScript = """
        'use strict';
        function recurse(n) { return recurse(n + 1) + 1; }
        function on_event(state, event, ctx) {
          const kind = event.data.kind;
          if (kind === 'loop') { while (true) {} }
          if (kind === 'catch-loop') { for (;;) { try { while (true) {} } catch (e) {} } }
          if (kind === 'recurse') { recurse(0); }
          if (kind === 'eval') { eval('1 + 1'); }
          if (kind === 'function') { new Function('return 1')(); }
          if (kind === 'array') { new Array(1e9).fill(0); }
          if (kind === 'string') { let s = 'xxxxxxxxxxxxxxxx'; for (let i = 0; i < 40; i++) { s = s + s; } }
          if (kind === 'redos') { /(a+)+$/.test('a'.repeat(40) + '!'); }
          if (kind === 'clr') { return { state: System.IO.File.ReadAllText('/etc/passwd') }; }
          if (kind === 'import') { importNamespace('System'); }
          if (kind === 'pollute') { Object.prototype.polluted = 'yes'; }
          if (kind === 'throw') { throw new Error('boom'); }
          if (kind === 'bad-output') { return { state: 1, commands: 'not a list' }; }
          return { state: { ok: true, polluted: ({}).polluted === undefined ? 'no' : 'yes', n: (state ? state.n : 0) + 1 } };
        }
        """;

    public static Dictionary<string, string> Hostile() => new()
    {
        ["hostile.yaml"] = HostileManifest,
        ["hostile.js"] = HostileScript,
    };

    public const string TimedManifest = """
        kind: saga
        name: timed
        script: timed.js
        triggers:
          - stream: AGGREGATE_EVENTS
            subject: "aggregate.*.timed.*.>"
            correlation: "subject[3]"
        limits: { timeout_ms: 500, max_statements: 100000, memory_mb: 16, recursion: 64 }
        """;

    /// <summary>
    /// Sets and cancels what a <c>set</c> event's data says, commands what a <c>command</c> event
    /// says, and records every event type it sees and every timer that reaches it (with ctx.now).
    /// Its <c>compensate</c> records what it was called for and emits <c>order.cancel</c>.
    /// </summary>
    public const string TimedScript = """
        'use strict';
        function remember(state, event) {
          state = state || { fired: [], seen: [] };
          return Object.assign({}, state, { seen: state.seen.concat([event.type]) });
        }
        function on_event(state, event, ctx) {
          state = remember(state, event);
          if (event.type === 'timer.fired') {
            const fire = { name: event.data.name, due: event.data.due_ms, now: ctx.now, id: event.id };
            return { state: Object.assign({}, state, { fired: state.fired.concat([fire]) }) };
          }
          if (event.type === 'set') {
            return { state: state, schedules: event.data.schedules || [], cancel: event.data.cancel || [] };
          }
          if (event.type === 'command') {
            return { state: state, commands: [{ effect: event.data.effect, id: ctx.id('c'), payload: {} }] };
          }
          return { state: state };
        }
        function compensate(state, event, ctx) {
          state = remember(state, event);
          return {
            state: Object.assign({}, state, {
              compensated: { type: event.type, name: event.data.name || null, due: event.data.due_ms || null, now: ctx.now } }),
            commands: [{ effect: 'order.cancel', id: ctx.id('cancel'), payload: { key: ctx.key } }],
            done: true,
          };
        }
        """;

    public const string TimedEffects = """
        kind: effect
        name: order.cancel
        provider: http
        http: { url: "http://127.0.0.1:9/x" }
        ---
        kind: effect
        name: ledger.add
        provider: http
        http: { url: "http://127.0.0.1:9/x" }
        """;

    /// <summary>The timed saga, and with <paramref name="explicitTwin"/> a copy that also declares the timer and result triggers.</summary>
    public static Dictionary<string, string> Timed(bool explicitTwin = false)
    {
        var files = new Dictionary<string, string>
        {
            ["timed.yaml"] = TimedManifest,
            ["timed.js"] = TimedScript,
            ["effects.yaml"] = TimedEffects,
        };
        if (explicitTwin)
        {
            files["twin.yaml"] = """
                kind: saga
                name: twin
                script: timed.js
                triggers:
                  - stream: AGGREGATE_EVENTS
                    subject: "aggregate.*.twin.*.>"
                    correlation: "subject[3]"
                  - stream: WORKFLOW_EVENTS
                    subject: "workflow.evt.*.timer.twin"
                    correlation: "$.data.key"
                  - stream: WORKFLOW_EVENTS
                    subject: "workflow.evt.*.ledger.add.>"
                    correlation: "$.data.correlation_id"
                limits: { timeout_ms: 500, max_statements: 100000, memory_mb: 16, recursion: 64 }
                """;
        }
        return files;
    }
}
