using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Runner.Core.Manifests;
using Runner.Core.Transitions;
using Runner.Effects.Providers;
using Runner.Effects.Resilience;
using Runner.Testing;
using Xunit;

namespace Runner.Effects.Tests;

/// <summary>
/// Per test: a real <see cref="StubUpstream"/> on 127.0.0.1, a secrets directory, a real
/// <see cref="IHttpClientFactory"/> and an executor wired as the worker wires it.
/// </summary>
public abstract class EffectsHarness : IAsyncLifetime
{
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(60));
    private ServiceProvider? _services;
    private StubUpstream? _stub;
    private EffectExecutor? _executor;

    internal StubUpstream Stub => _stub ?? throw new InvalidOperationException("not started");

    internal EffectExecutor Executor => _executor ?? throw new InvalidOperationException("not started");

    internal TempDirectory Secrets { get; } = new("runner-test-secrets");

    internal IHttpClientFactory HttpClients => _services!.GetRequiredService<IHttpClientFactory>();

    /// <summary>Every await in a test is bounded by this, so a hang fails instead of stalling the run.</summary>
    protected CancellationToken TestToken => _timeout.Token;

    /// <summary>The stub's URL with <paramref name="path"/> appended.</summary>
    internal string UrlOf(string path) => Stub.Url + path.TrimStart('/');

    internal ValueTask<EffectExecution> ExecuteAsync(EffectManifest effect, CommandMessage command) =>
        Executor.ExecuteAsync(effect, command, TestToken);

    public async Task InitializeAsync()
    {
        _services = EffectExecutor.AddHttpClient(new ServiceCollection()).BuildServiceProvider();
        _stub = await StubUpstream.StartAsync(TestToken);
        _executor = EffectExecutor.Create(HttpClients, Secrets.Path, NullLoggerFactory.Instance, TimeProvider.System);
    }

    public async Task DisposeAsync()
    {
        if (_stub is not null)
        {
            await _stub.DisposeAsync();
        }
        if (_services is not null)
        {
            await _services.DisposeAsync();
        }
        Secrets.Dispose();
        _timeout.Dispose();
    }
}
