using System.Globalization;
using System.Net;
using System.Text;
using NATS.Client.JetStream;
using Runner.Testing;
using Xunit;

namespace Runner.Host.Tests.Operations;

/// <summary>/metrics after a known workload: the named series exist with the counts the workload implies.</summary>
public sealed class MetricsTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private const int Events = 6;

    [Fact]
    public async Task After_a_known_workload_the_named_series_have_the_expected_counts()
    {
        await using var scope = await OpsScope.StartAsync(nats);
        var (ct, js, stub) = (scope.Token, scope.Js, scope.Stub);
        // Every third call fails for good (a 400 is not retried): failed results, compensated by the script's on_event.
        stub.Respond("/work", (request, _) => RunnerNode.Json(request.Body).GetProperty("n").GetInt32() % 3 == 0
            ? new StubResponse(400, """{"error":"no"}""")
            : StubResponse.Ok);
        await using var node = await RunnerNode.StartAsync(nats, stub.Url, ct);

        for (var i = 1; i <= Events; i++)
        {
            await RunnerNode.PublishCreatedAsync(js, $"m{i}", i, ct);
        }
        // One event that is not JSON: quarantined by the router.
        (await js.PublishAsync("aggregate.acme.op.bad.created", Encoding.UTF8.GetBytes("{not json"), cancellationToken: ct)).EnsureSuccess();

        // Every call to the upstream made and answered before /metrics is first asked: what .NET's meters measured
        // then is exported too (prometheus-net would otherwise start listening at the first scrape).
        await node.WaitOpDoneAsync(Events, ct);

        // Each event makes two transitions: created, then its result. The effect worker acks a command after publishing its
        // result, so its lag can trail the saga's last transition by a moment: wait for a scrape whose consumers all answered
        // and have caught up (a consumer a scrape could not ask has no series, never an old figure).
        (string Name, string Consumer)[] lags =
        [
            .. Enumerable.Range(0, 4).Select(p => ("runner_consumer_pending", $"consumer=\"runner-inbox-{p}-e1\"")),
            ("runner_consumer_pending", "consumer=\"runner-router-AGGREGATE_EVENTS-e1\""),
            ("runner_consumer_ack_pending", "consumer=\"runner-effect-work=do\""),
        ];
        string text = string.Empty;
        await node.WaitUntilAsync(async () =>
        {
            text = (await node.GetAsync("metrics", ct)).Text;
            return Samples(text, "runner_saga_transitions_total", "saga=\"op\"") is [var line] && line.EndsWith($" {2 * Events}", StringComparison.Ordinal)
                && lags.All(l => Samples(text, l.Name, l.Consumer) is [var lag] && lag.EndsWith(" 0", StringComparison.Ordinal));
        }, $"{2 * Events} transitions and every consumer caught up in /metrics", ct);

        Assert.Equal(2 * Events, Value(text, "runner_saga_transitions_total", "saga=\"op\""));
        Assert.Equal(2 * Events, Value(text, "runner_saga_script_duration_seconds_count", "saga=\"op\""));
        Assert.Equal(4, Value(text, "runner_effect_duration_seconds_count", "effect=\"work.do\"", "outcome=\"succeeded\""));
        Assert.Equal(2, Value(text, "runner_effect_duration_seconds_count", "effect=\"work.do\"", "outcome=\"failed\""));
        Assert.Equal(Events, Value(text, "runner_outbox_dispatched_total"));
        Assert.Equal(Events, Value(text, "runner_outbox_dispatch_latency_seconds_count"));
        Assert.Equal(1, Value(text, "runner_quarantined_total", "stage=\"router\"", "reason=\"not_json\""));
        Assert.Equal(0, Value(text, "runner_outbox_depth"));
        Assert.Equal(0, Value(text, "runner_schedule_depth"));
        Assert.Equal(1, Value(text, "runner_ready"));
        Assert.Equal(0, Value(text, "runner_breaker_state", "effect=\"work.do\""));
        Assert.True(Value(text, "runner_lmdb_commit_duration_seconds_count") >= 2 * Events / 4, text);
        Assert.True(Value(text, "runner_lmdb_commit_batches_count") >= 1);
        Assert.True(Value(text, "runner_lmdb_map_used_bytes") > 0);
        Assert.True(Value(text, "runner_lmdb_map_size_bytes") >= 256L << 20);
        // Lag per consumer, for the routers, every partition and the effect worker.
        Assert.Equal(0, Value(text, "runner_consumer_pending", "consumer=\"runner-router-AGGREGATE_EVENTS-e1\""));
        Assert.Equal(0, Value(text, "runner_consumer_ack_pending", "consumer=\"runner-effect-work=do\""));
        for (var p = 0; p < 4; p++)
        {
            Assert.Equal(0, Value(text, "runner_consumer_pending", $"consumer=\"runner-inbox-{p}-e1\""));
        }
        // .NET runtime and process metrics.
        Assert.Contains("\ndotnet_collection_count_total", text, StringComparison.Ordinal);
        Assert.Contains("\nprocess_cpu_seconds_total", text, StringComparison.Ordinal);
        // Not the NATS client's measurements of every message sent or received.
        foreach (var perMessage in (string[])["messaging_client_operation_duration", "messaging_client_published_messages", "messaging_client_consumed_messages", "nats_client_sent_bytes", "nats_client_received_bytes"])
        {
            Assert.DoesNotContain(perMessage, text, StringComparison.Ordinal);
        }
        // Nor the HTTP client's counts of each request; its request duration stays.
        foreach (var perRequest in (string[])["http_client_active_requests", "http_client_open_connections", "http_client_request_time_in_queue"])
        {
            Assert.DoesNotContain(perRequest, text, StringComparison.Ordinal);
        }
        // Every call's duration, the calls made before the first scrape among them: four answered 200, two 400.
        Assert.Equal(4, Value(text, "system_net_http_http_client_request_duration_count", "http_response_status_code=\"200\""));
        Assert.Equal(2, Value(text, "system_net_http_http_client_request_duration_count", "http_response_status_code=\"400\""));
    }

    [Fact]
    public void The_adapter_exports_other_meters_but_not_runners_own_nor_the_per_message_and_per_request_instruments_of_the_nats_and_http_clients()
    {
        using var nats = new System.Diagnostics.Metrics.Meter(Commands.ServeCommand.NatsClientMeter);
        using var runtime = new System.Diagnostics.Metrics.Meter("System.Runtime.Probe");
        using var runner = new System.Diagnostics.Metrics.Meter("Runner.Probe");

        Assert.True(Commands.ServeCommand.ExportsFromAdapter(nats.CreateCounter<long>("nats.client.reconnects")));
        Assert.True(Commands.ServeCommand.ExportsFromAdapter(nats.CreateCounter<long>("nats.client.messages.dropped")));
        Assert.True(Commands.ServeCommand.ExportsFromAdapter(nats.CreateUpDownCounter<long>("nats.client.active_subscriptions")));
        Assert.False(Commands.ServeCommand.ExportsFromAdapter(nats.CreateHistogram<double>("messaging.client.operation.duration")));
        Assert.False(Commands.ServeCommand.ExportsFromAdapter(nats.CreateCounter<long>("messaging.client.published.messages")));
        Assert.False(Commands.ServeCommand.ExportsFromAdapter(nats.CreateCounter<long>("messaging.client.consumed.messages")));
        Assert.False(Commands.ServeCommand.ExportsFromAdapter(nats.CreateCounter<long>("nats.client.sent.bytes")));
        Assert.False(Commands.ServeCommand.ExportsFromAdapter(nats.CreateCounter<long>("nats.client.received.bytes")));
        Assert.True(Commands.ServeCommand.ExportsFromAdapter(runtime.CreateCounter<long>("messaging.client.published.messages")));
        using var http = new System.Diagnostics.Metrics.Meter(Commands.ServeCommand.HttpClientMeter);
        Assert.False(Commands.ServeCommand.ExportsFromAdapter(http.CreateUpDownCounter<long>("http.client.active_requests")));
        Assert.False(Commands.ServeCommand.ExportsFromAdapter(http.CreateUpDownCounter<long>("http.client.open_connections")));
        Assert.False(Commands.ServeCommand.ExportsFromAdapter(http.CreateHistogram<double>("http.client.request.time_in_queue")));
        Assert.True(Commands.ServeCommand.ExportsFromAdapter(http.CreateHistogram<double>("http.client.request.duration")));
        Assert.True(Commands.ServeCommand.ExportsFromAdapter(http.CreateHistogram<double>("http.client.connection.duration")));
        Assert.False(Commands.ServeCommand.ExportsFromAdapter(runner.CreateCounter<long>("runner.saga.transitions")));
    }

    /// <summary>The value of the one sample of <paramref name="name"/> whose labels include all of <paramref name="labels"/>.</summary>
    internal static double Value(string text, string name, params string[] labels)
    {
        var samples = Samples(text, name, labels);
        Assert.True(samples.Count == 1, $"expected one sample of {name} with {string.Join(",", labels)}, found {samples.Count}:\n{text}");
        return double.Parse(samples[0][(samples[0].LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
    }

    internal static List<string> Samples(string text, string name, params string[] labels) => text.Split('\n')
        .Where(line => line.StartsWith(name + "{", StringComparison.Ordinal) || line.StartsWith(name + " ", StringComparison.Ordinal))
        .Where(line => labels.All(l => line.Contains(l, StringComparison.Ordinal)))
        .ToList();
}
