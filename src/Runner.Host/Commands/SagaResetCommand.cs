using System.Globalization;
using System.Text.Json;
using NATS.Client.Core;
using Runner.Host.Instances;
using Runner.Sagas.Manifests;

namespace Runner.Host.Commands;

/// <summary>
/// <c>runner saga reset SAGA --since TIME</c>: every live instance of the saga that ran a step at or
/// after TIME goes back to its last step before it and replays the rest with the current script.
/// Without <c>--confirm</c> a dry run (each instance's differences, and one token for them all).
/// </summary>
internal static class SagaResetCommand
{
    public const string Usage = "usage: runner saga reset SAGA --since TIME [--limit N] [--confirm TOKEN] [--json]   (TIME: RFC 3339, e.g. 2026-12-04T05:00:00Z)";

    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(3);

    public static async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        string? saga = null, token = null;
        DateTimeOffset? since = null;
        var limit = 1000;
        var json = false;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--since" when i + 1 < args.Length && DateTimeOffset.TryParse(args[i + 1], CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t):
                    since = t;
                    i++;
                    break;
                case "--confirm" when i + 1 < args.Length:
                    token = args[++i];
                    break;
                case "--limit" when i + 1 < args.Length && int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is > 0 and <= 100_000:
                    limit = n;
                    i++;
                    break;
                case "--json":
                    json = true;
                    break;
                default:
                    if (saga is not null || args[i].StartsWith("--", StringComparison.Ordinal))
                    {
                        Console.Error.WriteLine(Usage);
                        return 2;
                    }
                    saga = args[i];
                    break;
            }
        }
        if (saga is null || since is null)
        {
            Console.Error.WriteLine(Usage);
            return 2;
        }
        var settings = SettingsFromEnvironment.Load();
        if (settings is null)
        {
            return 2;
        }
        var loaded = ManifestLoader.Load(settings.Manifests, settings.JetStream.Streams);
        if (!loaded.Succeeded)
        {
            Console.Error.WriteLine($"runner: the manifests at {settings.Manifests} (RUNNER_MANIFESTS, what the replicas run) do not load:\n  " + string.Join("\n  ", loaded.Errors));
            return 2;
        }
        await using var nats = new NatsConnection(new NatsOpts { Url = settings.NatsUrl, Name = "runner-saga-reset" });
        try
        {
            await nats.ConnectAsync();
            if (token is null)
            {
                var preview = await SagaReset.PreviewAsync(nats, settings.SagaOptions(), loaded.Set!, saga, since.Value, limit, s_wait, cancellationToken);
                if (json)
                {
                    Console.WriteLine(JsonSerializer.Serialize(preview, ResetJsonContext.Default.SagaResetPreview));
                    return 0;
                }
                Console.WriteLine($"reset {saga} to before {preview.Since}: {preview.Instances.Count} instance(s)");
                foreach (var instance in preview.Instances)
                {
                    var changed = instance.Steps.Count(s => s.Differences.Count > 0);
                    Console.WriteLine($"  {instance.Tenant}/{saga}/{instance.Key}: v{instance.From} -> v{instance.To}, {instance.Steps.Count} step(s) replayed, {changed} differ; state after {instance.StateAfter}");
                }
                foreach (var refused in preview.Refused)
                {
                    Console.WriteLine($"  cannot reset {refused}");
                }
                Console.WriteLine($"to apply: runner saga reset {saga} --since {preview.Since} --confirm {preview.Token}");
                return 0;
            }
            var (results, error) = await SagaReset.ApplyAsync(nats, settings.SagaOptions(), loaded.Set!, saga, since.Value, limit, token, s_wait, cancellationToken);
            if (results is null)
            {
                Console.Error.WriteLine($"runner: {error}");
                return 1;
            }
            foreach (var result in results)
            {
                var name = $"{result.Preview?.Tenant}/{saga}/{result.Preview?.Key}";
                Console.WriteLine(result.Applied ? $"  {name}: reset, now version {result.After?.Summary?.Version}" : $"  {name}: not reset: {result.Error}");
            }
            var failed = results.Count(r => !r.Applied);
            Console.WriteLine($"{results.Count - failed} of {results.Count} instance(s) reset");
            return failed == 0 ? 0 : 1;
        }
        catch (Exception ex) when (ex is NatsException or TimeoutException)
        {
            Console.Error.WriteLine($"runner: could not ask the replicas at {settings.NatsUrl}: {ex.Message}");
            return 1;
        }
    }
}
