using System.Text;
using System.Text.Json;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using Runner.Slice.Engine;
using Runner.Slice.Nats;
using Runner.Testing;
using Xunit;

namespace Runner.Slice.Tests.Engine;

/// <summary>JetStream sources and sinks against a real nats-server with JetStream.</summary>
public sealed class JetStreamEndpointTests : IClassFixture<NatsServerFixture>
{
    private readonly NatsServerFixture _nats;

    public JetStreamEndpointTests(NatsServerFixture nats)
    {
        _nats = nats;
    }

    private static async Task<List<(ulong Sequence, string Data, string? MsgId)>> ReadAllAsync(NatsJSContext js, string stream, string subject)
    {
        var consumer = await js.CreateOrderedConsumerAsync(stream, new NatsJSOrderedConsumerOpts { FilterSubjects = [subject] });
        var messages = new List<(ulong, string, string?)>();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await foreach (var msg in consumer.FetchAsync<byte[]>(new NatsJSFetchOpts { MaxMsgs = 10_000, Expires = TimeSpan.FromSeconds(2) }, cancellationToken: timeout.Token))
        {
            messages.Add((msg.Metadata!.Value.Sequence.Stream, Encoding.UTF8.GetString(msg.Data!), msg.Headers?["Nats-Msg-Id"].ToString()));
        }
        return messages;
    }

    [Fact]
    public async Task A_subject_is_read_from_its_start_sequence_transformed_and_published_with_run_scoped_ids()
    {
        await using var connection = new NatsConnection(new NatsOpts { Url = _nats.Url });
        var js = new NatsJSContext(connection);
        var id = Guid.NewGuid().ToString("N")[..8];
        await js.CreateOrUpdateStreamAsync(new StreamConfig($"IN_{id}", [$"in.{id}.>"]));
        await js.CreateOrUpdateStreamAsync(new StreamConfig($"OUT_{id}", [$"out.{id}.>"]) { DuplicateWindow = TimeSpan.FromMinutes(10) });
        for (var i = 1; i <= 30; i++)
        {
            var payload = i == 7 ? "{broken" : $"{{\"n\":{i},\"kind\":\"{(i % 3 == 0 ? "fizz" : "plain")}\"}}";
            (await js.PublishAsync($"in.{id}.orders", Encoding.UTF8.GetBytes(payload))).EnsureSuccess();
        }
        using var dir = new TempDirectory("slice-js");
        File.WriteAllText(dir.File("spec.yaml"), $$"""
            slice: v1
            run: { id: js-{{id}}, job: { namespace: test, name: jetstream } }
            source: { type: jetstream, subject: "in.{{id}}.orders", start_seq: 5 }
            transforms:
              - { type: filter, where: "kind == 'fizz'" }
              - { type: map, set: { doubled: "n * 2" } }
            sink: { type: jetstream, subject: "out.{{id}}.fizz" }
            dead_letter: { type: jsonl, path: "{{dir.File("dead.jsonl")}}" }
            batch: { max_records: 4, max_wait_ms: 50 }
            checkpoint: { path: "{{dir.File("state.ckpt")}}", every_batches: 1 }
            """);

        var (exit, stdout, stderr) = await SliceTestKit.RunProcessAsync(["run", dir.File("spec.yaml")], new Dictionary<string, string> { ["RUNNER_NATS_URL"] = _nats.Url });

        Assert.True(exit == 0, stderr + stdout);
        var published = await ReadAllAsync(js, $"OUT_{id}", $"out.{id}.fizz");
        var expected = Enumerable.Range(5, 26).Where(n => n != 7 && n % 3 == 0).ToList();
        Assert.Equal(expected.Select(n => $"{{\"n\":{n},\"kind\":\"fizz\",\"doubled\":{n * 2}}}"), published.Select(m => m.Data));
        Assert.Equal(expected.Select(n => $"js-{id}:{n}"), published.Select(m => m.MsgId));
        var dead = JsonDocument.Parse(Assert.Single(File.ReadAllLines(dir.File("dead.jsonl")))).RootElement;
        Assert.Equal("malformed_json", dead.GetProperty("code").GetString());
        Assert.Equal(7, dead.GetProperty("offset").GetInt64());
        using var result = JsonDocument.Parse(stdout);
        Assert.Equal(26, result.RootElement.GetProperty("records").GetProperty("in").GetInt64());

        // The consumer of the run acknowledged everything it committed and was removed at the end.
        var names = new List<string>();
        await foreach (var name in js.ListConsumerNamesAsync($"IN_{id}"))
        {
            names.Add(name);
        }
        Assert.Empty(names);
    }

    [Fact]
    public async Task Publishing_a_run_again_is_deduplicated_by_message_id()
    {
        await using var connection = new NatsConnection(new NatsOpts { Url = _nats.Url });
        var js = new NatsJSContext(connection);
        var id = Guid.NewGuid().ToString("N")[..8];
        await js.CreateOrUpdateStreamAsync(new StreamConfig($"DUP_{id}", [$"dup.{id}.>"]) { DuplicateWindow = TimeSpan.FromMinutes(10) });
        using var dir = new TempDirectory("slice-js");
        File.WriteAllText(dir.File("in.jsonl"), string.Join('\n', Enumerable.Range(1, 50).Select(i => $"{{\"i\":{i}}}")) + "\n");
        var spec = $$"""
            slice: v1
            run: { id: dup-{{id}}, job: { namespace: test, name: dup } }
            source: { type: jsonl, path: "{{dir.File("in.jsonl")}}" }
            sink: { type: jetstream, subject: "dup.{{id}}.out" }
            """;
        File.WriteAllText(dir.File("spec.yaml"), spec);
        var env = new Dictionary<string, string> { ["RUNNER_NATS_URL"] = _nats.Url };

        var first = await SliceTestKit.RunProcessAsync(["run", dir.File("spec.yaml")], env);
        var second = await SliceTestKit.RunProcessAsync(["run", dir.File("spec.yaml")], env);

        Assert.True(first.ExitCode == 0, first.Stderr);
        Assert.True(second.ExitCode == 0, second.Stderr);
        var published = await ReadAllAsync(js, $"DUP_{id}", $"dup.{id}.out");
        Assert.Equal(50, published.Count);
        Assert.Equal(Enumerable.Range(1, 50).Select(i => $"{{\"i\":{i}}}"), published.Select(m => m.Data));
    }

    [Fact]
    public async Task A_jetstream_endpoint_without_nats_fails_with_a_clear_reason()
    {
        using var dir = new TempDirectory("slice-js");
        File.WriteAllText(dir.File("spec.yaml"), """
            slice: v1
            run: { id: nonats, job: { namespace: test, name: nonats } }
            source: { type: jetstream, subject: "in.nowhere" }
            sink: { type: jsonl, path: /tmp/never-written.jsonl }
            """);

        var (exit, stdout, _) = await SliceTestKit.RunProcessAsync(["run", dir.File("spec.yaml")]);

        Assert.Equal(1, exit);
        using var result = JsonDocument.Parse(stdout);
        Assert.Contains("RUNNER_NATS_URL", result.RootElement.GetProperty("error").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_subject_read_ends_when_the_streams_last_message_is_on_another_subject()
    {
        await using var connection = new NatsConnection(new NatsOpts { Url = _nats.Url });
        var js = new NatsJSContext(connection);
        var id = Guid.NewGuid().ToString("N")[..8];
        await js.CreateOrUpdateStreamAsync(new StreamConfig($"MIX_{id}", [$"mix.{id}.>"]));
        for (var i = 1; i <= 5; i++)
        {
            (await js.PublishAsync($"mix.{id}.ours", Encoding.UTF8.GetBytes($"{{\"n\":{i}}}"))).EnsureSuccess();
        }
        (await js.PublishAsync($"mix.{id}.theirs", Encoding.UTF8.GetBytes("{\"n\":99}"))).EnsureSuccess();
        using var dir = new TempDirectory("slice-js");
        File.WriteAllText(dir.File("spec.yaml"), $$"""
            slice: v1
            run: { id: mix-{{id}}, job: { namespace: test, name: mixed } }
            source: { type: jetstream, subject: "mix.{{id}}.ours", start_seq: 3 }
            sink: { type: jsonl, path: "{{dir.File("out.jsonl")}}" }
            batch: { max_records: 2, max_wait_ms: 50 }
            """);

        var (exit, stdout, stderr) = await SliceTestKit.RunProcessAsync(["run", dir.File("spec.yaml")], new Dictionary<string, string> { ["RUNNER_NATS_URL"] = _nats.Url });

        Assert.True(exit == 0, stderr + stdout);
        Assert.Equal(["{\"n\":3}", "{\"n\":4}", "{\"n\":5}"], File.ReadAllLines(dir.File("out.jsonl")));

        // From a start past every message of ours, nothing comes at all: the run still ends.
        File.WriteAllText(dir.File("spec.yaml"), File.ReadAllText(dir.File("spec.yaml"))
            .Replace("start_seq: 3", "start_seq: 6", StringComparison.Ordinal).Replace($"mix-{id}", $"mix-late-{id}", StringComparison.Ordinal));
        var late = await SliceTestKit.RunProcessAsync(["run", dir.File("spec.yaml")], new Dictionary<string, string> { ["RUNNER_NATS_URL"] = _nats.Url });
        Assert.True(late.ExitCode == 0, late.Stderr + late.Stdout);
        Assert.Empty(File.ReadAllLines(dir.File("out.jsonl")));
    }
}
