using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Runner.Core.Manifests;
using Runner.Slices;
using Runner.Slices.Cgroups;

namespace Runner.Effects.Providers.Slices;

/// <summary>
/// <c>provider: slice</c>: runs <c>runner-slice run /run/slice/spec.json --events</c> in a sandbox
/// on this node — the command's spec written to the slice's private directory, its resources
/// checked against the pool's maximums and held from the node's capacity while it runs — publishes
/// the OpenLineage events it prints, and turns its exit into the effect's result.
/// </summary>
internal sealed partial class SliceProvider(SliceLauncher launcher, SliceCapacity capacity, ILineagePublisher lineage, SliceProviderOptions options, ILogger logger) : IEffectProvider, IAsyncDisposable
{
    public const string SpecFile = "spec.json";

    /// <summary>
    /// Stops the launcher once no slice runs any more: the sandbox waiting for the next slice and the
    /// cgroups made ahead are removed (otherwise only the next worker's start sweep would).
    /// </summary>
    public ValueTask DisposeAsync() => launcher.DisposeAsync();

    public string Kind => EffectManifest.SliceProvider;

    public SliceCapabilities Capabilities => launcher.Capabilities;

    /// <summary>One pipeline per effect and node: slices fail for their own reasons, not because a node is unwell.</summary>
    public string Upstream(EffectCall call) => "node";

    /// <summary>A worker pulls only while a slice of its pool's default size fits the node.</summary>
    public int Slots(EffectManifest effect, string? pool)
    {
        var defaults = (effect.Slice ?? SliceEffectConfig.Default).For(pool).Defaults;
        return Math.Min(effect.Concurrency, capacity.Slots(defaults.Cpu ?? 1, defaults.Memory ?? 0));
    }

    public async ValueTask<AttemptOutcome> AttemptAsync(EffectCall call, CancellationToken cancellationToken)
    {
        var command = call.Command;
        var config = call.Effect.Slice ?? SliceEffectConfig.Default;
        var policy = config.For(command.Pool);
        var (request, error) = SliceRequest.Parse(command.Payload, config, policy);
        if (request is null)
        {
            return AttemptOutcome.Permanent(error!);
        }
        if (policy.Isolated && !launcher.Capabilities.Isolated)
        {
            return AttemptOutcome.Permanent(SliceOutcomes.IsolationUnavailable,
                "this node cannot isolate slices and the pool requires isolation: " + string.Join("; ", launcher.Capabilities.Problems));
        }
        var resources = request.Resources;
        if (!capacity.CanEverFit(resources.Cpu!.Value, resources.Memory!.Value))
        {
            return AttemptOutcome.Permanent(SliceRequest.ResourcesExceedPoolMax,
                $"the request (cpu {resources.Cpu}, memory {resources.Memory}) is larger than this node's slice capacity (cpu {capacity.Cpu}, memory {capacity.Memory})");
        }

        var secrets = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var name in request.Secrets)
        {
            try
            {
                secrets[name] = Encoding.UTF8.GetBytes(await options.Secrets.ReadAsync(name, cancellationToken));
            }
            catch (SecretUnavailableException ex)
            {
                return AttemptOutcome.Permanent(EffectErrorCodes.SecretUnavailable, ex.Message);
            }
        }

        var binary = Path.GetFullPath(options.SliceBinary);
        var runId = request.RunId ?? command.CommandId;
        var sandbox = new SandboxRequest
        {
            Id = SandboxId(command.Tenant, command.CommandId, call.Attempt),
            Argv = [binary, "run", SandboxLayout.SliceDirectory + "/" + SpecFile, "--events"],
            Limits = new CgroupLimits(resources.Cpu.Value, resources.Memory.Value, resources.Pids!.Value),
            Timeout = TimeSpan.FromMilliseconds(resources.TimeoutMs!.Value),
            Network = resources.Network == SliceResources.NetworkHost ? SliceNetwork.Host : SliceNetwork.None,
            Isolated = policy.Isolated,
            Environment = request.Environment,
            Files = new Dictionary<string, byte[]> { [SpecFile] = request.SpecJson },
            Secrets = secrets,
            // A runner-slice installed under /usr is in every sandbox already; elsewhere it is bound.
            ReadOnlyPaths = SandboxLayout.InSystemDirectories(binary) ? request.ReadOnlyPaths : [binary, .. request.ReadOnlyPaths],
            ReadWritePaths = request.ReadWritePaths,
            Tags = new SliceTags(runId, command.Tenant, command.CorrelationId),
        };

        using var held = await capacity.AcquireAsync(resources.Cpu.Value, resources.Memory.Value, cancellationToken);
        var events = new EventReader(lineage, logger, command, runId);
        using var span = EffectsTelemetry.Source.StartActivity("slice launch", System.Diagnostics.ActivityKind.Internal);
        span?.SetTag("runner.slice.run_id", runId);
        span?.SetTag("runner.slice.isolated", policy.Isolated);
        span?.SetTag("runner.tenant", command.Tenant);
        var pool = new KeyValuePair<string, object?>("pool", command.Pool ?? call.Effect.Pool ?? "default");
        EffectsTelemetry.SlicesRunning.Add(1, pool);
        AttemptOutcome outcome;
        try
        {
            var exit = await launcher.RunAsync(sandbox, events.OnLineAsync, cancellationToken);
            outcome = SliceOutcomes.Of(exit, events, policy.Isolated);
        }
        finally
        {
            EffectsTelemetry.SlicesRunning.Add(-1, pool);
        }
        var ending = outcome.Succeeded ? "succeeded" : outcome.Error?.Code ?? "failed";
        EffectsTelemetry.SliceExits.Add(1, pool, new KeyValuePair<string, object?>("outcome", ending));
        span?.SetTag("runner.slice.outcome", ending);
        if (!outcome.Succeeded)
        {
            span?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, ending);
        }
        return outcome;
    }

    /// <summary>A cgroup and directory name unique per command and attempt, whatever the ids contain.</summary>
    private static string SandboxId(string tenant, string commandId, int attempt)
    {
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(tenant + "\u001f" + commandId)))[..16];
        return $"s-{hash}-{attempt}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3))}";
    }
}

/// <summary>What the slice provider needs besides the launcher: the program to run and where secrets are.</summary>
internal sealed record SliceProviderOptions(string SliceBinary, SecretReader Secrets)
{
    /// <summary><c>runner-slice</c> next to the running program.</summary>
    public static string DefaultBinary => Path.Combine(AppContext.BaseDirectory, "runner-slice");
}
