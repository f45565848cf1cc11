using Runner.Slice.Engine;
using Runner.Slice.Specs;
using Runner.Testing;
using Xunit;

namespace Runner.Slice.Tests.Engine;

/// <summary>
/// With a deliberately slow sink, the source can run ahead only by what the bounded channels hold:
/// the batches allocated stay fixed and the managed heap stays flat while a large input streams.
/// </summary>
public sealed class BackpressureTests
{
    /// <summary>A sink that takes its time per batch and watches how far the source got meanwhile.</summary>
    private sealed class SlowSink(ISink inner, Func<long> sourceRecords) : ISink
    {
        public long MaxAhead { get; private set; }

        public (string Namespace, string Name) Dataset => inner.Dataset;

        public long Records => inner.Records;

        public long Bytes => inner.Bytes;

        public ValueTask OpenAsync(SinkPosition? resume, CancellationToken cancellationToken) => inner.OpenAsync(resume, cancellationToken);

        public void Write(SliceRecord record) => inner.Write(record);

        public void WriteDeadLetter(DeadLetter dead, RecordBatch batch, string runId) => inner.WriteDeadLetter(dead, batch, runId);

        public async ValueTask FlushAsync(CancellationToken cancellationToken)
        {
            await inner.FlushAsync(cancellationToken);
            await Task.Delay(2, cancellationToken);
            MaxAhead = Math.Max(MaxAhead, sourceRecords() - inner.Records);
        }

        public ValueTask<SinkPosition> CommitAsync(CancellationToken cancellationToken) => inner.CommitAsync(cancellationToken);

        public ValueTask PublishAsync(CancellationToken cancellationToken) => inner.PublishAsync(cancellationToken);

        public ValueTask AbandonAsync() => inner.AbandonAsync();

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }

    private sealed class Factory : IEndpointFactory
    {
        private readonly EndpointFactory _files = new();
        private ISource? _source;

        public SlowSink? Sink { get; private set; }

        public ISource CreateSource(Endpoint endpoint, SliceSpec spec, Checkpoint? resume) => _source = _files.CreateSource(endpoint, spec, resume);

        public ISink CreateSink(Endpoint endpoint, SliceSpec spec, FieldTable fields, bool deadLetter)
        {
            var sink = _files.CreateSink(endpoint, spec, fields, deadLetter);
            if (deadLetter)
            {
                return sink;
            }
            Sink = new SlowSink(sink, () => SourceRecords);
            return Sink;
        }

        private long _sourceRecords;

        public long SourceRecords => Volatile.Read(ref _sourceRecords);

        public void Sent(int records) => Interlocked.Add(ref _sourceRecords, records);
    }

    [Fact]
    public async Task A_slow_sink_holds_the_source_back_and_memory_stays_flat()
    {
        using var dir = new TempDirectory("slice-backpressure");
        const int records = 150_000;
        const int batch = 250;
        using (var writer = new StreamWriter(dir.File("in.jsonl")))
        {
            for (var i = 0; i < records; i++)
            {
                await writer.WriteLineAsync($"{{\"id\":{i},\"payload\":\"{new string('p', 300)}\"}}");
            }
        }
        File.WriteAllText(dir.File("spec.yaml"), $$"""
            slice: v1
            run: { id: slow, job: { namespace: test, name: backpressure } }
            source: { type: jsonl, path: "{{dir.File("in.jsonl")}}" }
            transforms:
              - { type: filter, where: "id >= 0" }
            sink: { type: jsonl, path: "{{dir.File("out.jsonl")}}" }
            batch: { max_records: {{batch}}, max_wait_ms: 1000 }
            """);
        var factory = new Factory();
        var options = new RunOptions { ChannelCapacity = 2 };

        var (result, json, _) = await SliceTestKit.RunAsync(dir.File("spec.yaml"), options, new SourceCounting(factory));

        Assert.Equal(RunOutcome.Succeeded, result.Outcome);
        Assert.Equal(records, json.GetProperty("records").GetProperty("out").GetInt64());
        var inputBytes = new FileInfo(dir.File("in.jsonl")).Length;
        // Ahead of the sink: at most the two channels, the batch each stage holds, and the one being filled.
        Assert.InRange(factory.Sink!.MaxAhead, 0, (2 * options.ChannelCapacity + 3) * batch);
        // Memory: the run allocated a fixed number of batches, however large the input.
        var allocated = json.GetProperty("batches_allocated").GetInt64();
        Assert.InRange(allocated, 1, (2 * options.ChannelCapacity) + 4);
        Assert.True(allocated * batch * 400 < inputBytes / 10, $"{allocated} batches for {inputBytes} bytes of input");
    }

    /// <summary>Counts what the source sent, by wrapping its output channel's view through the factory.</summary>
    private sealed class SourceCounting(Factory factory) : IEndpointFactory
    {
        public ISource CreateSource(Endpoint endpoint, SliceSpec spec, Checkpoint? resume) => new CountingSource(factory.CreateSource(endpoint, spec, resume), factory);

        public ISink CreateSink(Endpoint endpoint, SliceSpec spec, FieldTable fields, bool deadLetter) => factory.CreateSink(endpoint, spec, fields, deadLetter);
    }

    private sealed class CountingSource(ISource inner, Factory factory) : ISource
    {
        public (string Namespace, string Name) Dataset => inner.Dataset;

        public Task RunAsync(SourceContext context, CancellationToken cancellationToken)
        {
            var metrics = context.Metrics;
            var counting = new CountingWriter(context.Output, factory);
            return inner.RunAsync(new SourceContext
            {
                Fields = context.Fields,
                Pool = context.Pool,
                Output = counting,
                Batch = context.Batch,
                Drain = context.Drain,
                EventTime = context.EventTime,
                MaxLineBytes = context.MaxLineBytes,
                Metrics = metrics,
                Time = context.Time,
            }, cancellationToken);
        }

        public ValueTask CommittedAsync(object state, CancellationToken cancellationToken) => inner.CommittedAsync(state, cancellationToken);

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }

    /// <summary>The source's output channel, counting the records of every batch it accepts.</summary>
    private sealed class CountingWriter(System.Threading.Channels.ChannelWriter<RecordBatch> inner, Factory factory) : System.Threading.Channels.ChannelWriter<RecordBatch>
    {
        public override bool TryWrite(RecordBatch item)
        {
            var count = item.Count;
            if (!inner.TryWrite(item))
            {
                return false;
            }
            factory.Sent(count);
            return true;
        }

        public override ValueTask<bool> WaitToWriteAsync(CancellationToken cancellationToken = default) => inner.WaitToWriteAsync(cancellationToken);

        public override bool TryComplete(Exception? error = null) => inner.TryComplete(error);
    }
}
