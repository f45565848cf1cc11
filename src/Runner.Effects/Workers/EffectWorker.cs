using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using Runner.Core.Manifests;
using Runner.Effects.Claims;

namespace Runner.Effects.Workers;

/// <summary>
/// Consumes one effect's commands (optionally of one pool) from <c>WORKFLOW_COMMANDS</c> on a
/// durable consumer that every worker of the deployment shares, so workers compete for them. It
/// pulls only as many commands as it has free slots (the effect's <c>concurrency</c>), so a busy
/// worker leaves work to idle ones.
/// </summary>
internal sealed partial class EffectWorker
{
    private readonly INatsJSContext _js;
    private readonly EffectClaims _claims;
    private readonly IEffectExecutor _executor;
    private readonly Func<string, EffectManifest?> _effects;
    private readonly ICommandQuarantine _quarantine;
    private readonly EffectWorkerOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, byte> _running = new(StringComparer.Ordinal);

    public EffectWorker(
        INatsJSContext js,
        EffectClaims claims,
        IEffectExecutor executor,
        Func<string, EffectManifest?> effects,
        ICommandQuarantine quarantine,
        string effect,
        string? pool,
        EffectWorkerOptions options,
        ILogger logger,
        TimeProvider time)
    {
        _js = js;
        _claims = claims;
        _executor = executor;
        _effects = effects;
        _quarantine = quarantine;
        Effect = effect;
        Pool = pool;
        _options = options;
        _logger = logger;
        _time = time;
        Consumer = ConsumerName(options.ConsumerPrefix, effect, pool);
        FilterSubject = pool is null ? $"workflow.cmd.*.{effect}" : $"workflow.cmd.*.{effect}.{pool}";
    }

    public string Effect { get; }

    public string? Pool { get; }

    public string Consumer { get; }

    public string FilterSubject { get; }

    /// <summary>Test hooks that stand in for a crash at a precise point; null in production.</summary>
    internal EffectWorkerHooks? Hooks { get; init; }

    private long _executed;
    private long _republished;

    /// <summary>Commands this worker ran through a provider.</summary>
    public long Executed => Interlocked.Read(ref _executed);

    /// <summary>Commands found already completed whose stored result was published again.</summary>
    public long Republished => Interlocked.Read(ref _republished);

    /// <summary>Consumer names allow no dots: <c>{prefix}-effect-{effect with _ for .}[-{pool}]</c>.</summary>
    public static string ConsumerName(string prefix, string effect, string? pool) =>
        $"{prefix}-effect-{effect.Replace('.', '_')}" + (pool is null ? string.Empty : "-" + pool.Replace('.', '_'));

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var effect = _effects(Effect);
        var concurrency = Math.Max(1, effect?.Concurrency ?? 1);
        var consumer = await _js.CreateOrUpdateConsumerAsync(_options.JetStream.Streams.WorkflowCommands, new ConsumerConfig(Consumer)
        {
            FilterSubject = FilterSubject,
            AckPolicy = ConsumerConfigAckPolicy.Explicit,
            AckWait = _options.JetStream.AckWait,
            MaxDeliver = -1,
            MaxAckPending = Math.Max(_options.JetStream.MaxAckPending, concurrency),
            DeliverPolicy = ConsumerConfigDeliverPolicy.All,
        }, cancellationToken);
        EffectsLog.WorkerStarted(_logger, Effect, Pool ?? "-", Consumer, FilterSubject, concurrency, _claims.Worker);

        using var slots = new SemaphoreSlim(concurrency, concurrency);
        var inFlight = new ConcurrentDictionary<Task, byte>();
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                await slots.WaitAsync(cancellationToken);
                var free = 1;
                while (slots.Wait(0))
                {
                    free++;
                }
                var used = 0;
                try
                {
                    await foreach (var msg in consumer.FetchAsync<byte[]>(new NatsJSFetchOpts { MaxMsgs = free, Expires = _options.FetchExpiry }, cancellationToken: cancellationToken))
                    {
                        used++;
                        var task = HandleGuardedAsync(msg, slots, cancellationToken);
                        inFlight.TryAdd(task, 0);
                        _ = task.ContinueWith(t => inFlight.TryRemove(t, out _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                    }
                }
                finally
                {
                    if (free > used)
                    {
                        slots.Release(free - used);
                    }
                }
            }
        }
        finally
        {
            // Shutdown: what runs now stops at its next await; unfinished commands stay unacked
            // and their claims' leases run out, so another worker takes them over.
            await Task.WhenAll(inFlight.Keys);
        }
    }

    private async Task HandleGuardedAsync(INatsJSMsg<byte[]> msg, SemaphoreSlim slots, CancellationToken cancellationToken)
    {
        await Task.Yield();
        try
        {
            await HandleAsync(msg, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping: the command is not acked and comes back.
        }
#pragma warning disable CA1031 // One command's failure must not stop the worker; it is logged and the command comes back.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            EffectsLog.CommandFailed(_logger, ex, Effect, msg.Subject, ex.Message);
            await LeaveAsync(msg, TimeSpan.FromSeconds(1));
        }
        finally
        {
            slots.Release();
        }
    }

    /// <summary>Not acked: the command is delivered again after the delay (to this or another worker).</summary>
    private static async ValueTask LeaveAsync(INatsJSMsg<byte[]> msg, TimeSpan delay)
    {
        try
        {
            await msg.NakAsync(delay: delay);
        }
        catch (NatsException)
        {
            // Without the NAK the ack wait brings it back anyway.
        }
    }
}

/// <summary>Points where a test can make a worker stop dead, as a crash would.</summary>
internal sealed class EffectWorkerHooks
{
    /// <summary>After the result's PubAck, before the claim is marked completed.</summary>
    public Func<string, CancellationToken, ValueTask>? AfterPublished { get; init; }

    /// <summary>After the claim is marked completed, before the command is acked.</summary>
    public Func<string, CancellationToken, ValueTask>? AfterCompleted { get; init; }

    /// <summary>Returns true to NAK a finished command instead of acking it (it is redelivered).</summary>
    public Func<string, bool>? NakInsteadOfAck { get; init; }
}
