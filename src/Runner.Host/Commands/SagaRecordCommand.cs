using System.Text.Json;
using NATS.Client.Core;
using Runner.Core.Transitions;
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

        var (from, steps) = Recordable(instance.History);
        if (from is not null)
        {
            Console.Error.WriteLine($"runner: note: the kept history starts at version {from.Version} (older steps are gone): "
                + "its state is the file's initial_state, and the steps after it are recorded");
        }
        var text = GoldenFileWriter.Jsonl(saga, recordTenant, key, from?.State, steps);
        if (output is null)
        {
            Console.Out.Write(text);
        }
        else
        {
            await File.WriteAllTextAsync(output, text, cancellationToken);
        }
        Console.Error.WriteLine($"runner: recorded {steps.Count} step(s) of {recordTenant}/{saga}/{key}{(output is null ? "" : " to " + output)}");
        return 0;
    }

    /// <summary>
    /// The kept steps a replay can start from: all of them when they go back to version 1; else
    /// (history is bounded) the first step of the newest unbroken run, whose state the rest start
    /// from, and the steps after it.
    /// </summary>
    private static (HistoryStep? From, List<HistoryStep> Steps) Recordable(List<HistoryStep> history)
    {
        var start = 0;
        for (var i = 1; i < history.Count; i++)
        {
            if (history[i].Version != history[i - 1].Version + 1)
            {
                start = i;
            }
        }
        return history[start].Version == 1 ? (null, history[start..]) : (history[start], history[(start + 1)..]);
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
