using System.Diagnostics;
using System.Threading.Channels;
using Runner.Slice.Contracts;
using Runner.Slice.Lineage;
using Runner.Slice.Specs;

namespace Runner.Slice.Engine;

/// <summary>Builds a run's source and outputs from the spec's endpoints.</summary>
internal interface IEndpointFactory
{
    ISource CreateSource(Endpoint endpoint, SliceSpec spec, Checkpoint? resume);

    ISink CreateSink(Endpoint endpoint, SliceSpec spec, FieldTable fields, bool deadLetter);
}

/// <summary>
/// Runs one slice: source → source contract, transforms, sink contract → sink, each stage on its
/// own task, joined by bounded channels so a slow sink slows the source and memory stays flat. The
/// sink stage commits every <c>checkpoint.every_batches</c> batches (outputs fsynced first, then
/// the checkpoint), so a killed run resumes from its last checkpoint and writes exactly what an
/// uninterrupted run writes.
/// Drain (SIGTERM) stops the source at a batch boundary; what is in flight is written, committed
/// and checkpointed, and the run ends aborted.
/// </summary>
internal sealed class SliceRunner
{
    private readonly SliceSpec _spec;
    private readonly RunContracts _contracts;
    private readonly RunOptions _options;
    private readonly ILineageSink _lineage;
    private readonly IEndpointFactory _endpoints;
    private readonly string? _checkpointPath;

    public SliceRunner(SliceSpec spec, RunContracts contracts, RunOptions options, ILineageSink lineage, IEndpointFactory endpoints)
    {
        _spec = spec;
        _contracts = contracts;
        _options = options;
        _lineage = lineage;
        _endpoints = endpoints;
        _checkpointPath = spec.Checkpoint is { } checkpoint ? spec.Expand(checkpoint.Path) : null;
    }

    public async Task<RunResult> RunAsync(CancellationToken drain, CancellationToken cancellationToken)
    {
        var started = _options.Time.GetTimestamp();
        var resume = _checkpointPath is null ? null : Checkpoint.Load(_checkpointPath, _spec.Run.Id);
        if (resume is { State: Checkpoint.Completed, Result: { } stored })
        {
            // Completion is recorded before the outputs are renamed into place: a run that died in
            // between finishes its renames now.
            foreach (var endpoint in new[] { _spec.Sink, _spec.DeadLetter })
            {
                if (endpoint is { Type: Endpoint.Jsonl or Endpoint.Csv, Path: { } path })
                {
                    FileSink.CompletePublish(_spec.Expand(path));
                }
            }
            return RunResult.Replayed(stored);
        }

        var fields = new FieldTable();
        var transforms = new TransformStage(_spec, _contracts, fields);
        var totals = resume?.Totals ?? new RunTotals();
        var source = _endpoints.CreateSource(_spec.Source, _spec, resume);
        var sink = _endpoints.CreateSink(_spec.Sink, _spec, fields, deadLetter: false);
        var deadLetters = _spec.DeadLetter is { } dl ? _endpoints.CreateSink(dl, _spec, fields, deadLetter: true) : null;
        var state = new RunState(totals, source, sink, deadLetters, fields, transforms);
        await using (source.ConfigureAwait(false))
        await using (sink.ConfigureAwait(false))
        {
            await EmitAsync("START", state, null, cancellationToken).ConfigureAwait(false);
            RunOutcome outcome;
            string? error = null;
            try
            {
                await sink.OpenAsync(resume?.Sink, cancellationToken).ConfigureAwait(false);
                if (deadLetters is not null)
                {
                    await deadLetters.OpenAsync(resume?.DeadLetter, cancellationToken).ConfigureAwait(false);
                }
                var drained = await PumpAsync(state, resume, drain, cancellationToken).ConfigureAwait(false);
                outcome = drained ? RunOutcome.Aborted : Judge(totals, out error);
            }
            catch (ContractFailedException e)
            {
                outcome = RunOutcome.ContractThresholdExceeded;
                error = e.Message;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException or StageFailedException)
            {
                outcome = RunOutcome.Failed;
                error = (e as StageFailedException)?.InnerException?.Message ?? e.Message;
            }
            RunResult result;
            try
            {
                result = await FinishAsync(state, outcome, error, started, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Publishing failed (a full disk, a lost directory): the temp outputs and checkpoint stay for a re-run.
                outcome = RunOutcome.Failed;
                error = $"publishing the outputs failed: {e.Message}";
                result = new RunResult(_spec, outcome, error, state.Totals, sink, deadLetters, _options.Time.GetElapsedTime(started),
                    _checkpointPath, state.SourcePosition, [state.SourceMetrics, .. state.Transforms.Metrics, state.SinkMetrics], state.Pool.Created);
            }
            await EmitAsync(RunOutcomes.LineageEventType(outcome), state, error, cancellationToken).ConfigureAwait(false);
            if (deadLetters is not null)
            {
                await deadLetters.DisposeAsync().ConfigureAwait(false);
            }
            return result;
        }
    }

    private sealed record RunState(RunTotals Totals, ISource Source, ISink Sink, ISink? DeadLetters, FieldTable Fields, TransformStage Transforms)
    {
        public StageMetrics SourceMetrics { get; } = new("source");

        public StageMetrics SinkMetrics { get; } = new("sink");

        public BatchPool Pool { get; } = new();


        public long SourcePosition { get; set; }

        public long SourceLine { get; set; }
    }

    /// <summary>Runs the stages to the end of the input or a drain; true when it drained.</summary>
    private async Task<bool> PumpAsync(RunState state, Checkpoint? resume, CancellationToken drain, CancellationToken cancellationToken)
    {
        state.SourcePosition = resume?.SourcePosition ?? 0;
        state.SourceLine = resume?.SourceLine ?? 0;
        var options = new BoundedChannelOptions(_options.ChannelCapacity) { SingleReader = true, SingleWriter = true, FullMode = BoundedChannelFullMode.Wait };
        var parsed = Channel.CreateBounded<RecordBatch>(options);
        var transformed = Channel.CreateBounded<RecordBatch>(options);
        var pool = state.Pool;
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var context = new SourceContext
        {
            Fields = state.Fields,
            Pool = pool,
            Output = parsed.Writer,
            Batch = _spec.Batch,
            Drain = drain,
            EventTime = _spec.EventTime is { } eventTime
                ? new EventTimeTracker(state.Fields.Intern(eventTime.Field), eventTime.Field, TimeSpan.FromMilliseconds(eventTime.AllowedLatenessMs))
                : null,
            MaxLineBytes = _options.MaxLineBytes,
            Metrics = state.SourceMetrics,
            Time = _options.Time,
        };
        using var running = _options.Time.CreateTimer(_ => _ = EmitRunningAsync(state, cancellationToken), null, _options.RunningInterval, _options.RunningInterval);
        var tasks = new[]
        {
            Stage("source", async () => await state.Source.RunAsync(context, failed.Token).ConfigureAwait(false), parsed.Writer, failed),
            Stage("transform", () => TransformAsync(state, parsed.Reader, transformed.Writer, failed.Token), transformed.Writer, failed),
            Stage("sink", () => SinkAsync(state, transformed.Reader, pool, failed.Token), null, failed),
        };
        try
        {
            await Task.WhenAll(tasks).ConfigureAwait(false);
        }
        catch (Exception) when (tasks.Select(t => t.Exception?.InnerException).FirstOrDefault(e => e is not null and not OperationCanceledException) is { } cause)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(cause);
        }
        return drain.IsCancellationRequested && !_lastBatchWasEnd;
    }

    private bool _lastBatchWasEnd;

    /// <summary>Runs a stage; a failure cancels the others and completes its output channel so they stop.</summary>
    private static async Task Stage(string name, Func<Task> body, ChannelWriter<RecordBatch>? output, CancellationTokenSource failed)
    {
        try
        {
            await Task.Yield();
            await body().ConfigureAwait(false);
            output?.TryComplete();
        }
        catch (OperationCanceledException) when (failed.IsCancellationRequested)
        {
            output?.TryComplete();
            throw;
        }
        catch (Exception e)
        {
            output?.TryComplete(e);
            await failed.CancelAsync().ConfigureAwait(false);
            throw e is ContractFailedException ? e : new StageFailedException(name, e);
        }
    }

    private async Task TransformAsync(RunState state, ChannelReader<RecordBatch> input, ChannelWriter<RecordBatch> output, CancellationToken cancellationToken)
    {
        while (await input.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            while (input.TryRead(out var batch))
            {
                state.Transforms.Apply(batch, input.CanCount ? input.Count : 0);
                await output.WriteAsync(batch, cancellationToken).ConfigureAwait(false);
                if (batch.EndOfStream || batch.Drained)
                {
                    return;
                }
            }
        }
    }

    private async Task SinkAsync(RunState state, ChannelReader<RecordBatch> input, BatchPool pool, CancellationToken cancellationToken)
    {
        var every = _spec.Checkpoint?.EveryBatches ?? 16;
        var sinceCommit = 0;
        object? acknowledge = null;
        while (await input.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            while (input.TryRead(out var batch))
            {
                var started = Stopwatch.GetTimestamp();
                long written = 0;
                for (var i = 0; i < batch.Count; i++)
                {
                    var record = batch[i];
                    if (record.Live)
                    {
                        state.Sink.Write(record);
                        written++;
                    }
                }
                batch.DeadLetters.Sort(static (a, b) => a.Offset.CompareTo(b.Offset));
                foreach (var dead in batch.DeadLetters)
                {
                    if (state.DeadLetters is { } deadLetters)
                    {
                        deadLetters.WriteDeadLetter(dead, batch, _spec.Run.Id);
                    }
                    else
                    {
                        // No dead-letter output: the record still goes somewhere a person can see it.
                        await LogDeadLetterAsync(dead, batch).ConfigureAwait(false);
                    }
                    state.Totals.DeadLetteredByCode[dead.Code] = state.Totals.DeadLetteredByCode.GetValueOrDefault(dead.Code) + 1;
                    state.Totals.DeadLetteredByStage[dead.Stage] = state.Totals.DeadLetteredByStage.GetValueOrDefault(dead.Stage) + 1;
                    if (dead.Violations is { } violations)
                    {
                        var byField = dead.Stage == ContractStage.Input ? state.Totals.InputViolationsByField : state.Totals.ViolationsByField;
                        lock (byField)
                        {
                            foreach (var field in violations.Select(v => v.Field).Distinct(StringComparer.Ordinal))
                            {
                                byField[field] = byField.GetValueOrDefault(field) + 1;
                            }
                        }
                    }
                }
                state.Totals.RecordsIn += batch.RecordsIn;
                state.Totals.RecordsOut += written;
                state.Totals.DeadLettered += batch.DeadLetters.Count;
                state.Totals.Filtered += batch.Filtered;
                state.Totals.BytesIn += batch.BytesIn;
                state.Totals.Batches++;
                state.SinkMetrics.In(batch.Count);
                state.SinkMetrics.Out(written);
                await state.Sink.FlushAsync(cancellationToken).ConfigureAwait(false);
                if (state.DeadLetters is not null)
                {
                    await state.DeadLetters.FlushAsync(cancellationToken).ConfigureAwait(false);
                }
                state.SourcePosition = batch.EndPosition;
                state.SourceLine = batch.EndLine;
                state.SinkMetrics.Batch(input.CanCount ? input.Count : 0, started);
                var last = batch.EndOfStream || batch.Drained;
                _lastBatchWasEnd = batch.EndOfStream;
                acknowledge = batch.SourceState ?? acknowledge;
                pool.Return(batch);
                if (++sinceCommit >= every || last)
                {
                    await CommitAsync(state, acknowledge, cancellationToken).ConfigureAwait(false);
                    acknowledge = null;
                    sinceCommit = 0;
                }
                if (last)
                {
                    return;
                }
            }
        }
    }

    /// <summary>Makes the outputs durable, then records the checkpoint, then lets the source acknowledge.</summary>
    private async Task CommitAsync(RunState state, object? acknowledge, CancellationToken cancellationToken)
    {
        var sink = await state.Sink.CommitAsync(cancellationToken).ConfigureAwait(false);
        var dead = state.DeadLetters is null ? null : await state.DeadLetters.CommitAsync(cancellationToken).ConfigureAwait(false);
        if (_checkpointPath is not null)
        {
            new Checkpoint(_spec.Run.Id, Checkpoint.Running, state.SourcePosition, state.SourceLine, sink, dead, state.Totals).Save(_checkpointPath);
        }
        if (acknowledge is not null)
        {
            await state.Source.CommittedAsync(acknowledge, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Fails a run whose refused share of the input is over a contract's maximum. Both shares are
    /// of every record read: the source's contract bounds those refused before any transform
    /// (unreadable, late, or breaking it); the sink's bounds every dead letter, of either side.
    /// </summary>
    private RunOutcome Judge(RunTotals totals, out string? error)
    {
        error = null;
        if (totals.RecordsIn == 0)
        {
            return RunOutcome.Succeeded;
        }
        if (_spec.Source.Contract is { } input && Exceeds(input, totals.RefusedBeforeTransforms, totals.RecordsIn, "were refused before the transforms", out error))
        {
            return RunOutcome.ContractThresholdExceeded;
        }
        if (_spec.Sink.Contract is { } output && Exceeds(output, totals.DeadLettered, totals.RecordsIn, "were dead-lettered", out error))
        {
            return RunOutcome.ContractThresholdExceeded;
        }
        return RunOutcome.Succeeded;
    }

    private static bool Exceeds(ContractRef contract, long refused, long read, string what, out string? error)
    {
        var ratio = (double)refused / read;
        error = ratio <= contract.MaxViolationRatio ? null
            : $"{refused} of {read} records {what} ({ratio:P2}), more than {contract.Key}.max_violation_ratio {contract.MaxViolationRatio:P2}";
        return error is not null;
    }

    private async Task<RunResult> FinishAsync(RunState state, RunOutcome outcome, string? error, long started, CancellationToken cancellationToken)
    {
        var result = new RunResult(_spec, outcome, error, state.Totals, state.Sink, state.DeadLetters,
            _options.Time.GetElapsedTime(started), _checkpointPath, state.SourcePosition,
            [state.SourceMetrics, .. state.Transforms.Metrics, state.SinkMetrics], state.Pool.Created);
        switch (outcome)
        {
            case RunOutcome.Succeeded:
                // Durable outputs, then the completed checkpoint, then the renames: a run that dies
                // at any point is either resumed or replayed (which finishes the renames), never
                // left with a checkpoint pointing at temp files already renamed away.
                await state.Sink.CommitAsync(cancellationToken).ConfigureAwait(false);
                if (state.DeadLetters is not null)
                {
                    await state.DeadLetters.CommitAsync(cancellationToken).ConfigureAwait(false);
                }
                if (_checkpointPath is not null)
                {
                    new Checkpoint(_spec.Run.Id, Checkpoint.Completed, state.SourcePosition, state.SourceLine,
                        new SinkPosition(state.Sink.Bytes, state.Sink.Records, null), null, state.Totals)
                    { Result = result.ToJsonString() }.Save(_checkpointPath);
                }
                await state.Sink.PublishAsync(cancellationToken).ConfigureAwait(false);
                if (state.DeadLetters is not null)
                {
                    await state.DeadLetters.PublishAsync(cancellationToken).ConfigureAwait(false);
                }
                break;
            case RunOutcome.ContractThresholdExceeded:
                // The checkpoint goes first: a re-run then starts over instead of resuming into
                // temp files that were deleted or renamed. The output is not published; the dead
                // letters are, to show why.
                if (_checkpointPath is not null && File.Exists(_checkpointPath))
                {
                    File.Delete(_checkpointPath);
                }
                await state.Sink.AbandonAsync().ConfigureAwait(false);
                if (state.DeadLetters is not null)
                {
                    await state.DeadLetters.PublishAsync(cancellationToken).ConfigureAwait(false);
                }
                break;
            default:
                // Failed or aborted: temp outputs and the checkpoint stay, so a re-run resumes.
                break;
        }
        return result;
    }

    /// <summary>The timer's RUNNING event; <see cref="EmitAsync"/> reports delivery failures itself, so only the run ending is left to swallow.</summary>
    private async Task EmitRunningAsync(RunState state, CancellationToken cancellationToken)
    {
        try
        {
            await EmitAsync("RUNNING", state, null, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>A dead letter of a run without a dead-letter output, written to the log (stderr) as its JSON line.</summary>
    private async Task LogDeadLetterAsync(DeadLetter dead, RecordBatch batch)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(512);
        var output = new OutputBuffer(buffer);
        RecordWriter.WriteDeadLetter(dead, batch, _spec.Run.Id, output);
        output.Complete();
        await _options.Log.WriteAsync("dead letter (no dead_letter output): " + System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan)).ConfigureAwait(false);
    }

    private readonly SemaphoreSlim _emitGate = new(1, 1);
    private bool _finished;

    /// <summary>Sends one lineage event; after the terminal one, a late RUNNING from the timer is dropped.</summary>
    private async Task EmitAsync(string eventType, RunState state, string? error, CancellationToken cancellationToken)
    {
        await _emitGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_finished)
            {
                return;
            }
            _finished = eventType is "COMPLETE" or "FAIL" or "ABORT";
            await SendAsync(eventType, state, error, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // Lineage is reported, not required: a lineage destination that is down never fails the run.
            await _options.Log.WriteLineAsync($"lineage: {eventType} event of run {_spec.Run.Id} not delivered: {e.Message}").ConfigureAwait(false);
        }
        finally
        {
            _emitGate.Release();
        }
    }

    private async Task SendAsync(string eventType, RunState state, string? error, CancellationToken cancellationToken)
    {
        var final = eventType != "RUNNING";
        var snapshot = eventType == "START" ? null : new LineageSnapshot(
            state.Totals,
            state.Sink.Bytes,
            state.Sink.Records,
            LineageEvents.ContractFields(_contracts.Source) is { Count: > 0 } read ? read : InputFields(state.Fields),
            LineageEvents.ContractFields(_contracts.Sink) is { Count: > 0 } written ? written : InputFields(state.Fields),
            final ? Snapshot(state.Totals.InputViolationsByField) : null,
            final ? Snapshot(state.Totals.ViolationsByField) : null,
            error);
        var runEvent = LineageEvents.Build(eventType, _options.Time.GetUtcNow(), _spec, _contracts, state.Source.Dataset, state.Sink.Dataset, snapshot);
        await _lineage.EmitAsync(eventType, runEvent, cancellationToken).ConfigureAwait(false);
    }

    private static Dictionary<string, long> Snapshot(Dictionary<string, long> counts)
    {
        lock (counts)
        {
            return new Dictionary<string, long>(counts, StringComparer.Ordinal);
        }
    }

    private static List<(string Name, string Type)> InputFields(FieldTable fields)
    {
        var list = new List<(string, string)>(fields.Count);
        for (var slot = 0; slot < fields.Count; slot++)
        {
            var entry = fields[slot];
            list.Add((entry.Name, entry.Type is { } type ? LineageEvents.TypeName(type) : "any"));
        }
        return list;
    }
}

/// <summary>A stage failed; the run fails with its error.</summary>
internal sealed class StageFailedException(string stage, Exception inner) : Exception($"{stage}: {inner.Message}", inner)
{
    public string Stage { get; } = stage;
}
