using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Runner.Slices.Cgroups;
using Runner.Slices.Sandbox;

namespace Runner.Slices;

/// <summary>
/// Runs programs as slices: in a cgroup with cpu, memory and pids limits, joined before the
/// program execs; isolated in fresh namespaces by bubblewrap as an unprivileged uid; output read
/// line by line into tagged logs; killed with its whole cgroup on timeout or cancel; the per-slice
/// directory removed after it ends, and the cgroup (made ahead of time) removed in the background.
/// </summary>
internal sealed partial class SliceLauncher : IAsyncDisposable
{
    /// <summary>Cgroups kept ready: enough for back-to-back launches while used ones are removed.</summary>
    private const int SpareCgroups = 2;

    private readonly SliceLauncherOptions _options;
    private readonly CgroupPool? _cgroups;
    private readonly string? _user;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly SystemView _system;

    private SliceLauncher(SliceLauncherOptions options, SystemView system, SliceCapabilities capabilities, CgroupTree? cgroups, ILogger logger, TimeProvider time)
    {
        _options = options;
        _system = system;
        Capabilities = capabilities;
        _cgroups = cgroups is null ? null : new CgroupPool(cgroups, SpareCgroups, logger);
        _user = SliceUser.Resolve(options.Uid, options.Gid);
        _logger = logger;
        _time = time;
    }

    public SliceCapabilities Capabilities { get; }

    public SliceLauncherOptions Options => _options;

    /// <summary>
    /// Probes the node, logs what it found, and kills and removes the slice cgroups a previous
    /// worker left (a worker killed with SIGKILL cannot clean up after itself).
    /// </summary>
    public static async Task<SliceLauncher> StartAsync(SliceLauncherOptions options, ILogger logger, TimeProvider time, CancellationToken cancellationToken)
    {
        // Found on PATH once, so the probe checks the very programs every launch then runs.
        options = options with
        {
            Bwrap = SliceUser.Which(options.Bwrap),
            Setpriv = SliceUser.Which(options.Setpriv),
            Shell = SliceUser.Which(options.Shell),
        };
        var system = SystemView.Create(options.SystemPaths, options.RunDirectory);
        SliceCapabilities capabilities;
        CgroupTree? cgroups;
        try
        {
            (capabilities, cgroups) = await CapabilityProbe.ProbeAsync(options, system, time, cancellationToken);
        }
        catch
        {
            system.Remove();
            throw;
        }
        SlicesLog.Capabilities(logger, capabilities.Isolated, capabilities.Sandbox ?? "none", capabilities.SandboxVersion ?? "-",
            string.Join(",", capabilities.Namespaces), capabilities.CgroupVersion ?? "none", string.Join(",", capabilities.CgroupControllers),
            string.Join(",", capabilities.CgroupBases), capabilities.Uid);
        if (!capabilities.Isolated)
        {
            SlicesLog.IsolationUnavailable(logger, string.Join("; ", capabilities.Problems));
        }
        if (cgroups is not null)
        {
            var removed = await cgroups.RemoveLeftoversAsync(cancellationToken);
            if (removed > 0)
            {
                SlicesLog.LeftoversRemoved(logger, removed, string.Join(",", cgroups.BaseDirectories));
            }
        }
        return new SliceLauncher(options, system, capabilities, cgroups, logger, time);
    }

    /// <summary>
    /// Runs the request to its end. <paramref name="onStdout"/> sees every stdout line first and
    /// returns true for a line it consumed (a protocol line); other lines, and all of stderr, are
    /// logs. Never throws for the program's failure; throws <see cref="OperationCanceledException"/>
    /// after killing and cleaning up when <paramref name="cancellationToken"/> ends it.
    /// </summary>
    public async Task<SliceExit> RunAsync(SandboxRequest request, Func<string, CancellationToken, ValueTask<bool>>? onStdout, CancellationToken cancellationToken)
    {
        if (request.Isolated && !Capabilities.Isolated)
        {
            return new SliceExit { SetupError = "isolation unavailable on this node: " + string.Join("; ", Capabilities.Problems) };
        }
        var key = Key(request);
        var spareKey = key;
        var started = false;
        var clock = Stopwatch.StartNew();
        try
        {
            // Twice at most: a sandbox built ahead that ended before it took the slice never ran it,
            // and the slice gets one started on the spot, which always runs it.
            while (true)
            {
                var (prepared, setupError) = await StartSliceAsync(request, spareKey, cancellationToken);
                if (prepared is null)
                {
                    return new SliceExit { SetupError = setupError };
                }
                started = true;
                SliceExit? exit;
                try
                {
                    exit = await RunInAsync(request, prepared, clock, onStdout, cancellationToken);
                }
                finally
                {
                    if (prepared.Cgroup is not null)
                    {
                        _cgroups!.Return(prepared.Cgroup);
                    }
                    Release(prepared);
                }
                if (exit is not null)
                {
                    return exit;
                }
                Interlocked.Decrement(ref _spareHits);
                spareKey = null;
            }
        }
        finally
        {
            if (started && key is not null)
            {
                MakeSpare(key, request);
            }
        }
    }

    /// <summary>Discards the waiting sandboxes, waits for cgroups being removed in the background, removes the spare cgroups and the <c>/etc</c> snapshot.</summary>
    public async ValueTask DisposeAsync()
    {
        await DiscardSparesAsync();
        if (_cgroups is not null)
        {
            await _cgroups.DisposeAsync();
        }
        try
        {
            _system.Remove();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            SlicesLog.SnapshotRemoveFailed(_logger, ex, ex.Message);
        }
    }

    /// <summary>
    /// Runs the started process to its end and reports how it ended; null for a sandbox built ahead
    /// that ended without taking its trigger (its program never ran).
    /// </summary>
    private async Task<SliceExit?> RunInAsync(SandboxRequest request, Prepared prepared, Stopwatch clock, Func<string, CancellationToken, ValueTask<bool>>? onStdout, CancellationToken cancellationToken)
    {
        using var process = prepared.Process;
        var cgroup = prepared.Cgroup;
        SlicesLog.Started(_logger, request.Tags.RunId, request.Tags.Tenant, request.Tags.CorrelationId, process.Id, cgroup?.Name ?? "-", request.Isolated);

        var output = new Output(this, request.Tags);
        using var pumps = new CancellationTokenSource();
        var stdout = OutputPump.PumpAsync(process.StandardOutput.BaseStream, _options.MaxLineBytes, line => output.StdoutAsync(line, onStdout, pumps.Token), pumps.Token);
        var stderr = OutputPump.PumpAsync(process.StandardError.BaseStream, _options.MaxLineBytes, output.Stderr, pumps.Token);

        var timedOut = false;
        using (var timer = new CancellationTokenSource(request.Timeout, _time))
        using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token))
        {
            try
            {
                await process.WaitForExitAsync(deadline.Token);
            }
            catch (OperationCanceledException)
            {
                timedOut = !cancellationToken.IsCancellationRequested;
                await KillAsync(process, cgroup);
                await process.WaitForExitAsync(CancellationToken.None);
            }
        }
        // Whatever the program left behind dies with it; then nothing holds the pipes and the pumps end.
        if (cgroup is not null)
        {
            await cgroup.KillAsync(CancellationToken.None);
        }
        var wallMs = clock.ElapsedMilliseconds;
        // Taken back, the byte can release nothing any more (not even a part of the sandbox that
        // outlived the rest); a slice that was cancelled or ran out of time is not started again.
        var neverReleased = !timedOut && !cancellationToken.IsCancellationRequested && prepared.Trigger?.TakeBack() == true;
        await FinishPumpsAsync(stdout, stderr, pumps);
        cancellationToken.ThrowIfCancellationRequested();
        if (neverReleased)
        {
            SlicesLog.SpareDied(_logger, request.Tags.RunId, request.Tags.Tenant, request.Tags.CorrelationId, process.Id);
            return null;
        }

        var usage = cgroup?.ReadUsage();
        var code = process.ExitCode;
        var exit = new SliceExit
        {
            ExitCode = code is >= 0 and <= 128 ? code : null,
            Signal = code > 128 ? code - 128 : null,
            TimedOut = timedOut,
            OomKilled = usage?.OomKilled ?? false,
            PidsLimited = usage?.PidsLimited ?? false,
            WallMs = wallMs,
            CpuMs = usage?.CpuMs,
            CpuThrottledMs = usage?.CpuThrottledMs,
            PeakMemoryBytes = usage?.PeakMemoryBytes,
            StderrTail = output.Tail(),
            DroppedLines = output.Dropped,
            SetupError = SetupError(request, code, output),
        };
        if (exit.DroppedLines > 0)
        {
            SlicesLog.OutputDropped(_logger, request.Tags.RunId, request.Tags.Tenant, request.Tags.CorrelationId, exit.DroppedLines);
        }
        SlicesLog.Ended(_logger, request.Tags.RunId, request.Tags.Tenant, request.Tags.CorrelationId, exit.ExitCode ?? -1, exit.Signal ?? 0,
            exit.TimedOut, exit.OomKilled, exit.WallMs, exit.CpuMs ?? -1, exit.PeakMemoryBytes ?? -1);
        return exit;
    }

    /// <summary>The wrapper's own failure (cgroup join), or bubblewrap's (it prefixes its errors), means the program never ran.</summary>
    private static string? SetupError(SandboxRequest request, int code, Output output)
    {
        if (code == SandboxCommand.JoinFailedExit && output.FirstStderr is { } joinError && joinError.Contains("cgroup", StringComparison.Ordinal))
        {
            return "could not join the slice's cgroup: " + joinError;
        }
        if (request.Isolated && code == 1 && output.FirstStderr is { } first && first.StartsWith("bwrap: ", StringComparison.Ordinal))
        {
            return "the sandbox could not be built: " + first;
        }
        return null;
    }

    private static async Task KillAsync(Process process, SliceCgroup? cgroup)
    {
        if (cgroup is not null)
        {
            await cgroup.KillAsync(CancellationToken.None);
        }
        else
        {
            process.Kill(entireProcessTree: true);
        }
    }

    /// <summary>The pumps end when the pipes close; a descendant that escaped the cgroup could hold them, so it is bounded.</summary>
    private async Task FinishPumpsAsync(Task stdout, Task stderr, CancellationTokenSource pumps)
    {
        var both = Task.WhenAll(stdout, stderr);
        if (await Task.WhenAny(both, Task.Delay(TimeSpan.FromSeconds(5), _time, CancellationToken.None)) != both)
        {
            await pumps.CancelAsync();
        }
        try
        {
            await both;
        }
        catch (OperationCanceledException) when (pumps.IsCancellationRequested)
        {
            // Cut off: what was read is kept.
        }
    }
}
