using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Runner.Host.Service;

namespace Runner.Host.Commands;

internal static class ServeCommand
{
    public static async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var settings = SettingsFromEnvironment.Load();
        if (settings is null)
        {
            return 2;
        }
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(args);
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss.fff ";
        });
        builder.Services.AddSingleton(settings);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddHostedService<RunnerService>();
        using var host = builder.Build();
        try
        {
            await host.RunAsync(cancellationToken);
            return 0;
        }
        catch (OperationCanceledException)
        {
            return 0;
        }
#pragma warning disable CA1031 // Start-up failures of any kind end the process with a message, not a stack dump.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Console.Error.WriteLine($"runner: failed to start: {ex.Message}");
            return 1;
        }
    }
}
