using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Polly.CircuitBreaker;
using Runner.Core.Manifests;
using Runner.Core.Transitions;
using Runner.Effects.Providers;
using Runner.Effects.Resilience;
using Runner.Testing;
using Xunit;

namespace Runner.Effects.Tests.Resilience;

/// <summary>
/// An open circuit is backpressure: a command it refuses waits, calls nothing and spends no
/// attempt; it fails only by its own retry budget or <c>give_up_after_ms</c>. Time is a
/// <see cref="FakeTimeProvider"/> where a break must outlast the test's own steps.
/// </summary>
public sealed class HoldTests : EffectsHarness
{
    private readonly FakeTimeProvider _time = new();
    private readonly HashSet<string> _failing = new(StringComparer.Ordinal);

    private EffectExecutor FakeTimeExecutor() => EffectExecutor.Create(HttpClients, Secrets.Path, NullLoggerFactory.Instance, _time);

    /// <summary>503 for the commands marked failing, 200 for the rest.</summary>
    private void AnswerCharges() => Stub.Respond("/charges", (request, _) =>
    {
        lock (_failing)
        {
            return _failing.Contains(request.IdempotencyKey ?? string.Empty) ? new StubResponse(503, null) : StubResponse.Ok;
        }
    });

    private void MarkFailing(string key)
    {
        lock (_failing)
        {
            _failing.Add(key);
        }
    }

    /// <summary>
    /// Two commands of <paramref name="effect"/> (one attempt each, so that neither is held) that
    /// fail: its two-strike breaker is open after them.
    /// </summary>
    private async Task OpenTheCircuitAsync(EffectExecutor executor, EffectManifest effect)
    {
        Assert.Equal(1, effect.Retry.MaxAttempts);
        foreach (var command in new[] { Effects.Command(), Effects.Command() })
        {
            MarkFailing(command.CommandId);
            var failed = await executor.ExecuteAsync(effect, command, TestToken);
            Assert.Equal("http_503", failed.Error!.Code);
        }
        Assert.Equal(CircuitState.Open, Assert.Single(executor.Pipelines.BreakerStates()).State);
    }

    private async Task WaitHeldAsync(EffectExecutor executor, int held)
    {
        while (executor.Pipelines.BreakerStates().Sum(b => b.Held) != held)
        {
            await Task.Delay(10, TestToken);
        }
    }

    [Fact]
    public async Task An_open_circuit_holds_a_retry_instead_of_spending_it()
    {
        // 503 twice per key, then 200: the second 503 opens the breaker, the third attempt is held
        // until the break is over and goes through as the probe.
        Stub.Respond("/charges", (_, call) => call <= 2 ? new StubResponse(503, null) : StubResponse.Ok);
        var effect = Effects.Http(UrlOf("charges")) with { Retry = Effects.Retry(3), CircuitBreaker = Effects.TwoStrikeBreaker with { BreakMs = 500 } };
        var command = Effects.Command();

        var result = await ExecuteAsync(effect, command);

        Assert.True(result.Succeeded, result.Error?.Message);
        Assert.Equal(3, result.Attempts);
        Assert.Equal(3, Stub.CallsFor(command.CommandId));
        var breaker = Assert.Single(Executor.Pipelines.BreakerStates());
        Assert.Equal((CircuitState.Closed, 1L, 0), (breaker.State, breaker.Opened, breaker.Held));
    }

    [Fact]
    public async Task A_held_command_calls_nothing_until_the_break_is_over_and_then_goes_through_as_the_probe()
    {
        AnswerCharges();
        var executor = FakeTimeExecutor();
        var effect = Effects.Http(UrlOf("charges")) with { Retry = Effects.Retry(1), CircuitBreaker = Effects.TwoStrikeBreaker };
        await OpenTheCircuitAsync(executor, effect);
        var command = Effects.Command();

        // One attempt in all: were the refusal an attempt, this command would fail as circuit_open.
        var execution = executor.ExecuteAsync(effect, command, TestToken).AsTask();
        await WaitHeldAsync(executor, 1);
        Assert.Equal(0, Stub.CallsFor(command.CommandId));
        Assert.False(execution.IsCompleted);
        _time.Advance(TimeSpan.FromMilliseconds(Effects.TwoStrikeBreaker.BreakMs));
        var result = await execution.WaitAsync(TestToken);

        Assert.True(result.Succeeded, result.Error?.Message);
        Assert.Equal(1, result.Attempts);
        Assert.Equal(1, Stub.CallsFor(command.CommandId));
        var breaker = Assert.Single(executor.Pipelines.BreakerStates());
        Assert.Equal((CircuitState.Closed, 0), (breaker.State, breaker.Held));
    }

    [Fact]
    public async Task A_command_held_past_give_up_after_ms_fails_as_circuit_open_without_a_call()
    {
        AnswerCharges();
        var executor = FakeTimeExecutor();
        var effect = Effects.Http(UrlOf("charges")) with { Retry = Effects.Retry(1), CircuitBreaker = Effects.TwoStrikeBreaker, GiveUpAfterMs = 5_000 };
        await OpenTheCircuitAsync(executor, effect);
        var command = Effects.Command();

        var execution = executor.ExecuteAsync(effect, command, TestToken).AsTask();
        await WaitHeldAsync(executor, 1);
        _time.Advance(TimeSpan.FromMilliseconds(5_000));
        var result = await execution.WaitAsync(TestToken);

        Assert.False(result.Succeeded);
        Assert.Equal(EffectErrorCodes.CircuitOpen, result.Error!.Code);
        Assert.Contains("give_up_after_ms (5000 ms)", result.Error.Message, StringComparison.Ordinal);
        Assert.Equal(0, result.Attempts);
        Assert.Equal(0, Stub.CallsFor(command.CommandId));
        Assert.Equal(0, Assert.Single(executor.Pipelines.BreakerStates()).Held);
    }

    [Fact]
    public async Task Give_up_after_ms_ends_a_back_off_and_fails_with_the_last_error()
    {
        AnswerCharges();
        var executor = FakeTimeExecutor();
        var command = Effects.Command();
        MarkFailing(command.CommandId);
        // The clock moves while the first call may still be in flight: its timeout is beyond the move.
        var effect = Effects.Http(UrlOf("charges")) with
        {
            Retry = new RetryPolicy(3, RetryPolicy.Constant, 60_000, 60_000, false, RetryOn.All),
            TimeoutMs = 60_000,
            GiveUpAfterMs = 10_000,
        };

        var execution = executor.ExecuteAsync(effect, command, TestToken).AsTask();
        while (Stub.CallsFor(command.CommandId) == 0)
        {
            await Task.Delay(10, TestToken);
        }
        _time.Advance(TimeSpan.FromMilliseconds(10_000));
        var result = await execution.WaitAsync(TestToken);

        Assert.Equal("http_503", result.Error!.Code);
        Assert.Equal(503, result.Error.Status);
        Assert.Contains("not retried: give_up_after_ms (10000 ms) passed", result.Error.Message, StringComparison.Ordinal);
        Assert.Equal(1, result.Attempts);
    }

    [Fact]
    public async Task Give_up_after_ms_never_cuts_a_call_in_flight()
    {
        var arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Stub.Respond("/charges", (_, _) =>
        {
            arrived.TrySetResult();
            return StubResponse.Hold(release.Task);
        });
        var executor = FakeTimeExecutor();
        var effect = Effects.Http(UrlOf("charges")) with { TimeoutMs = 60_000, GiveUpAfterMs = 1_000 };

        var execution = executor.ExecuteAsync(effect, Effects.Command(), TestToken).AsTask();
        await arrived.Task.WaitAsync(TestToken);
        _time.Advance(TimeSpan.FromMilliseconds(2_000));
        release.TrySetResult();
        var result = await execution.WaitAsync(TestToken);

        Assert.True(result.Succeeded, result.Error?.Message);
        Assert.Equal(1, result.Attempts);
    }

    [Fact]
    public async Task A_command_stored_longer_ago_than_give_up_after_ms_fails_as_expired_without_a_call()
    {
        var effect = Effects.Http(UrlOf("charges")) with { GiveUpAfterMs = 1_000 };
        var bounds = new ExecutionBounds(TimeProvider.System.GetUtcNow().AddSeconds(-10), CancellationToken.None);

        var result = await Executor.ExecuteAsync(effect, Effects.Command(), bounds, TestToken);

        Assert.False(result.Succeeded);
        Assert.Equal(EffectErrorCodes.Expired, result.Error!.Code);
        Assert.Contains("give_up_after_ms (1000 ms)", result.Error.Message, StringComparison.Ordinal);
        Assert.Equal(0, result.Attempts);
        Assert.Empty(Stub.Requests);
    }

    [Fact]
    public async Task A_held_command_is_handed_back_when_the_worker_stops_taking_commands()
    {
        AnswerCharges();
        var executor = FakeTimeExecutor();
        var effect = Effects.Http(UrlOf("charges")) with { Retry = Effects.Retry(1), CircuitBreaker = Effects.TwoStrikeBreaker };
        await OpenTheCircuitAsync(executor, effect);
        var command = Effects.Command();
        using var intake = new CancellationTokenSource();

        var execution = executor.ExecuteAsync(effect, command, new ExecutionBounds(_time.GetUtcNow(), intake.Token), TestToken).AsTask();
        await WaitHeldAsync(executor, 1);
        await intake.CancelAsync();
        var result = await execution.WaitAsync(TestToken);

        Assert.True(result.HandedBack);
        Assert.False(result.Succeeded);
        Assert.Null(result.Error);
        Assert.Equal(0, result.Attempts);
        Assert.Equal(0, Stub.CallsFor(command.CommandId));
        Assert.Equal(0, Assert.Single(executor.Pipelines.BreakerStates()).Held);
    }

    [Fact]
    public async Task Caller_cancellation_while_held_propagates_instead_of_a_failure()
    {
        AnswerCharges();
        var executor = FakeTimeExecutor();
        var effect = Effects.Http(UrlOf("charges")) with { Retry = Effects.Retry(1), CircuitBreaker = Effects.TwoStrikeBreaker, GiveUpAfterMs = 60_000 };
        await OpenTheCircuitAsync(executor, effect);
        using var caller = CancellationTokenSource.CreateLinkedTokenSource(TestToken);

        var execution = executor.ExecuteAsync(effect, Effects.Command(), caller.Token).AsTask();
        await WaitHeldAsync(executor, 1);
        await caller.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => execution);
        Assert.Equal(0, Assert.Single(executor.Pipelines.BreakerStates()).Held);
    }
}
