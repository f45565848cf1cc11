using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using Runner.Slice.Engine;
using Runner.Slice.Specs;

namespace Runner.Slice.Nats;

/// <summary>
/// A JetStream subject read from a start sequence up to the stream's last message when the run
/// began, through a consumer of this run (acknowledge-all). Each message is one JSON object; its
/// stream sequence is the record's offset. Messages are acknowledged only after the sink committed
/// them, and a resumed run starts after the last committed sequence.
/// </summary>
internal sealed class JetStreamSource(NatsJSContext js, Endpoint endpoint, SliceSpec spec, Checkpoint? resume) : ISource
{
    private readonly JsonRecordParser _parser = new();
    private INatsJSConsumer? _consumer;
    private string? _stream;

    public (string Namespace, string Name) Dataset => ("nats", endpoint.Subject!);

    public async Task RunAsync(SourceContext context, CancellationToken cancellationToken)
    {
        var streamName = endpoint.Stream ?? await StreamOfAsync(cancellationToken).ConfigureAwait(false);
        _stream = streamName;
        var stream = await js.GetStreamAsync(streamName, cancellationToken: cancellationToken).ConfigureAwait(false);
        var end = stream.Info.State.LastSeq;
        var start = resume is not null ? (ulong)resume.SourcePosition + 1 : Math.Max(1, endpoint.StartSequence);
        var batch = context.Pool.Rent();
        var position = resume?.SourcePosition ?? (long)start - 1;
        if (start <= end)
        {
            _consumer = await js.CreateOrUpdateConsumerAsync(streamName, new ConsumerConfig($"slice-{Sanitize(spec.Run.Id)}")
            {
                DeliverPolicy = ConsumerConfigDeliverPolicy.ByStartSequence,
                OptStartSeq = start,
                FilterSubject = endpoint.Subject,
                AckPolicy = ConsumerConfigAckPolicy.All,
                MaxAckPending = -1,
                // Acks wait for the sink's commit (every few batches): give them time before a redelivery.
                AckWait = TimeSpan.FromMinutes(10),
                InactiveThreshold = TimeSpan.FromHours(1),
            }, cancellationToken).ConfigureAwait(false);
            var done = false;
            while (!done)
            {
                if (context.Drain.IsCancellationRequested)
                {
                    batch.Drained = true;
                    break;
                }
                var fetched = 0;
                await foreach (var msg in _consumer.FetchAsync<byte[]>(new NatsJSFetchOpts { MaxMsgs = context.Batch.MaxRecords, Expires = TimeSpan.FromSeconds(2) }, cancellationToken: cancellationToken).ConfigureAwait(false))
                {
                    fetched++;
                    var metadata = msg.Metadata!.Value;
                    var sequence = (long)metadata.Sequence.Stream;
                    if (sequence <= position)
                    {
                        // A redelivery of a message this run already took (its ack waits for the sink's commit).
                        continue;
                    }
                    Add(msg.Data ?? [], sequence, batch, context);
                    batch.SourceState = msg;
                    position = sequence;
                    if (metadata.Sequence.Stream >= end || metadata.NumPending == 0)
                    {
                        done = true;
                        break;
                    }
                }
                if (done)
                {
                    break;
                }
                if (fetched == 0)
                {
                    // Nothing came: the stream's last message may be on another subject, so ask the
                    // consumer whether anything of ours is left rather than waiting for a sequence.
                    await _consumer.RefreshAsync(cancellationToken).ConfigureAwait(false);
                    if (_consumer.Info.NumPending == 0 || position >= (long)end)
                    {
                        break;
                    }
                }
                if (batch.RecordsIn > 0)
                {
                    Seal(batch, position, context);
                    await context.Output.WriteAsync(batch, cancellationToken).ConfigureAwait(false);
                    batch = context.Pool.Rent();
                }
            }
        }
        batch.EndOfStream = !batch.Drained;
        Seal(batch, position, context);
        await context.Output.WriteAsync(batch, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask CommittedAsync(object state, CancellationToken cancellationToken)
    {
        if (state is NatsJSMsg<byte[]> last)
        {
            await last.AckAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_consumer is not null)
        {
            try
            {
                await js.DeleteConsumerAsync(_stream!, _consumer.Info.Name).ConfigureAwait(false);
            }
            catch (NatsJSApiException)
            {
                // Already gone (inactive threshold): nothing to clean up.
            }
        }
    }

    private async Task<string> StreamOfAsync(CancellationToken cancellationToken)
    {
        await foreach (var name in js.ListStreamNamesAsync(endpoint.Subject, cancellationToken).ConfigureAwait(false))
        {
            return name;
        }
        throw new InvalidDataException($"no JetStream stream holds subject '{endpoint.Subject}'");
    }

    private void Add(byte[] data, long sequence, RecordBatch batch, SourceContext context)
    {
        batch.RecordsIn++;
        batch.BytesIn += data.Length;
        var start = batch.Append(data);
        var span = batch.Data.AsSpan(start, data.Length);
        if (!System.Text.Unicode.Utf8.IsValid(span))
        {
            batch.DeadLetters.Add(new DeadLetter("source", null, DeadLetterCodes.InvalidUtf8, "the message is not valid UTF-8", sequence, 0) { RawStart = start, RawLength = data.Length });
            return;
        }
        var record = batch.Add(context.Fields, sequence, 0, start, data.Length, rawIsJson: true);
        string? problem;
        var code = DeadLetterCodes.MalformedJson;
        try
        {
            problem = _parser.Parse(record, span, start, context.Fields, out var notObject);
            if (notObject)
            {
                code = DeadLetterCodes.NotAnObject;
            }
        }
        catch (System.Text.Json.JsonException e)
        {
            problem = e.Message;
        }
        if (problem is not null)
        {
            batch.RemoveLast();
            batch.DeadLetters.Add(new DeadLetter("source", null, code, problem, sequence, 0) { RawStart = start, RawLength = data.Length });
            return;
        }
        context.EventTime?.DeadLetterIfLate(record, batch);
    }

    private static void Seal(RecordBatch batch, long position, SourceContext context)
    {
        batch.EndPosition = position;
        batch.Watermark = context.EventTime?.Watermark;
        context.Metrics.In(batch.RecordsIn);
        context.Metrics.Out(batch.Count);
    }

    private static string Sanitize(string id) => new([.. id.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' ? c : '_')]);
}
