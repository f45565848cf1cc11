using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Runner.Host.Operations;
using Runner.Host.Settings;

namespace Runner.Host.Service;

/// <summary>
/// Hosts the components for <c>runner serve</c>. Start-up (connect, validate, open the store,
/// create streams) happens in <see cref="StartAsync"/> so a bad configuration fails the process
/// before it reports itself started. On SIGTERM, <see cref="StoppingAsync"/> — which the host runs
/// before it stops anything, the HTTP server included — turns readiness off and drains for up to
/// <c>RUNNER_SHUTDOWN_TIMEOUT</c>; <see cref="StopAsync"/> then stops the loops and closes the
/// store. What was not finished by the deadline is simply not acked and is redelivered.
/// </summary>
internal sealed class RunnerService(RunnerSettings settings, RunnerControl control, ILoggerFactory loggers, TimeProvider time) : IHostedLifecycleService, IAsyncDisposable
{
    private readonly ILogger _logger = loggers.CreateLogger<RunnerService>();
    private bool _drained;

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var components = await RunnerComponents.StartAsync(settings, loggers, time, listener: null, cancellationToken);
        control.Started(components);
    }

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        if (control.Components is null)
        {
            return;
        }
        control.BeginStopping();
        OperationsLog.ShuttingDown(_logger, settings.ShutdownTimeout.TotalMilliseconds);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(settings.ShutdownTimeout);
        _drained = await control.DrainAsync("shutdown", deadline.Token);
        if (!_drained)
        {
            OperationsLog.DrainDeadline(_logger, settings.ShutdownTimeout.TotalMilliseconds);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (control.TakeForStop() is { } components)
        {
            // Past the drain deadline, effects still running are cancelled at once (left unacked).
            components.EffectGrace = _drained ? null : TimeSpan.Zero;
            await components.DisposeAsync();
            HostLog.Stopped(_logger);
        }
    }

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        if (control.TakeForStop() is { } components)
        {
            await components.DisposeAsync();
        }
    }
}
