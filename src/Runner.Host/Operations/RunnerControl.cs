using Microsoft.Extensions.Logging;
using Runner.Core.Manifests;
using Runner.Host.Service;
using Runner.Host.Settings;
using Runner.Sagas.Manifests;

namespace Runner.Host.Operations;

/// <summary>
/// The operator's handle on a running Runner: its state (starting, running, draining, drained,
/// stopping), drain and resume, manifest reload, and the shutdown drain. One per process; the
/// HTTP endpoints and the hosted service share it.
/// </summary>
internal sealed class RunnerControl(RunnerSettings settings, ILoggerFactory loggers, TimeProvider time)
{
    private readonly ILogger _logger = loggers.CreateLogger<RunnerControl>();
    private readonly SemaphoreSlim _reloading = new(1, 1);

    /// <summary>Live instances per changed saga a reload replays, and how long its check may take.</summary>
    internal int ReloadCheckSample { get; init; } = 50;

    internal TimeSpan ReloadCheckBudget { get; init; } = TimeSpan.FromSeconds(10);
    private readonly Lock _gate = new();
    private RunnerComponents? _components;
    private Drain? _drain;
    private bool _stopping;

    private sealed record Drain(Task Task, CancellationTokenSource Cancel, DateTimeOffset StartedAt, string Cause)
    {
        public bool Completed => Task.IsCompletedSuccessfully;
    }

    public RunnerSettings Settings => settings;

    public RunnerComponents? Components => Volatile.Read(ref _components);

    public DateTimeOffset? StartedAt { get; private set; }

    public string State
    {
        get
        {
            lock (_gate)
            {
                return _components is null ? (_stopping ? "stopped" : "starting")
                    : _stopping ? "stopping"
                    : _drain is null ? "running"
                    : _drain.Completed ? "drained" : "draining";
            }
        }
    }

    /// <summary>Taking work: started, and neither draining nor stopping.</summary>
    public bool AcceptingWork => State == "running";

    public void Started(RunnerComponents components)
    {
        lock (_gate)
        {
            _components = components;
            StartedAt = time.GetUtcNow();
        }
    }

    /// <summary>Shutdown has begun: not ready from now on; the components keep running for the drain.</summary>
    public void BeginStopping()
    {
        lock (_gate)
        {
            _stopping = true;
        }
    }

    public RunnerComponents? TakeForStop()
    {
        lock (_gate)
        {
            _stopping = true;
            var components = _components;
            _components = null;
            return components;
        }
    }

    /// <summary>Starts a drain unless one runs or has finished; returns the status either way.</summary>
    public DrainStatus BeginDrain(string cause)
    {
        RunnerComponents? stopping = null;
        var intakeStopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            if (_components is { } components && _drain is null)
            {
                stopping = components;
                var cancel = new CancellationTokenSource();
                OperationsLog.DrainStarted(_logger, cause);
                var started = time.GetTimestamp();
                var task = Task.Run(async () =>
                {
                    await intakeStopped.Task;
                    await Task.WhenAll(
                        components.Sagas?.DrainAsync(cancel.Token) ?? Task.CompletedTask,
                        components.Effects?.DrainAsync(cancel.Token) ?? Task.CompletedTask);
                    OperationsLog.Drained(_logger, time.GetElapsedTime(started).TotalMilliseconds);
                }, CancellationToken.None);
                _drain = new Drain(task, cancel, time.GetUtcNow(), cause);
            }
        }
        if (stopping is not null)
        {
            // Nothing is taken once the drain is reported as begun: intake stops here (outside the lock: cancelling
            // runs callbacks), not in the task, which a busy thread pool may start after the caller has its answer.
            try
            {
                stopping.Sagas?.StopIntake();
                stopping.Effects?.StopIntake();
            }
            finally
            {
                intakeStopped.TrySetResult();
            }
        }
        return Status();
    }

    /// <summary>Drains and waits until drained or <paramref name="cancellationToken"/> ends the wait.</summary>
    public async Task<bool> DrainAsync(string cause, CancellationToken cancellationToken)
    {
        BeginDrain(cause);
        Drain? drain;
        lock (_gate)
        {
            drain = _drain;
        }
        if (drain is null)
        {
            return false;
        }
        try
        {
            await drain.Task.WaitAsync(cancellationToken);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public DrainStatus Status()
    {
        Drain? drain;
        RunnerComponents? components;
        lock (_gate)
        {
            drain = _drain;
            components = _components;
        }
        var sagas = components?.Sagas;
        var effects = components?.Effects;
        return new DrainStatus(
            State,
            drain?.Cause,
            drain?.StartedAt,
            sagas?.Relay.Depth(),
            effects?.Workers.Sum(w => w.Running),
            drain?.Task.IsFaulted == true ? drain.Task.Exception?.GetBaseException().Message : null);
    }

    /// <summary>Undoes a drain (finished or not): the intake loops start again where they stopped.</summary>
    public async Task<bool> ResumeAsync(CancellationToken cancellationToken)
    {
        Drain? drain;
        RunnerComponents? components;
        lock (_gate)
        {
            drain = _drain;
            components = _components;
            if (drain is null || components is null || _stopping)
            {
                return false;
            }
        }
        await drain.Cancel.CancelAsync();
        try
        {
            await drain.Task;
        }
        catch (OperationCanceledException)
        {
            // the drain was still waiting: it stops waiting, the loops it stopped stay stopped
        }
        if (components.Sagas is { } sagas)
        {
            await sagas.ResumeAsync(cancellationToken);
        }
        if (components.Effects is { } effects)
        {
            await effects.ResumeAsync(cancellationToken);
        }
        lock (_gate)
        {
            _drain = null;
        }
        drain.Cancel.Dispose();
        OperationsLog.Resumed(_logger);
        return true;
    }

    /// <summary>
    /// Re-reads and validates every manifest and script. A valid set is swapped in whole (the next
    /// batch uses it); an invalid one changes nothing and its errors are returned.
    /// </summary>
    /// <summary>
    /// Validates the manifests on disk, checks every saga whose script changed against a sample of
    /// its live instances (unless <paramref name="force"/>), and swaps them in. A change whose
    /// replay diverges is refused unless its manifest declares it (<c>migrate: true</c>).
    /// </summary>
    public async Task<ReloadOutcome> ReloadAsync(CancellationToken cancellationToken, bool force = false)
    {
        await _reloading.WaitAsync(cancellationToken);
        try
        {
            var components = Components ?? throw new InvalidOperationException("runner is not running");
            var loaded = await Task.Run(() => ManifestLoader.Load(settings.Manifests, settings.JetStream.Streams), cancellationToken);
            var before = components.Manifests;
            if (!loaded.Succeeded)
            {
                OperationsLog.ReloadRefused(_logger, before.Hash[..12], loaded.Errors.Count);
                return new ReloadOutcome(false, before.Hash, before.Hash, loaded.Errors, null, [], []);
            }
            var after = loaded.Set!;
            Instances.SagaCheckReport? check = null;
            var changed = Instances.SagaCheck.ChangedScripts(before, after);
            if (changed.Count > 0 && !force)
            {
                check = await Instances.SagaCheck.RunAsync(components.Nats, settings.SagaOptions(), after, changed, ReloadCheckSample, ReloadCheckBudget, cancellationToken);
                if (check.Refusing.Any())
                {
                    OperationsLog.ReloadDiverged(_logger, before.Hash[..12], after.Hash[..12], string.Join(",", check.Refusing.Select(r => $"{r.Saga}:{r.Diverged.Count}")));
                    return new ReloadOutcome(false, before.Hash, before.Hash, [], null, [], []) { Check = check };
                }
            }
            var changes = ManifestChanges.Between(before, after);
            var (routers, workers) = await components.SwapAsync(after, cancellationToken);
            OperationsLog.Reloaded(_logger, before.Hash[..12], after.Hash[..12],
                string.Join(",", changes.SagasAdded), string.Join(",", changes.SagasRemoved), string.Join(",", changes.SagasChanged),
                string.Join(",", changes.EffectsAdded), string.Join(",", changes.EffectsRemoved), string.Join(",", changes.EffectsChanged));
            return new ReloadOutcome(true, before.Hash, after.Hash, [], changes, routers, workers) { Check = check };
        }
        finally
        {
            _reloading.Release();
        }
    }
}

internal sealed record DrainStatus(string State, string? Cause, DateTimeOffset? StartedAt, long? OutboxDepth, int? EffectsRunning, string? Error);

internal sealed record ReloadOutcome(
    bool Applied,
    string PreviousVersion,
    string Version,
    IReadOnlyList<ManifestError> Errors,
    ManifestChanges? Changes,
    IReadOnlyList<string> RoutersStarted,
    IReadOnlyList<string> EffectWorkersStarted)
{
    /// <summary>The replay of live instances through the changed scripts; null when no script changed or the reload was forced.</summary>
    public Instances.SagaCheckReport? Check { get; init; }
}
