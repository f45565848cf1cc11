using System.Runtime.InteropServices;
using Runner.Slice.Engine;
using Runner.Slice.Lineage;
using Runner.Slice.Nats;

namespace Runner.Slice;

/// <summary>
/// <c>runner-slice run SPEC_FILE [--events] [--lineage FILE]</c>: runs a spec and prints the result
/// JSON on stdout; the exit code says how it ended (0 succeeded, 1 failed, 2 invalid spec, 3 contract
/// threshold exceeded, 4 aborted by SIGTERM/SIGINT after draining). With <c>--events</c>, stdout
/// carries JSON envelopes for the effect worker: lineage events as they happen, then the result.
/// Lineage otherwise goes to <c>--lineage FILE</c> (JSON lines) or, when <c>RUNNER_NATS_URL</c> is
/// set, to the LINEAGE stream.
/// </summary>
internal static class RunCommand
{
    public static async Task<int> RunAsync(string specFile, bool events, string? lineageFile, CancellationToken cancellationToken)
    {
        var stdout = Console.OpenStandardOutput();
        var writer = new EventWriter(stdout);
        var (spec, contracts, problems) = ValidateCommand.Load(specFile);
        if (problems.Count > 0 || spec is null)
        {
            foreach (var problem in problems)
            {
                await Console.Error.WriteLineAsync(problem.ToString()).ConfigureAwait(false);
            }
            var invalid = RunResult.Invalid(problems.Select(p => p.ToString()));
            await WriteResultAsync(stdout, writer, events, invalid, cancellationToken).ConfigureAwait(false);
            return invalid.ExitCode;
        }

        using var drain = new CancellationTokenSource();
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Drain);
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Drain);
        void Drain(PosixSignalContext context)
        {
            context.Cancel = true;
            drain.Cancel();
        }

        RunResult result;
        try
        {
            result = await RunSpecAsync(spec, contracts, events, lineageFile, writer, drain.Token, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Whatever went wrong, the caller still gets a result saying what.
            await Console.Error.WriteLineAsync($"runner-slice: {e}").ConfigureAwait(false);
            result = RunResult.Failure(spec.Run.Id, e.Message);
        }
        await WriteResultAsync(stdout, writer, events, result, cancellationToken).ConfigureAwait(false);
        return result.ExitCode;
    }

    private static async Task<RunResult> RunSpecAsync(Specs.SliceSpec spec, Contracts.RunContracts contracts, bool events, string? lineageFile,
        EventWriter writer, CancellationToken drain, CancellationToken cancellationToken)
    {
        await using var nats = await SliceNats.ConnectAsync(cancellationToken).ConfigureAwait(false);
        ILineageSink lineage = events ? new EnvelopeLineageSink(writer)
            : lineageFile is not null ? new FileLineageSink(lineageFile)
            : nats is not null ? nats.Lineage(spec)
            : new NoLineageSink();
        await using (lineage.ConfigureAwait(false))
        {
            var options = new RunOptions
            {
                Log = Console.Error,
                RunningInterval = TimeSpan.FromMilliseconds(EnvironmentNumber("RUNNER_SLICE_RUNNING_EVERY_MS", 30_000)),
                MaxLineBytes = (int)EnvironmentNumber("RUNNER_SLICE_MAX_LINE_BYTES", SourceLimits.DefaultMaxLineBytes),
            };
            var runner = new SliceRunner(spec, contracts, options, lineage, nats?.Endpoints() ?? new EndpointFactory());
            return await runner.RunAsync(drain, cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task WriteResultAsync(Stream stdout, EventWriter writer, bool events, RunResult result, CancellationToken cancellationToken)
    {
        if (events)
        {
            await writer.WriteAsync("result", "result", result.Json.ToArray(), cancellationToken).ConfigureAwait(false);
            return;
        }
        await stdout.WriteAsync(result.Json, cancellationToken).ConfigureAwait(false);
        await stdout.WriteAsync("\n"u8.ToArray(), cancellationToken).ConfigureAwait(false);
        await stdout.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private static long EnvironmentNumber(string name, long fallback) =>
        long.TryParse(Environment.GetEnvironmentVariable(name), out var value) && value > 0 ? value : fallback;
}
