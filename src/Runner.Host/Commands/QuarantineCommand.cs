using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Runner.Core;
using Runner.Sagas.Quarantine;
using Runner.Storage;

namespace Runner.Host.Commands;

internal static class QuarantineCommand
{
    public static int List(string[] args)
    {
        var limit = 1000;
        if (args is ["--limit", var n] && (!int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit < 1))
        {
            Console.Error.WriteLine("--limit must be a positive integer");
            return 2;
        }
        var settings = SettingsFromEnvironment.Load();
        if (settings is null)
        {
            return 2;
        }
        var options = settings.StoreOptions();
        if (!File.Exists(Path.Combine(options.Path, "data.mdb")))
        {
            Console.Error.WriteLine($"no store at {options.Path}");
            return 1;
        }
        using var store = new LmdbStore(options, NullLogger<LmdbStore>.Instance);
        var records = QuarantineRecords.List(store, limit);
        foreach (var record in records)
        {
            Console.WriteLine(JsonSerializer.Serialize(record, CoreJsonContext.Default.QuarantineRecord));
        }
        Console.Error.WriteLine($"{records.Count} quarantined message(s)");
        return 0;
    }

    private const string RemoteUsage = """
        usage: runner quarantine show [FILTER] [--json]
               runner quarantine requeue|discard (--id ID [--id ID…] | FILTER | --all true) [--dry-run]
        FILTER: --reason R --stage S --saga S --tenant T --key K --older-than DUR --newer-than DUR --limit N --include-requeued true
        """;

    /// <summary>
    /// <c>quarantine show|requeue|discard</c>: every runner process answers for the records in its
    /// own store, over NATS, so this works from anywhere that reaches NATS.
    /// </summary>
    public static async Task<int> RemoteAsync(string verb, string[] args, CancellationToken cancellationToken)
    {
        var json = args.Contains("--json", StringComparer.Ordinal);
        var dryRun = args.Contains("--dry-run", StringComparer.Ordinal);
        var rest = args.Where(a => a is not ("--json" or "--dry-run")).ToArray();
        var pairs = new List<KeyValuePair<string, string>>();
        for (var i = 0; i < rest.Length; i += 2)
        {
            if (!rest[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= rest.Length)
            {
                Console.Error.WriteLine(RemoteUsage);
                return 2;
            }
            pairs.Add(KeyValuePair.Create(rest[i][2..].Replace('-', '_'), rest[i + 1]));
        }
        var (filter, all, error) = Instances.QuarantineRequests.Filter(pairs, DateTimeOffset.UtcNow);
        if (filter is null)
        {
            Console.Error.WriteLine($"runner: {error}");
            return 2;
        }
        if (verb != "show" && filter.SelectsEverything && !all)
        {
            Console.Error.WriteLine($"runner: {verb} needs --id or a filter; --all true to {verb} every record");
            return 2;
        }
        var settings = SettingsFromEnvironment.Load();
        if (settings is null)
        {
            return 2;
        }
        var prefix = settings.SagaOptions().ConsumerPrefix;
        await using var nats = new NATS.Client.Core.NatsConnection(new NATS.Client.Core.NatsOpts { Url = settings.NatsUrl, Name = "runner-quarantine" });
        try
        {
            await nats.ConnectAsync();
            if (verb == "show")
            {
                var (entries, truncated) = await QuarantineClient.ListAsync(nats, prefix, filter, cancellationToken);
                foreach (var entry in entries)
                {
                    if (json)
                    {
                        Console.WriteLine(JsonSerializer.Serialize(entry, QuarantineJsonContext.Default.QuarantineEntry));
                        continue;
                    }
                    var r = entry.Record;
                    Console.WriteLine($"{entry.Id} {r.Time} {r.Stage,-9} {r.Reason,-24} {r.Stream}#{r.Sequence} {r.Subject} {r.Tenant}/{r.Saga}/{r.Key}{(r.Parked ? " (parked)" : "")}{(r.Requeued is { Count: > 0 } q ? $" (requeued {q.Count}x)" : "")} on {entry.Worker}");
                    Console.WriteLine($"    {r.Detail}");
                }
                Console.Error.WriteLine($"{entries.Count} quarantine record(s){(truncated ? " (more match: raise --limit)" : "")}");
                return 0;
            }
            var results = await QuarantineClient.ActAsync(nats, prefix, verb, filter, dryRun, cancellationToken);
            foreach (var result in results)
            {
                Console.WriteLine(json
                    ? JsonSerializer.Serialize(result, QuarantineJsonContext.Default.QuarantineActResult)
                    : $"{result.Id} {result.Outcome}{(result.RequeuedAs is { } copy ? $" as {copy.Stream}#{copy.Sequence} ({copy.MsgId})" : "")}{(result.Detail is null ? "" : ": " + result.Detail)} [{result.Reason} {result.Subject} on {result.Worker}]");
            }
            var refused = results.Count(r => r.Outcome == "refused");
            Console.Error.WriteLine($"{results.Count} record(s){(dryRun ? " (dry run: nothing changed)" : "")}{(refused > 0 ? $", {refused} refused" : "")}");
            return refused > 0 ? 1 : 0;
        }
        catch (Exception ex) when (ex is NATS.Client.Core.NatsException or TimeoutException)
        {
            Console.Error.WriteLine($"runner: could not ask the runner processes at {settings.NatsUrl}: {ex.Message}");
            return 1;
        }
    }
}
