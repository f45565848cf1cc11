using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Runner.Slices;

namespace Runner.Effects.Providers.Slices;

/// <summary>
/// How a slice's end becomes the effect's outcome. runner-slice's exit codes: 0 success, 1 failed,
/// 2 invalid spec or usage, 3 contract violations over the threshold, 4 aborted by a signal
/// (SIGTERM: it finished its batch and checkpointed). The launcher adds timeout, OOM kill, other
/// signals and a sandbox that could not be built.
/// </summary>
internal static class SliceOutcomes
{
    public const string SliceFailed = "slice_failed";
    public const string InvalidSpec = "invalid_spec";
    public const string ContractThresholdExceeded = "contract_threshold_exceeded";
    public const string Aborted = "aborted";
    public const string Timeout = "timeout";
    public const string OomKilled = "oom_killed";
    public const string KilledBySignal = "killed_by_signal";
    public const string IsolationUnavailable = "isolation_unavailable";
    public const string SandboxFailed = "sandbox_failed";

    /// <summary>runner-slice exited 0 but no result envelope came through: what it did is unknown, so it is no success.</summary>
    public const string ResultMissing = "result_missing";

    public static AttemptOutcome Of(SliceExit exit, SliceProvider.EventReader events, bool isolated)
    {
        var failed = exit.ExitCode != 0 || exit.TimedOut || exit.SetupError is not null;
        var details = Details(exit, events, isolated, failed);
        if (!failed)
        {
            // A result cut at the line limit or malformed was counted, not read: without it the saga
            // would take an unknown run for a success with nothing to report. A retry of the same
            // run id replays the stored result of a run that did complete.
            return events.OutputJson is null
                ? AttemptOutcome.Permanent(new EffectError(ResultMissing, "the slice exited 0 without a readable result envelope on stdout", DetailsJson: details))
                : AttemptOutcome.Success(details);
        }
        var (code, message) = Classify(exit);
        var last = exit.StderrTail.Count > 0 ? ": " + exit.StderrTail[^1] : string.Empty;
        return AttemptOutcome.Permanent(new EffectError(code, message + (exit.SetupError is null ? last : string.Empty), DetailsJson: details));
    }

    private static (string Code, string Message) Classify(SliceExit exit)
    {
        var invariant = CultureInfo.InvariantCulture;
        if (exit.SetupError is { } setup)
        {
            // A pool that requires isolation on a node without it never gets here: the provider refuses it first.
            return (SandboxFailed, setup);
        }
        if (exit.TimedOut)
        {
            return (Timeout, string.Create(invariant, $"the slice ran past its timeout and was killed with its whole cgroup after {exit.WallMs} ms"));
        }
        if (exit.OomKilled)
        {
            return (OomKilled, "the slice exceeded its memory limit and was killed by the kernel's OOM killer");
        }
        return exit.ExitCode switch
        {
            1 => (SliceFailed, "runner-slice failed (exit 1)"),
            2 => (InvalidSpec, "runner-slice refused the spec (exit 2)"),
            3 => (ContractThresholdExceeded, "contract violations exceeded the spec's threshold (exit 3)"),
            4 => (Aborted, "runner-slice was aborted by a signal and checkpointed (exit 4)"),
            { } code => (SliceFailed, string.Create(invariant, $"the slice exited {code}")),
            null => (KilledBySignal, string.Create(invariant, $"the slice was killed by signal {exit.Signal}") + (exit.PidsLimited ? " (its pids limit refused forks)" : string.Empty)),
        };
    }

    /// <summary><c>{ exit_code, signal, oom_killed, timed_out, pids_limited, wall_ms, cpu_ms, cpu_throttled_ms, peak_memory_bytes, stderr_tail, output, … }</c>.</summary>
    private static string Details(SliceExit exit, SliceProvider.EventReader events, bool isolated, bool failed)
    {
        var buffer = new ArrayBufferWriter<byte>(512 + (events.OutputJson?.Length ?? 0));
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            WriteNumber(writer, "exit_code", exit.ExitCode);
            WriteNumber(writer, "signal", exit.Signal);
            writer.WriteBoolean("oom_killed", exit.OomKilled);
            writer.WriteBoolean("timed_out", exit.TimedOut);
            writer.WriteBoolean("pids_limited", exit.PidsLimited);
            writer.WriteNumber("wall_ms", exit.WallMs);
            WriteNumber(writer, "cpu_ms", exit.CpuMs);
            WriteNumber(writer, "cpu_throttled_ms", exit.CpuThrottledMs);
            WriteNumber(writer, "peak_memory_bytes", exit.PeakMemoryBytes);
            writer.WriteStartArray("stderr_tail");
            if (failed)
            {
                foreach (var line in exit.StderrTail)
                {
                    writer.WriteStringValue(line.Length > 1024 ? line[..1024] : line);
                }
            }
            writer.WriteEndArray();
            writer.WritePropertyName("output");
            writer.WriteRawValue(events.OutputJson ?? "null");
            writer.WriteNumber("lineage_events", events.LineageEvents);
            writer.WriteNumber("lineage_failed", events.LineageFailed);
            writer.WriteNumber("malformed_events", events.Malformed);
            writer.WriteNumber("dropped_log_lines", exit.DroppedLines);
            writer.WriteBoolean("isolated", isolated);
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static void WriteNumber(Utf8JsonWriter writer, string name, long? value)
    {
        if (value is { } number)
        {
            writer.WriteNumber(name, number);
        }
        else
        {
            writer.WriteNull(name);
        }
    }
}
