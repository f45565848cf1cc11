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
}
