using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Slice.Engine;
using Runner.Slice.Specs;

namespace Runner.Slice.Nats;

/// <summary>
/// Records published to a JetStream subject with <c>Nats-Msg-Id = {run_id}:{offset}</c> (dead
/// letters: <c>{run_id}:dead:{offset}:{stage}</c>, a record can be dead-lettered by more than one stage), so a resumed run that publishes a record again is
/// deduplicated by the stream. A batch's messages are published together and every PubAck is
/// awaited before the batch counts as committed. Published messages cannot be withdrawn: a failed
/// run leaves what it published.
/// </summary>
internal sealed class JetStreamSink(NatsJSContext js, Endpoint endpoint, SliceSpec spec) : ISink
{
    private readonly List<(byte[] Data, string Id)> _pending = [];
    private readonly System.Buffers.ArrayBufferWriter<byte> _scratch = new(4096);
    private OutputBuffer? _output;
    private long _records;
    private long _bytes;

    public (string Namespace, string Name) Dataset => ("nats", endpoint.Subject!);

    public long Records => _records;

    public long Bytes => _bytes;

    public ValueTask OpenAsync(SinkPosition? resume, CancellationToken cancellationToken)
    {
        _records = resume?.Records ?? 0;
        _bytes = resume?.Bytes ?? 0;
        _output = new OutputBuffer(_scratch);
        return ValueTask.CompletedTask;
    }

    public void Write(SliceRecord record)
    {
        RecordWriter.WriteJson(record, _output!);
        _pending.Add((Take(), $"{spec.Run.Id}:{record.Offset}"));
    }

    public void WriteDeadLetter(DeadLetter dead, RecordBatch batch, string runId)
    {
        RecordWriter.WriteDeadLetter(dead, batch, runId, _output!);
        _pending.Add((Take(), $"{runId}:dead:{dead.Offset}:{dead.Stage}"));
    }

    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        const int window = 256;
        foreach (var chunk in _pending.Chunk(window))
        {
            var tasks = chunk.Select(async m =>
            {
                var ack = await js.PublishAsync(endpoint.Subject!, m.Data, opts: new NatsJSPubOpts { MsgId = m.Id }, cancellationToken: cancellationToken).ConfigureAwait(false);
                if (ack.Error is not null)
                {
                    // A duplicate is success: the stream already holds this message from an earlier attempt.
                    ack.EnsureSuccess();
                }
            }).ToArray();
            await Task.WhenAll(tasks).ConfigureAwait(false);
        }
        foreach (var (data, _) in _pending)
        {
            _bytes += data.Length;
            _records++;
        }
        _pending.Clear();
    }

    public async ValueTask<SinkPosition> CommitAsync(CancellationToken cancellationToken)
    {
        await FlushAsync(cancellationToken).ConfigureAwait(false);
        return new SinkPosition(_bytes, _records, null);
    }

    public ValueTask PublishAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ValueTask AbandonAsync() => ValueTask.CompletedTask;

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>The message just written, without its line break.</summary>
    private byte[] Take()
    {
        _output!.Complete();
        var message = _scratch.WrittenSpan[..^1].ToArray();
        _scratch.ResetWrittenCount();
        return message;
    }
}
