using Runner.Slices.Sandbox;

namespace Runner.Slices;

internal sealed partial class SliceLauncher
{
    /// <summary>One slice's output: tagged logs within a budget, and the last lines of stderr for a failed result.</summary>
    private sealed class Output(SliceLauncher launcher, SliceTags tags)
    {
        private readonly LogBudget _budget = new(launcher._options.LogLinesPerSecond, launcher._options.LogBurst, launcher._time);
        private readonly Queue<string> _tail = new();
        private readonly Lock _lock = new();

        public long Dropped => _budget.Dropped;

        public string? FirstStderr { get; private set; }

        public async ValueTask StdoutAsync(string line, Func<string, CancellationToken, ValueTask<bool>>? onStdout, CancellationToken cancellationToken)
        {
            if (onStdout is not null && await onStdout(line, cancellationToken))
            {
                return;
            }
            Log("stdout", line);
        }

        public ValueTask Stderr(string line)
        {
            lock (_lock)
            {
                FirstStderr ??= line;
                _tail.Enqueue(line);
                while (_tail.Count > launcher._options.StderrTailLines)
                {
                    _tail.Dequeue();
                }
            }
            Log("stderr", line);
            return ValueTask.CompletedTask;
        }

        public IReadOnlyList<string> Tail()
        {
            lock (_lock)
            {
                return [.. _tail];
            }
        }

        private void Log(string stream, string line)
        {
            if (_budget.TryTake())
            {
                SlicesLog.Output(launcher._logger, tags.RunId, tags.Tenant, tags.CorrelationId, stream, line);
            }
        }
    }
}
