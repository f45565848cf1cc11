using System.Text;
using System.Text.Json;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using Runner.Core.Manifests;
using Runner.Effects.Providers;
using Runner.Testing;
using Xunit;

namespace Runner.Effects.Tests.Providers;

/// <summary>The publish provider against a real nats-server with JetStream.</summary>
public sealed class PublishProviderTests(NatsServerFixture nats) : IClassFixture<NatsServerFixture>
{
    private static EffectManifest Notify(string subject, string? type = "pipeline.run.{payload.outcome}") =>
        new("pipeline.notify", EffectManifest.PublishProvider, null, "effects.yaml", 1) { Publish = new PublishEffectConfig(subject, type) };

    [Fact]
    public async Task A_command_is_published_as_a_cloud_event_with_its_id_headers_and_filled_subject()
    {
        await using var connection = new NatsConnection(new NatsOpts { Url = nats.Url });
        var js = new NatsJSContext(connection);
        var id = Guid.NewGuid().ToString("N")[..8];
        await js.CreateOrUpdateStreamAsync(new StreamConfig($"P_{id}", [$"p{id}.>"]));
        var provider = new PublishProvider(js, TimeProvider.System);
        var command = Effects.Command("""{"pipeline":"orders-daily","outcome":"completed","totals":{"records_in":10}}""", effect: "pipeline.notify");
        var call = new EffectCall(Notify($"p{id}.{{tenant}}.{{payload.pipeline}}.run.{{payload.outcome}}"), command, 1);

        var first = await provider.AttemptAsync(call, CancellationToken.None);
        var second = await provider.AttemptAsync(call, CancellationToken.None);

        Assert.True(first.Succeeded, first.Error?.Message);
        using var result = JsonDocument.Parse(first.ResultJson!);
        Assert.Equal($"p{id}.acme.orders-daily.run.completed", result.RootElement.GetProperty("subject").GetString());
        Assert.False(result.RootElement.GetProperty("duplicate").GetBoolean());
        using var again = JsonDocument.Parse(second.ResultJson!);
        Assert.True(again.RootElement.GetProperty("duplicate").GetBoolean());

        var stored = await js.GetStreamAsync($"P_{id}");
        Assert.Equal(1L, stored.Info.State.Messages);
        var consumer = await js.CreateOrderedConsumerAsync($"P_{id}");
        var msg = await consumer.NextAsync<byte[]>() ?? throw new InvalidOperationException("no message");
        using var evt = JsonDocument.Parse(Encoding.UTF8.GetString(msg.Data!));
        Assert.Equal(command.CommandId, evt.RootElement.GetProperty("id").GetString());
        Assert.Equal("pipeline.run.completed", evt.RootElement.GetProperty("type").GetString());
        Assert.Equal("acme", evt.RootElement.GetProperty("tenant").GetString());
        Assert.Equal(10, evt.RootElement.GetProperty("data").GetProperty("totals").GetProperty("records_in").GetInt32());
        Assert.Equal("acme", msg.Headers!["tenant-id"].ToString());
        Assert.Equal(command.CommandId, msg.Headers["Nats-Msg-Id"].ToString());
        Assert.Equal(command.TraceParent, msg.Headers["traceparent"].ToString());
    }

    [Theory]
    [InlineData("""{"pipeline":"a.b","outcome":"completed"}""")]
    [InlineData("""{"pipeline":"*","outcome":"completed"}""")]
    [InlineData("""{"pipeline":"x y","outcome":"completed"}""")]
    [InlineData("""{"outcome":"completed"}""")]
    [InlineData("""{"pipeline":"a\fb","outcome":"completed"}""")]
    [InlineData("""{"pipeline":"a\u0001b","outcome":"completed"}""")]
    [InlineData("""{"pipeline":"a\u00a0b","outcome":"completed"}""")]
    public async Task A_payload_value_that_is_not_one_subject_token_fails_without_publishing(string payload)
    {
        await using var connection = new NatsConnection(new NatsOpts { Url = nats.Url });
        var js = new NatsJSContext(connection);
        var id = Guid.NewGuid().ToString("N")[..8];
        await js.CreateOrUpdateStreamAsync(new StreamConfig($"Q_{id}", [$"q{id}.>"]));
        var provider = new PublishProvider(js, TimeProvider.System);

        var outcome = await provider.AttemptAsync(new EffectCall(Notify($"q{id}.{{payload.pipeline}}.run.{{payload.outcome}}"), Effects.Command(payload), 1), CancellationToken.None);

        Assert.False(outcome.Succeeded);
        Assert.Equal(EffectErrorCodes.InvalidCommand, outcome.Error!.Code);
        Assert.Null(outcome.RetryClass);
        Assert.Equal(0L, (await js.GetStreamAsync($"Q_{id}")).Info.State.Messages);
    }

    [Fact]
    public async Task No_stream_for_the_subject_is_a_retryable_failure()
    {
        await using var connection = new NatsConnection(new NatsOpts { Url = nats.Url });
        var provider = new PublishProvider(new NatsJSContext(connection), TimeProvider.System);

        var outcome = await provider.AttemptAsync(new EffectCall(Notify("nowhere.{payload.pipeline}", null), Effects.Command("""{"pipeline":"p"}"""), 1), CancellationToken.None);

        Assert.False(outcome.Succeeded);
        Assert.Equal(RetryOn.Connection, outcome.RetryClass);
    }
}
