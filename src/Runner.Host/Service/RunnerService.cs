using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Runner.Host.Settings;

namespace Runner.Host.Service;

/// <summary>
/// Hosts the components for <c>runner serve</c>. Start-up (connect, validate, open the store,
/// create streams) happens in <see cref="StartAsync"/> so a bad configuration fails the process
/// before it reports itself started; SIGTERM stops the loops and closes the store cleanly.
/// </summary>
internal sealed class RunnerService(RunnerSettings settings, ILoggerFactory loggers, TimeProvider time) : IHostedService, IAsyncDisposable
{
    private RunnerComponents? _components;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _components = await RunnerComponents.StartAsync(settings, loggers, time, listener: null, cancellationToken);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_components is not null)
        {
            await _components.DisposeAsync();
            _components = null;
            HostLog.Stopped(loggers.CreateLogger<RunnerService>());
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_components is not null)
        {
            await _components.DisposeAsync();
        }
    }
}
