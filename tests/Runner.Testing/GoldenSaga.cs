namespace Runner.Testing;

/// <summary>
/// A small saga for golden-file tests (<c>runner saga test</c>): <c>orders</c> charges on
/// <c>order.created</c> (effect <c>payment.charge</c>, whose manifest names pool <c>payments</c>)
/// with a deadline, adds items to the total through <c>ledger.add</c>, ends when paid, throws on
/// <c>order.broken</c>, commands whatever effect <c>order.misrouted</c> names, and compensates.
/// </summary>
internal static class GoldenSaga
{
    public const string Manifest = """
        kind: saga
        name: orders
        script: orders.js
        triggers:
          - { stream: AGGREGATE_EVENTS, subject: "aggregate.*.orders.*.>", correlation: "subject[3]" }
        """;

    public const string Script = """
        'use strict';
        function on_event(state, event, ctx) {
          if (event.type === 'order.created') {
            return {
              state: { status: 'open', total: event.data.total, opened_at: ctx.now },
              commands: [{ effect: 'payment.charge', payload: { total: event.data.total } }],
              schedules: [{ name: 'deadline', after_ms: 60000, deadline: true, payload: { reason: 'late' } }],
            };
          }
          if (event.type === 'item.added') {
            return {
              state: Object.assign({}, state, { total: state.total + event.data.price }),
              commands: [{ effect: 'ledger.add', id: ctx.id('ledger'), payload: { price: event.data.price } }],
            };
          }
          if (event.type === 'order.broken') {
            throw new Error('cannot handle ' + event.id);
          }
          if (event.type === 'order.misrouted') {
            return { state: state, commands: [{ effect: event.data.effect }] };
          }
          if (event.type === 'payment.charge.succeeded') {
            return { state: Object.assign({}, state, { status: 'paid' }), cancel: ['deadline'], done: true };
          }
          return { state: state };
        }
        function compensate(state, event, ctx) {
          return { state: Object.assign({}, state, { status: 'cancelled', why: event.type }), done: true };
        }
        """;

    public const string Effects = """
        kind: effect
        name: payment.charge
        provider: http
        pool: payments
        http: { url: "http://127.0.0.1:9/charge" }
        ---
        kind: effect
        name: ledger.add
        provider: http
        http: { url: "http://127.0.0.1:9/ledger" }
        """;

    /// <summary>
    /// Opens an order of 10, adds an item of 20, and is paid. Short-form events: ids <c>e-1</c>…,
    /// times 2026-01-01T00:00:01Z, :02, :03.
    /// </summary>
    public const string PassingYaml = """
        saga: orders
        tenant: acme
        key: o-1
        steps:
          - event: { type: order.created, data: { total: 10 } }
            expect:
              state: { status: open, total: 10, opened_at: 1767225601000 }
              commands:
                - { effect: payment.charge, pool: payments, payload: { total: 10 } }
              schedules:
                - { name: deadline, after_ms: 60000, deadline: true, payload: { reason: late } }
          - event: { type: item.added, data: { price: 20 } }
            expect:
              state: { status: open, total: 30, opened_at: 1767225601000 }
              commands:
                - { effect: ledger.add, payload: { price: 20 } }
              schedules: []
          - event: { type: payment.charge.succeeded, stream: WORKFLOW_EVENTS, data: { outcome: succeeded } }
            expect:
              state: { status: paid, total: 30, opened_at: 1767225601000 }
              cancel: [deadline]
              done: true
        """;

    /// <summary>Writes the saga, its script and its effects into <paramref name="directory"/> (created).</summary>
    public static string WriteManifests(string directory)
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, "orders.yaml"), Manifest);
        File.WriteAllText(Path.Combine(directory, "orders.js"), Script);
        File.WriteAllText(Path.Combine(directory, "effects.yaml"), Effects);
        return directory;
    }
}
