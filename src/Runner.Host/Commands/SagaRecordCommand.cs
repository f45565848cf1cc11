using NATS.Client.Core;
using Runner.Host.Instances;
using Runner.Sagas.Instances;
using Runner.Sagas.Testing;

namespace Runner.Host.Commands;

/// <summary>
/// <c>runner saga record SAGA KEY [--tenant T] [--out FILE]</c>: asks the deployment (over NATS, like
/// <c>instances show</c>) for a live instance and writes its kept history as a JSONL golden file,
/// every step with what it did, so <c>saga test</c> checks a script against what really happened.
/// </summary>
internal static class SagaRecordCommand
{
    public const string Usage = "usage: runner saga record SAGA KEY [--tenant T] [--out FILE]";

    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(3);

    public static async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        if (args.Length < 2 || !TryFlags(args[2..], out var tenant, out var output))
        {
            Console.Error.WriteLine(Usage);
            return 2;
        }
        var (saga, key) = (args[0], args[1]);
        var settings = SettingsFromEnvironment.Load();
        if (settings is null)
        {
            return 2;
        }
        List<InstanceShowReply> found;
        await using (var nats = new NatsConnection(new NatsOpts { Url = settings.NatsUrl, Name = "runner-saga-record" }))
        {
            try
            {
                await nats.ConnectAsync();
                found = await InstanceLookup.ShowAsync(nats, settings.SagaOptions(), saga, key, tenant, s_wait, cancellationToken);
            }
            catch (InstanceQueryException ex)
            {
                Console.Error.WriteLine($"runner: {ex.Message}");
                return 2;
            }
            catch (Exception ex) when (ex is NatsException or TimeoutException)
            {
                Console.Error.WriteLine($"runner: could not ask the replicas at {settings.NatsUrl}: {ex.Message}");
                return 1;
            }
        }
        if (found.Count == 0)
        {
            Console.Error.WriteLine($"runner: no instance {saga}/{key}{(tenant is null ? "" : $" of tenant {tenant}")} (or no replica owning its partition answered)");
            return 1;
        }
        if (found.Count > 1)
        {
            Console.Error.WriteLine($"runner: tenants {string.Join(", ", found.Select(f => f.Summary!.Tenant))} each have an instance {saga}/{key}: pass --tenant");
            return 2;
        }
        var instance = found[0];
        var recordTenant = instance.Summary!.Tenant;
        if (instance.History.Count == 0)
        {
            Console.Error.WriteLine($"runner: {recordTenant}/{saga}/{key} has no kept history (RUNNER_HISTORY_LIMIT is 0?)");
            return 1;
        }

        var recording = GoldenFileWriter.Record(saga, recordTenant, key, instance.History);
        if (recording.From is { } from)
        {
            Console.Error.WriteLine($"runner: note: the kept history starts at version {from.Version} (older steps are gone): "
                + "its state is the file's initial_state, and the steps after it are recorded");
        }
        if (output is null)
        {
            Console.Out.Write(recording.Jsonl);
        }
        else
        {
            await File.WriteAllTextAsync(output, recording.Jsonl, cancellationToken);
        }
        Console.Error.WriteLine($"runner: recorded {recording.Steps} step(s) of {recordTenant}/{saga}/{key}{(output is null ? "" : " to " + output)}");
        return 0;
    }

    private static bool TryFlags(string[] args, out string? tenant, out string? output)
    {
        tenant = null;
        output = null;
        for (var i = 0; i < args.Length; i += 2)
        {
            if (i + 1 >= args.Length)
            {
                return false;
            }
            switch (args[i])
            {
                case "--tenant": tenant = args[i + 1]; break;
                case "--out": output = args[i + 1]; break;
                default: return false;
            }
        }
        return true;
    }
}
