using System.Globalization;
using System.Text.Json;
using NATS.Client.Core;
using Runner.Host.Instances;
using Runner.Host.Settings;
using Runner.Sagas.Manifests;

namespace Runner.Host.Commands;

/// <summary>
/// <c>runner saga check DIR</c>: replays the kept history of live instances through the scripts in
/// DIR and reports where they would have done something else than the running versions did. Exit 0
/// when nothing diverges (or the manifest declares the change with <c>migrate: true</c>), 1 when
/// something does, 2 on a usage error or manifests that do not load.
/// </summary>
internal static class SagaCheckCommand
{
    public const string Usage = "usage: runner saga check DIR [--saga S]… [--sample N] [--timeout DUR] [--json]";

    public static async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        string? dir = null;
        var sagas = new List<string>();
        var sample = 100;
        var budget = TimeSpan.FromSeconds(30);
        var json = false;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--saga" when i + 1 < args.Length:
                    sagas.Add(args[++i]);
                    break;
                case "--sample" when i + 1 < args.Length && int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is > 0 and <= 10_000:
                    sample = n;
                    i++;
                    break;
                case "--timeout" when i + 1 < args.Length && SettingsLoader.Duration(args[i + 1], out var t) && t > TimeSpan.Zero:
                    budget = t;
                    i++;
                    break;
                case "--json":
                    json = true;
                    break;
                default:
                    if (dir is not null || args[i].StartsWith("--", StringComparison.Ordinal))
                    {
                        Console.Error.WriteLine(Usage);
                        return 2;
                    }
                    dir = args[i];
                    break;
            }
        }
        if (dir is null)
        {
            Console.Error.WriteLine(Usage);
            return 2;
        }
        var settings = SettingsFromEnvironment.Load();
        if (settings is null)
        {
            return 2;
        }
        var loaded = ManifestLoader.Load(dir, settings.JetStream.Streams);
        if (!loaded.Succeeded)
        {
            foreach (var error in loaded.Errors)
            {
                Console.Error.WriteLine(error);
            }
            return 2;
        }
        var candidate = loaded.Set!;
        var unknown = sagas.Where(s => candidate.Saga(s) is null).ToList();
        if (unknown.Count > 0)
        {
            Console.Error.WriteLine($"runner: {string.Join(", ", unknown)} not in {dir}");
            return 2;
        }
        await using var nats = new NatsConnection(new NatsOpts { Url = settings.NatsUrl, Name = "runner-saga-check" });
        try
        {
            await nats.ConnectAsync();
            var report = await SagaCheck.RunAsync(nats, settings.SagaOptions(), candidate, sagas.Count > 0 ? sagas : candidate.Sagas.Select(s => s.Name), sample, budget, cancellationToken);
            if (json)
            {
                Console.WriteLine(JsonSerializer.Serialize(report, SagaCheckJsonContext.Default.SagaCheckReport));
            }
            else
            {
                Print(report);
            }
            return report.Refusing.Any() ? 1 : 0;
        }
        catch (Exception ex) when (ex is NatsException or TimeoutException)
        {
            Console.Error.WriteLine($"runner: could not ask the replicas at {settings.NatsUrl}: {ex.Message}");
            return 1;
        }
    }

    public static void Print(SagaCheckReport report)
    {
        foreach (var saga in report.Sagas)
        {
            var verdict = saga.Diverged.Count == 0 ? "ok  " : saga.Migrate ? "MIGRATE" : "DIVERGES";
            Console.WriteLine($"{verdict} {saga.Saga}{(saga.Version is null ? "" : $" (version {saga.Version})")}: {saga.Checked} of {saga.Live} live instance(s) replayed, {saga.Steps} step(s), {saga.Diverged.Count} diverged");
            foreach (var instance in saga.Diverged)
            {
                Console.WriteLine($"  {instance.Tenant}/{saga.Saga}/{instance.Key}:");
                foreach (var difference in instance.Differences)
                {
                    Console.WriteLine($"    {difference}");
                }
            }
        }
        if (!report.Complete)
        {
            Console.Error.WriteLine("runner: the check is partial (time bound reached, or a partition did not answer)");
        }
    }
}

[System.Text.Json.Serialization.JsonSourceGenerationOptions(WriteIndented = false)]
[System.Text.Json.Serialization.JsonSerializable(typeof(SagaCheckReport))]
internal sealed partial class SagaCheckJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
