using System.Globalization;
using System.Text.Json;
using NATS.Client.Core;
using Runner.Core;
using Runner.Host.Instances;
using Runner.Sagas.Instances;

namespace Runner.Host.Commands;

/// <summary>
/// <c>runner instances list|show</c>: asks the saga replicas of the deployment the <c>RUNNER_*</c>
/// settings name, over NATS, so it works from any machine that reaches NATS; each partition's
/// owner answers for its instances.
/// </summary>
internal static class InstancesCommand
{
    private const string Usage = """
        usage: runner instances list [--saga S] [--tenant T] [--key K] [--status running|parked|done] [--older-than DUR] [--newer-than DUR] [--limit N] [--json]
               runner instances show SAGA KEY [--tenant T] [--json]
               runner instances resume|skip|cancel SAGA KEY [--tenant T]
               runner instances reset SAGA KEY --to VERSION [--tenant T] [--confirm TOKEN] [--json]
        """;

    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(3);

    public static async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var json = args.Contains("--json", StringComparer.Ordinal);
        var rest = args.Where(a => a != "--json").ToArray();
        if (rest is not (["list", ..] or ["show" or "resume" or "skip" or "cancel" or "reset", _, _, ..]) || !TryFlags(rest[(rest[0] == "list" ? 1 : 3)..], out var flags))
        {
            Console.Error.WriteLine(Usage);
            return 2;
        }
        var settings = SettingsFromEnvironment.Load();
        if (settings is null)
        {
            return 2;
        }
        var options = settings.SagaOptions();
        await using var nats = new NatsConnection(new NatsOpts { Url = settings.NatsUrl, Name = "runner-instances" });
        try
        {
            await nats.ConnectAsync();
            if (rest[0] == "list")
            {
                var (filter, error) = InstanceRequests.Filter(flags, DateTimeOffset.UtcNow);
                if (filter is null)
                {
                    Console.Error.WriteLine($"runner: {error}");
                    return 2;
                }
                var list = await InstanceQueryClient.ListAsync(nats, options, filter, s_wait, cancellationToken);
                PrintList(list, json);
                return list.Missing.Count == 0 ? 0 : 3;
            }
            if (rest[0] == "reset")
            {
                return await ResetAsync(nats, settings, rest[1], rest[2], flags, json, cancellationToken);
            }
            if (flags.Any(f => f.Key != "tenant"))
            {
                Console.Error.WriteLine(Usage);
                return 2;
            }
            var tenant = flags.Select(f => f.Value).FirstOrDefault();
            if (rest[0] != "show")
            {
                var result = await InstanceControl.SendAsync(nats, options, rest[0], rest[1], rest[2], tenant, s_wait, cancellationToken);
                (result.Outcome == ControlOutcome.Applied ? Console.Out : Console.Error).WriteLine((result.Outcome == ControlOutcome.Applied ? "" : "runner: ") + result.Message);
                return result.Outcome == ControlOutcome.Applied ? 0 : 1;
            }
            var found = await InstanceLookup.ShowAsync(nats, options, rest[1], rest[2], tenant, s_wait, cancellationToken);
            if (found.Count == 0)
            {
                Console.Error.WriteLine($"runner: no instance {rest[1]}/{rest[2]}{(tenant is null ? "" : $" of tenant {tenant}")} (or no replica owning its partition answered)");
                return 1;
            }
            foreach (var reply in found)
            {
                PrintShow(reply, json);
            }
            return 0;
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

    /// <summary>
    /// <c>instances reset</c>: without <c>--confirm</c> a dry run (what each replayed step would do
    /// differently, and the token); with the token of that dry run, the reset itself.
    /// </summary>
    private static async Task<int> ResetAsync(NatsConnection nats, Settings.RunnerSettings settings, string saga, string key, List<KeyValuePair<string, string>> flags, bool json, CancellationToken cancellationToken)
    {
        string? Flag(string name) => flags.FirstOrDefault(f => f.Key == name).Value;
        if (flags.Any(f => f.Key is not ("tenant" or "to" or "confirm"))
            || !long.TryParse(Flag("to"), NumberStyles.None, CultureInfo.InvariantCulture, out var to))
        {
            Console.Error.WriteLine(Usage);
            return 2;
        }
        var loaded = Sagas.Manifests.ManifestLoader.Load(settings.Manifests, settings.JetStream.Streams);
        if (!loaded.Succeeded)
        {
            Console.Error.WriteLine($"runner: the manifests at {settings.Manifests} (RUNNER_MANIFESTS, what the replicas run) do not load:\n  " + string.Join("\n  ", loaded.Errors));
            return 2;
        }
        var token = Flag("confirm");
        var result = token is null
            ? await InstanceReset.PreviewAsync(nats, settings.SagaOptions(), loaded.Set!, saga, key, Flag("tenant"), to, s_wait, cancellationToken)
            : await InstanceReset.ApplyAsync(nats, settings.SagaOptions(), loaded.Set!, saga, key, Flag("tenant"), to, token, s_wait, cancellationToken);
        if (result.Preview is { } preview && (token is null || json))
        {
            if (json)
            {
                Console.WriteLine(JsonSerializer.Serialize(preview, ResetJsonContext.Default.ResetPreview));
            }
            else
            {
                Console.WriteLine($"reset {preview.Tenant}/{saga}/{key} from version {preview.From} to {preview.To}: {preview.Steps.Count} step(s) replayed with the current script");
                foreach (var step in preview.Steps)
                {
                    Console.WriteLine($"  v{step.Version} {step.Type} ({step.EventId}): {(step.Differences.Count == 0 ? "the same" : string.Join("; ", step.Differences))}");
                }
                Console.WriteLine($"  state now   {preview.StateNow}");
                Console.WriteLine($"  state after {preview.StateAfter}");
                Console.WriteLine($"to apply: runner instances reset {saga} {key} --to {preview.To} --tenant {preview.Tenant} --confirm {preview.Token}");
            }
        }
        if (result.Error is not null)
        {
            Console.Error.WriteLine($"runner: {result.Error}");
            return 1;
        }
        if (result.Applied)
        {
            Console.WriteLine($"reset of {result.Preview!.Tenant}/{saga}/{key} applied: now version {result.After!.Summary!.Version}, state {result.After.State?.GetRawText()}");
        }
        return 0;
    }

    /// <summary>Reads <c>--name value</c> pairs (dashes in names become underscores, as in the HTTP query).</summary>
    private static bool TryFlags(string[] args, out List<KeyValuePair<string, string>> flags)
    {
        flags = [];
        for (var i = 0; i < args.Length; i += 2)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
            {
                return false;
            }
            flags.Add(KeyValuePair.Create(args[i][2..].Replace('-', '_'), args[i + 1]));
        }
        return true;
    }

    private static void PrintList(InstanceList list, bool json)
    {
        if (json)
        {
            foreach (var instance in list.Instances)
            {
                Console.WriteLine(JsonSerializer.Serialize(instance, InstanceJsonContext.Default.InstanceSummary));
            }
        }
        else
        {
            Console.WriteLine($"{"TENANT",-12} {"SAGA",-16} {"KEY",-24} {"STATUS",-8} {"VER",5} {"P",3} {"UPDATED",-24} {"TIMERS",6}");
            foreach (var i in list.Instances)
            {
                Console.WriteLine($"{i.Tenant,-12} {i.Saga,-16} {i.Key,-24} {i.Status,-8} {i.Version,5} {i.Partition,3} {Time(i.UpdatedAtMs),-24} {i.Timers,6}");
            }
        }
        Console.Error.WriteLine($"{list.Instances.Count} instance(s){(list.Truncated ? " (more match: raise --limit or narrow the filter)" : "")}; "
            + $"{list.Answered.Count} partition(s) answered"
            + (list.Missing.Count == 0 ? "" : $", no answer for {string.Join(',', list.Missing)} (moving, or no saga replica runs them)"));
    }

    private static void PrintShow(InstanceShowReply reply, bool json)
    {
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(reply, InstanceJsonContext.Default.InstanceShowReply));
            return;
        }
        var s = reply.Summary!;
        Console.WriteLine($"{s.Tenant}/{s.Saga}/{s.Key}: {s.Status}, version {s.Version}, partition {reply.Partition} (epoch {reply.Epoch}, {reply.Worker})");
        Console.WriteLine($"  created {Time(s.CreatedAtMs)}, updated {Time(s.UpdatedAtMs)}, manifest {s.ManifestHash?[..Math.Min(12, s.ManifestHash.Length)]}");
        Console.WriteLine($"  state   {reply.State?.GetRawText()}");
        if (reply.Parked is { } parked)
        {
            Console.WriteLine($"  parked  on {parked.Type} ({parked.EventId}, inbox #{parked.InboxSequence}): {parked.Reason}: {parked.Detail}");
            foreach (var held in reply.Held)
            {
                Console.WriteLine($"  held    inbox #{held.InboxSequence} {held.Type} ({held.EventId}) {held.Bytes} bytes");
            }
        }
        foreach (var (name, due) in reply.Timers ?? [])
        {
            Console.WriteLine($"  timer   {name} due {Time(due)}");
        }
        foreach (var command in reply.Outbox)
        {
            Console.WriteLine($"  outbox  {command.CommandId} {command.Effect} (from {command.CausationId})");
        }
        Console.WriteLine($"  history ({reply.History.Count} step(s) kept)");
        foreach (var step in reply.History)
        {
            var did = string.Join("; ", new[]
            {
                step.Commands.Count > 0 ? "commands " + string.Join(',', step.Commands.Select(c => $"{c.Effect}:{c.Id}")) : null,
                step.Schedules.Count > 0 ? "timers " + string.Join(',', step.Schedules.Select(t => t.Name)) : null,
                step.Cancel.Count > 0 ? "cancel " + string.Join(',', step.Cancel) : null,
                step.Done ? "done" : null,
            }.OfType<string>());
            Console.WriteLine($"    v{step.Version,-4} {step.Time} {step.Type} ({step.EventId}) {step.Stream}#{step.Sequence} {step.Handler} state {step.StateHash}{(did.Length > 0 ? " -> " + did : "")}");
        }
    }

    private static string Time(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms).ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);
}
