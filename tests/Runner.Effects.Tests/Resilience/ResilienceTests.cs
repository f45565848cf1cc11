using Polly.CircuitBreaker;
using Runner.Core.Manifests;
using Runner.Effects.Providers;
using Runner.Testing;
using Xunit;

namespace Runner.Effects.Tests.Resilience;

public sealed class ResilienceTests : EffectsHarness
{
    [Theory]
    [InlineData(429)]
    [InlineData(500)]
    [InlineData(503)]
    public async Task Throttling_and_server_errors_are_retried_until_success(int status)
    {
        Stub.Respond("/charges", (_, call) => call <= 2 ? new StubResponse(status, """{"error":"busy"}""") : new StubResponse(200, """{"charge":"ch_1"}"""));
        var command = Effects.Command();

        var result = await ExecuteAsync(Effects.Http(UrlOf("charges")) with { Retry = Effects.Retry(4) }, command);

        Assert.True(result.Succeeded, result.Error?.Message);
        Assert.Equal("""{"charge":"ch_1"}""", result.ResultJson);
        Assert.Equal(3, result.Attempts);
        Assert.Equal(3, Stub.CallsFor(command.CommandId));
    }

    [Fact]
    public async Task Server_errors_fail_with_the_last_status_when_attempts_run_out()
    {
        Stub.Respond("/charges", (_, _) => new StubResponse(503, null));
        var command = Effects.Command();

        var result = await ExecuteAsync(Effects.Http(UrlOf("charges")) with { Retry = Effects.Retry(3) }, command);

        Assert.False(result.Succeeded);
        Assert.Equal("http_503", result.Error!.Code);
        Assert.Equal(503, result.Error.Status);
        Assert.Equal(3, result.Attempts);
        Assert.Equal(3, Stub.CallsFor(command.CommandId));
    }

    [Fact]
    public async Task Only_the_failures_listed_in_retry_on_are_retried()
    {
        Stub.Respond("/charges", (_, _) => new StubResponse(429, null));
        var command = Effects.Command();

        var result = await ExecuteAsync(Effects.Http(UrlOf("charges")) with { Retry = Effects.Retry(3, RetryOn.ServerError) }, command);

        Assert.Equal("http_429", result.Error!.Code);
        Assert.Equal(1, result.Attempts);
        Assert.Equal(1, Stub.CallsFor(command.CommandId));
    }

    [Fact]
    public async Task An_attempt_past_its_timeout_is_retried_then_fails_as_timeout()
    {
        Stub.Respond("/slow", (_, _) => new StubResponse(200, null, TimeSpan.FromMinutes(5)));
        var command = Effects.Command();
        var effect = Effects.Http(UrlOf("slow")) with { Retry = Effects.Retry(2), TimeoutMs = 200 };

        var result = await ExecuteAsync(effect, command);

        Assert.False(result.Succeeded);
        Assert.Equal(EffectErrorCodes.Timeout, result.Error!.Code);
        Assert.Equal(2, result.Attempts);
        Assert.InRange(Stub.CallsFor(command.CommandId), 1, 2);
    }

    [Fact]
    public async Task A_timeout_is_not_retried_unless_retry_on_lists_it()
    {
        Stub.Respond("/slow", (_, _) => new StubResponse(200, null, TimeSpan.FromMinutes(5)));
        var effect = Effects.Http(UrlOf("slow")) with { Retry = Effects.Retry(3, RetryOn.ServerError), TimeoutMs = 200 };

        var result = await ExecuteAsync(effect, Effects.Command());

        Assert.Equal(EffectErrorCodes.Timeout, result.Error!.Code);
        Assert.Equal(1, result.Attempts);
    }

    [Fact]
    public async Task A_refused_connection_is_retried_then_fails_as_connection_failed()
    {
        var effect = Effects.Http(Effects.DeadUrl() + "charges") with { Retry = Effects.Retry(2) };

        var result = await ExecuteAsync(effect, Effects.Command());

        Assert.False(result.Succeeded);
        Assert.Equal(EffectErrorCodes.ConnectionFailed, result.Error!.Code);
        Assert.Null(result.Error.Status);
        Assert.Equal(2, result.Attempts);
    }

    [Fact]
    public async Task A_dead_upstream_opens_the_breaker_of_its_effect_and_upstream()
    {
        var effect = Effects.Http(Effects.DeadUrl() + "charges") with { Retry = Effects.Retry(1), CircuitBreaker = Effects.TwoStrikeBreaker };

        var first = await ExecuteAsync(effect, Effects.Command());
        var second = await ExecuteAsync(effect, Effects.Command());

        Assert.Equal(EffectErrorCodes.ConnectionFailed, first.Error!.Code);
        Assert.Equal(EffectErrorCodes.ConnectionFailed, second.Error!.Code);
        var state = Assert.Single(Executor.Pipelines.BreakerStates());
        Assert.Equal(("payment.charge", CircuitState.Open, 1L, 0), (state.Effect, state.State, state.Opened, state.Held));
        Assert.StartsWith("http://127.0.0.1:", state.Upstream, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Client_errors_do_not_open_the_breaker()
    {
        Stub.Respond("/charges", (_, _) => new StubResponse(400, null));
        var effect = Effects.Http(UrlOf("charges")) with { CircuitBreaker = Effects.TwoStrikeBreaker };

        for (var i = 0; i < 4; i++)
        {
            Assert.Equal("http_400", (await ExecuteAsync(effect, Effects.Command())).Error!.Code);
        }

        Assert.Equal(4, Stub.Requests.Count);
        Assert.Equal(CircuitState.Closed, Assert.Single(Executor.Pipelines.BreakerStates()).State);
    }

    [Fact]
    public async Task Caller_cancellation_propagates_during_a_call()
    {
        var arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Stub.Respond("/charges", (_, _) =>
        {
            arrived.TrySetResult();
            return StubResponse.Hold(release.Task);
        });
        using var caller = CancellationTokenSource.CreateLinkedTokenSource(TestToken);
        try
        {
            var execution = Executor.ExecuteAsync(Effects.Http(UrlOf("charges")), Effects.Command(), caller.Token).AsTask();
            await arrived.Task.WaitAsync(TestToken);
            await caller.CancelAsync();

            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => execution);
        }
        finally
        {
            release.TrySetResult();
        }
    }

}
