using System.Diagnostics;
using NATS.Client.Core;

namespace Runner.Bench.Cold;

/// <summary>
/// Counts the tally saga's commands as they reach <c>workflow.cmd.&gt;</c> (a re-sent one, same <c>Nats-Msg-Id</c>,
/// counts once) and, at the end of every group of accounts, notes the time and the CPU the runner, nats-server, the
/// bench and the machine have used: command <c>200 (g + 1)</c> means events up to <c>1,000 (g + 1)</c> are applied.
/// </summary>
internal sealed class CommandObserver(int expected, int? natsPid)
{
    private readonly int _groups = expected / ColdWorkload.GroupKeys;
    private readonly HashSet<string> _seen = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Sample[] _samples = [];
    private Sample _start;
    private int _pid;
    private long _started;
    private int _arrived;
    private Func<CancellationToken, Task<MetricsReading?>>? _metrics;
    private readonly Dictionary<int, Task<MetricsReading?>> _metricsAt = [];

    private readonly record struct Sample(long Timestamp, double Runner, double Nats, double Self, double MachineBusy, double MachineTotal);

    public Task Done => _done.Task;

    public int Arrived => Volatile.Read(ref _arrived);

    /// <summary>The runner process to sample from now on, and when it was started; <paramref name="metrics"/> reads its GC and JIT totals at the edges of both windows.</summary>
    public void Watch(int pid, long started, Func<CancellationToken, Task<MetricsReading?>>? metrics = null)
    {
        _metrics = metrics;
        _pid = pid;
        _started = started;
        _samples = new Sample[_groups];
        _start = Take();
    }

    public async Task RunAsync(INatsSub<byte[]> subscription, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var msg in subscription.Msgs.ReadAllAsync(cancellationToken))
            {
                if (msg.Headers?.TryGetValue("Nats-Msg-Id", out var id) == true && !_seen.Add(id.ToString()))
                {
                    continue;
                }
                var arrived = Interlocked.Increment(ref _arrived);
                if (arrived % ColdWorkload.GroupKeys == 0 && arrived / ColdWorkload.GroupKeys <= _samples.Length)
                {
                    var index = (arrived / ColdWorkload.GroupKeys) - 1;
                    _samples[index] = Take();
                    if (_metrics is { } read && (index == 0 || index == FirstGroups || index == SteadyFrom || index == _groups - 1))
                    {
                        // Not awaited: the count goes on while the runner answers.
                        _metricsAt[index] = read(cancellationToken);
                    }
                }
                if (arrived == expected)
                {
                    _done.TrySetResult();
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private Sample Take()
    {
        var (busy, _, total) = CpuSnapshot.Machine();
        return new Sample(Stopwatch.GetTimestamp(), CpuSnapshot.ProcessSeconds($"/proc/{_pid}/stat"),
            natsPid is { } nats ? CpuSnapshot.ProcessSeconds($"/proc/{nats}/stat") : 0, CpuSnapshot.ProcessSeconds("/proc/self/stat"), busy, total);
    }

    private const int FirstGroups = ColdBench.FirstEvents / ColdWorkload.GroupEvents;

    private int SteadyFrom => (int)(_groups * 0.6);

    /// <summary>The runner's GC and JIT figures over the first window and the steady state (null where a reading is missing).</summary>
    public async Task<(MetricsWindow? First, MetricsWindow? Steady)> WindowsAsync()
    {
        async Task<MetricsWindow?> Window(int from, int to) =>
            _metricsAt.TryGetValue(from, out var a) && _metricsAt.TryGetValue(to, out var b) && await a is { } start && await b is { } end ? end.Since(start, (to - from) * ColdWorkload.GroupEvents) : null;
        return (await Window(0, FirstGroups), await Window(SteadyFrom, _groups - 1));
    }

    public ColdResult Result(string variant, bool pipelined, int events)
    {
        var s = _samples;
        var steadyFrom = SteadyFrom;
        double Seconds(Sample from, Sample to) => Stopwatch.GetElapsedTime(from.Timestamp, to.Timestamp).TotalSeconds;
        double Rate(int from, int to) => (to - from) * (double)ColdWorkload.GroupEvents / Seconds(s[from], s[to]);
        double Us(Func<Sample, double> cpu, int from, int to) => (cpu(s[to]) - cpu(s[from])) * 1e6 / ((to - from) * (double)ColdWorkload.GroupEvents);
        var perChunk = new List<double>();
        for (var g = 0; g + FirstGroups < _groups; g += FirstGroups)
        {
            perChunk.Add(Rate(g, g + FirstGroups));
        }
        var end = s[_groups - 1];
        var machine = end.MachineTotal - _start.MachineTotal;
        var others = (end.MachineBusy - _start.MachineBusy) - (end.Runner - _start.Runner) - (end.Nats - _start.Nats) - (end.Self - _start.Self);
        return new ColdResult(variant, pipelined,
            StartMs: Stopwatch.GetElapsedTime(_started, s[0].Timestamp).TotalMilliseconds,
            FirstDoneMs: Stopwatch.GetElapsedTime(_started, s[FirstGroups].Timestamp).TotalMilliseconds,
            FirstRate: Rate(0, FirstGroups),
            SteadyRate: Rate(steadyFrom, _groups - 1),
            FirstRunnerUs: Us(x => x.Runner, 0, FirstGroups),
            FirstNatsUs: Us(x => x.Nats, 0, FirstGroups),
            SteadyRunnerUs: Us(x => x.Runner, steadyFrom, _groups - 1),
            SteadyNatsUs: Us(x => x.Nats, steadyFrom, _groups - 1),
            OtherCpuShare: machine > 0 ? Math.Max(0, others) / machine : 0,
            RatePer20k: perChunk);
    }
}
