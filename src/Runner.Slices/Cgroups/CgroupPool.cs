using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.Extensions.Logging;

namespace Runner.Slices.Cgroups;

/// <summary>
/// Slice cgroups made ahead of time, so that neither making one (a directory per v1 hierarchy)
/// nor removing it lies between a command and its result. A sandbox (for a slice, or started ahead
/// for the next one) takes a spare, which gets limits before anything joins it — a sandbox started
/// ahead gets its slice's own before the slice runs; a used cgroup is never reused (its counters and, on
/// v1, the page cache charged to it would carry over): after the slice it is killed and removed in
/// the background, and a new spare is made in its place.
/// </summary>
internal sealed class CgroupPool : IAsyncDisposable
{
    private readonly CgroupTree _tree;
    private readonly int _spares;
    private readonly ILogger _logger;
    private readonly ConcurrentQueue<SliceCgroup> _ready = new();
    private readonly Lock _gate = new();
    private readonly string _prefix = "c" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(3)) + "-";
    private Task _background = Task.CompletedTask;
    private long _next;
    private bool _disposed;

    public CgroupPool(CgroupTree tree, int spares, ILogger logger)
    {
        _tree = tree;
        _spares = spares;
        _logger = logger;
        Schedule(null);
    }

    public CgroupTree Tree => _tree;

    /// <summary>A cgroup with <paramref name="limits"/> written, nothing in it yet.</summary>
    public SliceCgroup Take(CgroupLimits limits)
    {
        // A spare can be gone: a sweep by another worker given the same base removes it.
        while (_ready.TryDequeue(out var spare))
        {
            if (TrySetLimits(spare, limits))
            {
                Schedule(null);
                return spare;
            }
        }
        var group = _tree.CreateEmpty(NextName());
        if (!TrySetLimits(group, limits))
        {
            throw new IOException($"cgroup {group.Name} vanished as it was made");
        }
        Schedule(null);
        return group;
    }

    private bool TrySetLimits(SliceCgroup group, CgroupLimits limits)
    {
        try
        {
            _tree.SetLimits(group, limits, null);
            return true;
        }
        catch (Exception ex) when (ex is DirectoryNotFoundException or FileNotFoundException)
        {
            Return(group);
            return false;
        }
        catch
        {
            Return(group);
            throw;
        }
    }

    /// <summary>A slice is done with its cgroup: whatever is left in it is killed, and the cgroup removed, in the background.</summary>
    public void Return(SliceCgroup group) => Schedule(group);

    /// <summary>Waits for the background work, then removes the spares.</summary>
    public async ValueTask DisposeAsync()
    {
        Task background;
        lock (_gate)
        {
            _disposed = true;
            background = _background;
        }
        await background;
        while (_ready.TryDequeue(out var spare))
        {
            await RemoveAsync(spare);
        }
    }

    /// <summary>One piece of background work at a time, in order: it competes with slices for the same CPUs.</summary>
    private void Schedule(SliceCgroup? used)
    {
        lock (_gate)
        {
            if (_disposed && used is null)
            {
                return;
            }
            _background = _background.ContinueWith(_ => WorkAsync(used), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default).Unwrap();
        }
    }

    private async Task WorkAsync(SliceCgroup? used)
    {
        if (used is not null)
        {
            await RemoveAsync(used);
        }
        try
        {
            // A base that is gone (a sweep, or a test's clean-up) is not made again from here.
            while (!_disposed && _ready.Count < _spares && _tree.BaseDirectories.All(Directory.Exists))
            {
                _ready.Enqueue(_tree.CreateEmpty(NextName()));
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            SlicesLog.CgroupPoolFailed(_logger, ex, ex.Message);
        }
    }

    private async Task RemoveAsync(SliceCgroup group)
    {
        try
        {
            await group.RemoveAsync(CancellationToken.None);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            SlicesLog.CgroupPoolFailed(_logger, ex, ex.Message);
        }
    }

    private string NextName() => _prefix + Interlocked.Increment(ref _next).ToString(CultureInfo.InvariantCulture);
}
