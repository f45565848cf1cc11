using Microsoft.Extensions.Logging.Abstractions;
using Runner.Core.Manifests;
using Runner.Effects.Providers;
using Runner.Effects.Resilience;
using Xunit;

namespace Runner.Effects.Tests.Resilience;

public sealed class ExecutorTests : IDisposable
{
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(60));

    public void Dispose() => _timeout.Dispose();

    private static EffectManifest Fake(int maxAttempts = 3) =>
        new("fake.effect", ScriptedProvider.FakeKind, null, "effects.yaml", 1) { Retry = Effects.Retry(maxAttempts), CircuitBreaker = Effects.LenientBreaker };

    private static EffectExecutor Executor(IEffectProvider provider) => new([provider], TimeProvider.System, NullLogger.Instance);

    [Fact]
    public async Task An_unknown_provider_kind_fails_as_unsupported_without_throwing()
    {
        var executor = Executor(new ScriptedProvider((_, _) => AttemptOutcome.Success("1")));
        var effect = new EffectManifest("slice.launch", EffectManifest.SliceProvider, null, "effects.yaml", 1);

        var result = await executor.ExecuteAsync(effect, Effects.Command(), _timeout.Token);

        Assert.False(result.Succeeded);
        Assert.Equal(EffectErrorCodes.UnsupportedProvider, result.Error!.Code);
        Assert.Contains("'slice'", result.Error.Message, StringComparison.Ordinal);
        Assert.Equal(0, result.Attempts);
    }

    [Fact]
    public async Task Attempts_are_numbered_from_one()
    {
        var provider = new ScriptedProvider((call, _) => call.Attempt < 3
            ? AttemptOutcome.Transient(RetryOn.ServerError, "http_503", "busy", 503)
            : AttemptOutcome.Success("""{"done":true}"""));

        var result = await Executor(provider).ExecuteAsync(Fake(), Effects.Command(), _timeout.Token);

        Assert.True(result.Succeeded);
        Assert.Equal("""{"done":true}""", result.ResultJson);
        Assert.Equal(3, result.Attempts);
        Assert.Equal([1, 2, 3], provider.Attempts);
    }

    [Fact]
    public async Task A_provider_that_throws_fails_as_provider_error_and_is_not_retried()
    {
        var provider = new ScriptedProvider((_, _) => throw new InvalidOperationException("bug in provider"));

        var result = await Executor(provider).ExecuteAsync(Fake(), Effects.Command(), _timeout.Token);

        Assert.False(result.Succeeded);
        Assert.Equal(EffectErrorCodes.ProviderError, result.Error!.Code);
        Assert.Equal("bug in provider", result.Error.Message);
        Assert.Equal(1, result.Attempts);
    }

    [Fact]
    public async Task Invalid_policies_fail_as_provider_error_without_throwing()
    {
        var provider = new ScriptedProvider((_, _) => AttemptOutcome.Success("1"));
        var effect = Fake() with { CircuitBreaker = new CircuitBreakerPolicy(0.5, 1, 10, 10) };

        var result = await Executor(provider).ExecuteAsync(effect, Effects.Command(), _timeout.Token);

        Assert.Equal(EffectErrorCodes.ProviderError, result.Error!.Code);
        Assert.Empty(provider.Attempts);
    }

    [Fact]
    public async Task One_attempt_means_no_retry()
    {
        var provider = new ScriptedProvider((_, _) => AttemptOutcome.Transient(RetryOn.Connection, EffectErrorCodes.ConnectionFailed, "refused"));

        var result = await Executor(provider).ExecuteAsync(Fake(maxAttempts: 1), Effects.Command(), _timeout.Token);

        Assert.Equal(EffectErrorCodes.ConnectionFailed, result.Error!.Code);
        Assert.Equal(1, result.Attempts);
    }

    [Fact]
    public async Task Caller_cancellation_during_a_back_off_propagates_instead_of_a_failure()
    {
        var failed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var provider = new ScriptedProvider((_, _) =>
        {
            failed.TrySetResult();
            return AttemptOutcome.Transient(RetryOn.ServerError, "http_503", "busy", 503);
        });
        var effect = Fake() with { Retry = new RetryPolicy(3, RetryPolicy.Constant, 600_000, 600_000, false, RetryOn.All) };
        using var caller = CancellationTokenSource.CreateLinkedTokenSource(_timeout.Token);

        var execution = Executor(provider).ExecuteAsync(effect, Effects.Command(), caller.Token).AsTask();
        await failed.Task.WaitAsync(_timeout.Token);
        await caller.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => execution);
        Assert.Equal([1], provider.Attempts);
    }

    [Fact]
    public void Pipelines_are_cached_per_effect_and_upstream_and_rebuilt_when_policies_change()
    {
        var pipelines = new EffectPipelines(TimeProvider.System, NullLogger.Instance);
        var effect = Fake();
        var first = pipelines.For(effect, "http://a:80");

        // A reloaded manifest: equal policies in new instances, including a new retry.on set.
        var reloaded = Fake() with { Retry = effect.Retry with { On = new HashSet<string>(RetryOn.All.Reverse(), StringComparer.Ordinal) } };
        Assert.Same(first, pipelines.For(effect, "http://a:80"));
        Assert.Same(first, pipelines.For(reloaded, "http://a:80"));
        Assert.NotSame(first, pipelines.For(effect, "http://b:80"));
        var changed = pipelines.For(reloaded with { TimeoutMs = 1234 }, "http://a:80");
        Assert.NotSame(first, changed);
        Assert.NotSame(changed, pipelines.For(reloaded with { TimeoutMs = 1234, Retry = Effects.Retry(3, RetryOn.ServerError) }, "http://a:80"));

        Assert.Equal(
            [("fake.effect", "http://a:80"), ("fake.effect", "http://b:80")],
            pipelines.BreakerStates().Select(s => (s.Effect, s.Upstream)).Order());
    }

    /// <summary>A provider whose every attempt is decided by the test.</summary>
    private sealed class ScriptedProvider(Func<EffectCall, CancellationToken, AttemptOutcome> attempt) : IEffectProvider
    {
        public const string FakeKind = "fake";
        private readonly List<int> _attempts = [];

        public string Kind => FakeKind;

        public IReadOnlyList<int> Attempts
        {
            get
            {
                lock (_attempts)
                {
                    return [.. _attempts];
                }
            }
        }

        public string Upstream(EffectCall call) => "fake://upstream";

        public ValueTask<AttemptOutcome> AttemptAsync(EffectCall call, CancellationToken cancellationToken)
        {
            lock (_attempts)
            {
                _attempts.Add(call.Attempt);
            }
            return ValueTask.FromResult(attempt(call, cancellationToken));
        }
    }
}
