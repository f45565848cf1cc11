using Microsoft.Extensions.Logging;
using Runner.Messaging;
using Runner.Effects.Claims;

namespace Runner.Effects.Workers;

/// <summary>
/// Keeps every command a worker runs alive with one timer instead of one per command: until a
/// command is acked, a third of the lease (or of the ack wait, if shorter) after its lease was last
/// renewed, it tells JetStream the command is in progress and renews the claim's lease by
/// compare-and-set. The renewals that
/// fall due on a tick go out together. A renewal the server refuses means another worker took the
/// claim over: the run is cancelled. A worker whose renewals do not get through (NATS unreachable,
/// a request that hangs) cancels the run itself just before its last confirmed lease ends, so it
/// never runs on past the moment another worker may take over: every tick checks that deadline for
/// every command, whatever its renewal is doing.
/// </summary>
internal sealed class LeaseKeeper
{
    private readonly EffectClaims _claims;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Func<EffectWorkerHooks?> _hooks;
    private readonly long _intervalMs;
    private readonly long _marginMs;
    private readonly long _leaseMs;
    private readonly Lock _gate = new();
    private readonly HashSet<Kept> _kept = [];

    public LeaseKeeper(EffectClaims claims, TimeSpan ackWait, TimeProvider time, ILogger logger, Func<EffectWorkerHooks?> hooks)
    {
        _claims = claims;
        _time = time;
        _logger = logger;
        _hooks = hooks;
        _intervalMs = (long)Math.Max(50, Math.Min(claims.Lease.TotalMilliseconds, ackWait.TotalMilliseconds) / 3);
        _marginMs = (long)Math.Max(50, claims.Lease.TotalMilliseconds / 6);
        _leaseMs = (long)claims.Lease.TotalMilliseconds;
    }

    /// <summary>A quarter of the interval: how often every command's lease is checked against its deadline, at the least.</summary>
    private long TickMs => Math.Max(10, _intervalMs / 4);

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _kept.Count;
            }
        }
    }

    /// <summary>
    /// True when <paramref name="claim"/>'s lease is as good as over: no renewal confirmed by the margin
    /// before its end, when the keeper gives a run up. A command that waited for a slot asks this before it
    /// runs, rather than trusting that a tick has already come.
    /// </summary>
    public bool Lapsing(Claim claim) => Lapsing(claim, _claims.NowMs());

    private bool Lapsing(Claim claim, long claimsNow) => !claim.Completed && claimsNow >= claim.LeaseUntilMs - _marginMs;

    /// <summary>Starts keeping a claimed command alive; <paramref name="lost"/> is cancelled when its claim is lost.</summary>
    public Kept Track(JetStreamMessage msg, string commandId, Claim claim, CancellationTokenSource lost)
    {
        var kept = new Kept(msg, commandId, claim, lost, NextBeatMs(claim, NowMs()));
        lock (_gate)
        {
            _kept.Add(kept);
        }
        return kept;
    }

    /// <summary>
    /// The command's effect has run. From now on a lease that runs out does not give the command up: the lease
    /// kept two workers from running the effect at once, and now the command is to be completed (a compare-and-set
    /// that a takeover refuses). So it is kept in progress on the stream, and its lease renewed as soon as a
    /// renewal gets through, for as long as it waits to be completed: its message is not redelivered meanwhile,
    /// and a worker that reads the claim finds it held rather than run out.
    /// </summary>
    public void EffectRan(Kept kept)
    {
        lock (_gate)
        {
            kept.Ran = true;
        }
    }

    /// <summary>Stops keeping a command alive and waits for a beat (or a give-up) of it still in flight, so nothing touches the claim or its token afterwards.</summary>
    public async ValueTask StopAsync(Kept kept)
    {
        Task? beat;
        Task? expiry;
        lock (_gate)
        {
            _kept.Remove(kept);
            beat = kept.Beat;
            expiry = kept.Expiry;
        }
        if (beat is not null)
        {
            await beat;
        }
        if (expiry is not null)
        {
            await expiry;
        }
    }

    /// <summary>Runs until <paramref name="stop"/>, which the worker cancels only once no command of it runs any more.</summary>
    public async Task RunAsync(CancellationToken stop)
    {
        var due = new List<Kept>();
        var wait = TickMs;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(wait), _time, stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            var now = NowMs();
            var claimsNow = _claims.NowMs();
            var next = long.MaxValue;
            lock (_gate)
            {
                foreach (var kept in _kept)
                {
                    if ((kept.Expiry is not null && !kept.Ran) || Stalled(kept))
                    {
                        continue;
                    }
                    if (!kept.Ran && Lapsing(kept.Claim, claimsNow))
                    {
                        // No renewal confirmed in time, however long the one in flight still takes.
                        kept.Expiry = GiveUpAsync(kept);
                    }
                    else if (kept.Beat is null && kept.NextBeatMs <= now)
                    {
                        due.Add(kept);
                    }
                    else if (kept.Beat is null)
                    {
                        next = Math.Min(next, kept.NextBeatMs);
                    }
                }
                foreach (var kept in due)
                {
                    kept.Beat = BeatAsync(kept, stop);
                }
            }
            due.Clear();
            wait = UntilNextBeat(next, now);
        }
    }

    /// <summary>
    /// A tick, or less when the earliest beat not yet due (<paramref name="next"/>) falls due before it:
    /// beats go out when due (at most an eighth of a tick late), not up to a tick late (the slack a
    /// slow renewal has inside its lease is not spent waiting for the timer). A beat made or a command
    /// tracked after this wake is due a tick or more later, which the next wake sees.
    /// </summary>
    private long UntilNextBeat(long next, long now) =>
        // Not sooner than an eighth of a tick: beats falling due close together go out on one wake,
        // so thousands of running commands cost a few wakes per tick, not one each.
        next == long.MaxValue ? TickMs : Math.Clamp(next - now, Math.Max(1, TickMs / 8), TickMs);

    /// <summary>A paused process (the test hook; the worker's hooks are set after it is built) does nothing at all: no renewal, no giving up.</summary>
    private bool Stalled(Kept kept) => _hooks()?.StallHeartbeat?.Invoke(kept.CommandId) == true;

    private async Task GiveUpAsync(Kept kept)
    {
        await Task.Yield(); // out of the tick's lock: cancelling runs the run's callbacks
        await kept.Lost.CancelAsync();
        Interlocked.Increment(ref _lapsed);
    }

    private long _lapsed;

    /// <summary>Leases this keeper saw run out with no renewal confirmed, and gave their commands up for.</summary>
    public long Lapsed => Interlocked.Read(ref _lapsed);

    private async Task BeatAsync(Kept kept, CancellationToken stop)
    {
        // Leave the tick's lock first: the beats of one tick run side by side.
        await Task.Yield();
        var keep = true;
        try
        {
            keep = await RenewAsync(kept, stop);
        }
        finally
        {
            lock (_gate)
            {
                kept.Beat = null;
                kept.NextBeatMs = NextBeatMs(kept.Claim, NowMs());
                if (!keep)
                {
                    _kept.Remove(kept);
                }
            }
        }
    }

    /// <returns>False when the command is no longer to be kept alive (its claim is lost).</returns>
    private async Task<bool> RenewAsync(Kept kept, CancellationToken stop)
    {
        if (Stalled(kept))
        {
            return true;
        }
        try
        {
            await kept.Msg.AckProgressAsync(cancellationToken: stop);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            EffectsLog.HeartbeatFailed(_logger, kept.Claim.Key, ex.Message);
        }
        catch (OperationCanceledException)
        {
            return true;
        }
        if (kept.Claim.Completed)
        {
            return true;
        }
        try
        {
            if (!await kept.Claim.RenewAsync(stop, _hooks()?.DelayRenewal?.Invoke(kept.CommandId)))
            {
                await kept.Lost.CancelAsync();
                return false;
            }
            return true;
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            return true;
        }
#pragma warning disable CA1031 // Any renewal failure is judged by the lease alone.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            // Tried again next beat; the tick gives the run up if no renewal gets through before the lease is nearly out.
            EffectsLog.HeartbeatFailed(_logger, kept.Claim.Key, ex.Message);
            return true;
        }
    }

    private long NowMs() => _time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>
    /// The next beat, an interval after the confirmed lease began (the moment its renewal was made),
    /// not after the renewal came back: a slow round trip does not push every later renewal further
    /// towards the end of its lease. A completed claim has no lease left to keep: its beat only
    /// keeps the message in progress, an interval from now.
    /// </summary>
    private long NextBeatMs(Claim claim, long now) =>
        claim.Completed ? now + _intervalMs : Math.Max(claim.LeaseUntilMs - _leaseMs + _intervalMs, now + TickMs);

    /// <summary>One command kept alive; its mutable fields are guarded by the keeper's lock.</summary>
    internal sealed class Kept(JetStreamMessage msg, string commandId, Claim claim, CancellationTokenSource lost, long nextBeatMs)
    {
        public JetStreamMessage Msg { get; } = msg;

        public string CommandId { get; } = commandId;

        public Claim Claim { get; } = claim;

        public CancellationTokenSource Lost { get; } = lost;

        public long NextBeatMs { get; set; } = nextBeatMs;

        public Task? Beat { get; set; }

        /// <summary>The run given up because its lease was about to end with no renewal confirmed.</summary>
        public Task? Expiry { get; set; }

        /// <summary>Its effect has run: a lease running out no longer gives it up (see <see cref="LeaseKeeper.EffectRan"/>).</summary>
        public bool Ran { get; set; }
    }
}
