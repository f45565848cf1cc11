using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using Runner.Core.Manifests;
using Runner.Effects.Claims;
using Runner.Messaging;

namespace Runner.Effects.Workers;

/// <summary>
/// Consumes one effect's commands (optionally of one pool) from <c>WORKFLOW_COMMANDS</c> on a
/// durable consumer that every worker of the deployment shares, so workers compete for them. It
/// pulls only as many commands as it has free slots (the effect's <c>concurrency</c>) and, for
/// effects that run briefly, a few more that it claims ahead (<see cref="ClaimAhead"/>), so a busy
/// worker leaves work to idle ones and a slot coming free finds its next command claimed. A slot is
/// held while a command's effect runs; once it has run, the command moves to one of as many
/// finishing slots (completion, result, ack) and its slot takes the next command, so the upstream
/// sees the effect's full concurrency while the round trips of other commands go on beside it.
/// </summary>
internal sealed partial class EffectWorker
{
    private const int MaxTrackedFailures = 10_000;

    private readonly INatsJSContext _js;
    private readonly PubAckPipeline _publisher;
    private readonly EffectClaims _claims;
    private readonly IEffectExecutor _executor;
    private readonly Func<string, EffectManifest?> _effects;
    private readonly ICommandQuarantine _quarantine;
    private readonly EffectWorkerOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly CancellationToken _abort;
    private readonly ConcurrentDictionary<string, byte> _running = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<ulong, int> _failures = new();
    private readonly LeaseKeeper _leases;
    private long _executed;
    private long _handedBack;
    private long _republished;
    private long _leftHeld;
    private long _lost;

    /// <param name="abort">Cancels commands that are running; stopping <see cref="RunAsync"/> only stops pulling new ones.</param>
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
        TimeProvider time,
        CancellationToken abort)
    {
        _js = js;
        _publisher = PubAckPipeline.For(js.Connection);
        _claims = claims;
        _executor = executor;
        _effects = effects;
        _quarantine = quarantine;
        Effect = effect;
        Pool = pool;
        _options = options;
        _logger = logger;
        _time = time;
        _abort = abort;
        Consumer = ConsumerName(options.ConsumerPrefix, effect, pool);
        FilterSubject = Core.Subjects.Subjects.Command("*", effect, pool);
        _leases = new LeaseKeeper(claims, options.JetStream.AckWait, time, logger, () => Hooks);
    }

    public string Effect { get; }

    public string? Pool { get; }

    public string Consumer { get; }

    public string FilterSubject { get; }

    /// <summary>Test hooks that stand in for a crash at a precise point; null in production.</summary>
    internal EffectWorkerHooks? Hooks { get; init; }

    /// <summary>Commands this worker is handling now.</summary>
    public int Running => _running.Count;

    /// <summary>Commands this worker ran through a provider.</summary>
    public long Executed => Interlocked.Read(ref _executed);

    /// <summary>Commands held by an open circuit that this worker handed back when it stopped taking commands.</summary>
    public long HandedBack => Interlocked.Read(ref _handedBack);

    /// <summary>Runs abandoned because another worker took the claim over (this worker stalled past its lease).</summary>
    public long Lost => Interlocked.Read(ref _lost);

    /// <summary>Leases the keeper saw run out with no renewal confirmed (each ends its command's run, or the wait for one).</summary>
    internal long LeasesLapsed => _leases.Lapsed;

    /// <summary>Deliveries left alone because another worker held a live claim on the command.</summary>
    public long LeftHeld => Interlocked.Read(ref _leftHeld);

    /// <summary>Commands found already completed whose stored result was published again.</summary>
    public long Republished => Interlocked.Read(ref _republished);

    /// <summary>
    /// Consumer names allow no dots: <c>{prefix}-effect-{effect}[~{pool}]</c> with each dot as
    /// <c>=</c>. Effect names never contain <c>=</c> or <c>~</c>, so no two effects or pools share one.
    /// </summary>
    public static string ConsumerName(string prefix, string effect, string? pool) =>
        $"{prefix}-effect-{effect.Replace('.', '=')}" + (pool is null ? string.Empty : "~" + pool.Replace('.', '='));

    /// <summary>Pulls and runs commands until <paramref name="stop"/>; then waits for the running ones (bounded by the abort token).</summary>
    public async Task RunAsync(CancellationToken stop)
    {
        var effect = _effects(Effect);
        var concurrency = Math.Max(1, effect is null ? 1 : _executor.SlotsFor(effect, Pool));
        await _js.CreateOrUpdateConsumerAsync(_options.JetStream.Streams.WorkflowCommands, new ConsumerConfig(Consumer)
        {
            FilterSubject = FilterSubject,
            AckPolicy = ConsumerConfigAckPolicy.Explicit,
            AckWait = _options.JetStream.AckWait,
            MaxDeliver = -1,
            // What one worker may hold unacked: its slots, the commands it claims ahead at most, and as many finishing.
            MaxAckPending = Math.Max(_options.JetStream.MaxAckPending, (2 * concurrency) + ClaimAhead.Most(concurrency, _options.ClaimAhead)),
            DeliverPolicy = ConsumerConfigDeliverPolicy.All,
        }, stop);
        EffectsLog.WorkerStarted(_logger, Effect, Pool ?? "-", Consumer, FilterSubject, concurrency, _claims.Worker);

        // One pull subscription for the worker's life, asking for as many commands as it may hold before their
        // effect has run: its slots and those claimed ahead. A command's room is given back once its effect has run.
        var pull = await PullConsumer.StartAsync(_js.Connection, _js.Opts.Prefix, _options.JetStream.Streams.WorkflowCommands, Consumer,
            concurrency, _options.PullExpiry, _options.PullHeartbeat, _time, stop, releaseOnRead: false);
        // A command claimed ahead stops waiting for a slot when the intake ends (it goes back); one that ran waits
        // for a finishing place until the running commands are aborted.
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(stop, _abort);
        using var slots = new SlotGate(concurrency, stopping.Token);
        using var finishing = new SlotGate(concurrency, _abort);
        var lanes = new Lanes(slots, finishing, pull, new ClaimAhead(concurrency, _options.ClaimAhead, pull.Resize, Hooks?.FixedClaimAhead));
        var inFlight = new InFlight();
        using var keeperStop = CancellationTokenSource.CreateLinkedTokenSource(_abort);
        var keeper = _leases.RunAsync(keeperStop.Token);
        try
        {
            // The pull delivers no more than there is room for, so each command delivered is taken at once.
            await foreach (var command in pull.ReadAllAsync(stop))
            {
                inFlight.Enter();
                _ = HandleGuardedAsync(command, new Hold(lanes), inFlight, stop);
            }
        }
        finally
        {
            // Stopping: no new commands; the running ones finish, or stop at the abort (drain
            // deadline), unacked, and are taken over when their leases run out. Commands delivered
            // but not started go back at once, for another worker.
            try
            {
                await pull.DisposeAsync();
                foreach (var left in pull.Unread())
                {
                    await LeaveAsync(left, TimeSpan.Zero, _abort);
                }
            }
#pragma warning disable CA1031 // Unsubscribing failed (the connection is going): the running commands must still finish before their slots go.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                EffectsLog.PullStopFailed(_logger, Effect, ex.Message);
            }
            await inFlight.EndedAsync();
            await keeperStop.CancelAsync();
            await keeper;
        }
    }

    /// <param name="inFlight">Told when the command is done with, whatever became of it.</param>
    /// <param name="intake">Ends with the worker's intake (a drain): a command held by an open circuit is then handed back.</param>
    private async Task HandleGuardedAsync(JetStreamMessage msg, Hold hold, InFlight inFlight, CancellationToken intake)
    {
        Delivery? delivery = null;
        try
        {
            await Task.Yield();
            // Read once: the command's stream sequence, delivery count and stored time.
            delivery = Delivery.Of(msg);
            await HandleAsync(msg, delivery, hold, intake, _abort);
            _failures.TryRemove(delivery?.StreamSequence ?? 0, out _);
        }
        catch (OperationCanceledException) when (_abort.IsCancellationRequested)
        {
            // Aborted: the command is not acked and comes back.
        }
#pragma warning disable CA1031 // One command's failure must not stop the worker; it is logged, retried and in the end quarantined.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            await FailedAsync(msg, delivery, ex);
        }
        finally
        {
            // Neither throws (counts under locks), so the drain is always told.
            hold.Release();
            inFlight.Exit();
        }
    }

    /// <summary>
    /// How many commands a worker has taken and not yet done with. The intake holds one count of its own until it
    /// ends, so the count reaches nought only once it has ended and the last command is done.
    /// </summary>
    private sealed class InFlight
    {
        private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _count = 1;

        public void Enter() => Interlocked.Increment(ref _count);

        public void Exit()
        {
            if (Interlocked.Decrement(ref _count) == 0)
            {
                _ended.SetResult();
            }
        }

        /// <summary>The intake has ended (called once): completes when every command taken is done with.</summary>
        public Task EndedAsync()
        {
            Exit();
            return _ended.Task;
        }
    }

    /// <summary>What the commands of one <see cref="RunAsync"/> share: slots, finishing places, the pull's room and the claim-ahead estimate.</summary>
    private sealed record Lanes(SlotGate Slots, SlotGate Finishing, PullConsumer Pull, ClaimAhead Ahead);

    /// <summary>
    /// A command's place in the worker: room in the pull from its delivery until its effect has run
    /// (or it ends without running), a slot while its effect runs, then a finishing place until it is
    /// done. The finishing place is taken before the slot and the room are given up, so when
    /// finishing is backed up the worker stops pulling instead of piling up results.
    /// </summary>
    private sealed class Hold(Lanes lanes)
    {
        private bool _room = true;
        private bool _slot;
        private bool _finishing;

        public ClaimAhead Ahead => lanes.Ahead;

        /// <summary>
        /// Takes a slot to run the effect in, waiting for one. False when the worker stops taking work, or
        /// <paramref name="lost"/> ends (the claim is lost), first: the command is claimed but has not run, and goes back.
        /// </summary>
        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
        public async ValueTask<bool> RunAsync(CancellationToken lost)
        {
            _slot = await lanes.Slots.TakeAsync(lost);
            return _slot;
        }

        /// <summary>
        /// Moves the command from its slot to a finishing place, waiting for one to be free. False when
        /// the running commands are aborted first.
        /// </summary>
        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
        public async ValueTask<bool> FinishAsync()
        {
            if (!await lanes.Finishing.TakeAsync())
            {
                return false;
            }
            _finishing = true;
            if (_slot)
            {
                _slot = false;
                lanes.Slots.Give();
            }
            GiveRoom();
            return true;
        }

        public void Release()
        {
            if (_slot)
            {
                _slot = false;
                lanes.Slots.Give();
            }
            if (_finishing)
            {
                _finishing = false;
                lanes.Finishing.Give();
            }
            GiveRoom();
        }

        /// <summary>The pull may ask for one more command.</summary>
        private void GiveRoom()
        {
            if (_room)
            {
                _room = false;
                lanes.Pull.Release();
            }
        }
    }

    /// <summary>
    /// A command that failed for a reason other than its effect (the effect's failures are
    /// results): retried a few times, then quarantined and terminated, so a poison command cannot
    /// loop for ever (invariant 8). NATS or the claim bucket not answering is not the command's
    /// fault: it comes back after a pause for as long as the outage lasts, and counts nothing.
    /// </summary>
    private async Task FailedAsync(JetStreamMessage msg, Delivery? delivery, Exception ex)
    {
        var sequence = delivery?.StreamSequence ?? 0;
        if (PubAcks.IsTransient(ex))
        {
            var pause = TimeSpan.FromMilliseconds(Math.Min(5_000, 250 * (double)(delivery?.NumDelivered ?? 1)));
            EffectsLog.CommandWaits(_logger, Effect, msg.Subject, pause.TotalMilliseconds, ex.Message);
            await LeaveAsync(msg, pause, _abort);
            return;
        }
        if (_failures.Count > MaxTrackedFailures)
        {
            _failures.Clear();
        }
        var failures = _failures.AddOrUpdate(sequence, 1, (_, n) => n + 1);
        if (failures < _options.JetStream.MaxDeliver)
        {
            EffectsLog.CommandFailed(_logger, ex, Effect, msg.Subject, failures, ex.Message);
            await LeaveAsync(msg, TimeSpan.FromSeconds(Math.Min(30, failures)), _abort);
            return;
        }
        try
        {
            await _quarantine.AddAsync(msg, ProcessingError, $"failed {failures} times: {ex.GetType().Name}: {ex.Message}", Core.Subjects.SubjectTenant.FromSubject(msg.Subject), _abort);
            await msg.AckTerminateAsync(cancellationToken: _abort);
            _failures.TryRemove(sequence, out _);
            EffectsLog.CommandQuarantined(_logger, Effect, msg.Subject, ProcessingError, ex.Message);
        }
#pragma warning disable CA1031 // Quarantine itself failed (store or NATS down): the command stays and comes back.
        catch (Exception inner)
#pragma warning restore CA1031
        {
            EffectsLog.CommandFailed(_logger, inner, Effect, msg.Subject, failures, inner.Message);
            await LeaveAsync(msg, TimeSpan.FromSeconds(5), _abort);
        }
    }

    /// <summary>Not acked: the command is delivered again after the delay (to this or another worker).</summary>
    private static async ValueTask LeaveAsync(JetStreamMessage msg, TimeSpan delay, CancellationToken cancellationToken)
    {
        try
        {
            await msg.NakAsync(delay, cancellationToken);
        }
        catch (Exception ex) when (ex is NatsException or OperationCanceledException)
        {
            // Without the NAK the ack wait brings it back anyway.
        }
    }
}

/// <summary>Points where a test can make a worker stop dead, as a crash would.</summary>
internal sealed class EffectWorkerHooks
{
    /// <summary>After the claim is marked completed (with the result), before the result is published.</summary>
    public Func<string, CancellationToken, ValueTask>? AfterCompleted { get; init; }

    /// <summary>After the result's PubAck, before the command is acked.</summary>
    public Func<string, CancellationToken, ValueTask>? AfterPublished { get; init; }

    /// <summary>Returns true to freeze the heartbeat of a command, as a paused process would (its ack wait and lease run out).</summary>
    public Func<string, bool>? StallHeartbeat { get; init; }

    /// <summary>How much later a command's lease renewal is confirmed than the server wrote it, as a slow or hung reply would (null: none).</summary>
    public Func<string, TimeSpan?>? DelayRenewal { get; init; }

    /// <summary>Claims this many commands ahead of free slots from the start, however long claims and runs take (null: as estimated).</summary>
    public int? FixedClaimAhead { get; init; }

    /// <summary>Returns true to NAK a finished command instead of acking it (it is redelivered).</summary>
    public Func<string, bool>? NakInsteadOfAck { get; init; }
}
