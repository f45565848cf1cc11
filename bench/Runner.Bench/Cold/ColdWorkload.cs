using System.Globalization;
using System.Text;

namespace Runner.Bench.Cold;

/// <summary>
/// The tally saga of <c>--cold</c>: accounts of five deposits each, a settle command on the fifth. Deposits come in
/// groups of <see cref="GroupKeys"/> accounts, five rounds over each group, so that commands (one per five events)
/// come out evenly as the backlog drains, and command <c>c</c> arriving means the first <c>5c</c> events are applied
/// once a group is done (the bench reads progress from commands alone and adds no load to the runner to learn it).
/// </summary>
internal static class ColdWorkload
{
    public const int GroupKeys = 200;
    public const int DepositsPerAccount = 5;
    public const int GroupEvents = GroupKeys * DepositsPerAccount;

    public const string Manifest = """
        kind: saga
        name: tally
        script: tally.js
        triggers:
          - stream: AGGREGATE_EVENTS
            subject: "aggregate.*.account.*.deposited"
            correlation: "subject[3]"
        """;

    public const string Effects = """
        kind: effect
        name: account.settle
        provider: http
        http: { url: "http://127.0.0.1:9/settle" }
        """;

    public const string Script = """
        'use strict';
        function on_event(state, event, ctx) {
          const count = (state ? state.count : 0) + 1;
          const total = (state ? state.total : 0) + event.data.amount;
          if (count < 5) {
            return { state: { count: count, total: total } };
          }
          return {
            state: { count: count, total: total },
            commands: [{ effect: 'account.settle', id: ctx.id('settle'), payload: { account: event.data.account, total: total } }],
            done: true,
          };
        }
        """;

    /// <summary>Writes the manifests into <paramref name="directory"/>.</summary>
    public static void Write(string directory)
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, "tally.yaml"), Manifest);
        File.WriteAllText(Path.Combine(directory, "tally.js"), Script);
        File.WriteAllText(Path.Combine(directory, "effects.yaml"), Effects);
    }

    /// <summary>Event <paramref name="n"/>: its group, round within the group and account.</summary>
    public static (string Subject, byte[] Data) Event(int n)
    {
        var group = n / GroupEvents;
        var round = n % GroupEvents / GroupKeys;
        var account = string.Create(CultureInfo.InvariantCulture, $"a{(group * GroupKeys) + (n % GroupKeys)}");
        var amount = 10 + round;
        return (
            $"aggregate.acme.account.{account}.deposited",
            Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture,
                $$$"""{"specversion":"1.0","id":"d-{{{n}}}","source":"bench","type":"deposited","datacontenttype":"application/json","data":{"account":"{{{account}}}","amount":{{{amount}}}}}""")));
    }
}
