using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Client.KeyValueStore;
using Runner.Core.Keys;
using Runner.Effects.Claims;
using Runner.Host.Service;
using Runner.Messaging;
using Runner.Storage;
using Runner.Testing;

namespace Runner.Bench.Effects;

/// <summary>
/// The effect phases, on fresh streams and a fresh claim bucket of the bench's nats-server: (d) saga
/// round trips through a real http effect, (e) what an effect worker's claim costs next to a plain
/// consume + ack.
/// </summary>
internal sealed partial class EffectsBench : IAsyncDisposable
{
    private const string ConsumerPrefix = "benchfx";
    private const string Tenant = "acme";
    private const int QuarantinePayloadBytes = 64 * 1024;

    private readonly BenchOptions _options;
    private readonly TextWriter _output;
    private readonly int? _natsPid;
    private readonly string _url;
    private readonly BenchLoggerProvider _logs = new();
    private readonly ILoggerFactory _loggers;
    private readonly TempDirectory _dir = new("runner-bench-effects");
    private readonly Timelines _timelines = new();
    private readonly JetStreamSettings _jetStream;
    private NatsConnection? _connection;
    private LmdbStore? _store;
    private LoopbackUpstream? _upstream;

    private EffectsBench(string url, BenchOptions options, int? natsPid, TextWriter output)
    {
        _url = url;
        _options = options;
        _natsPid = natsPid;
        _output = output;
        _loggers = new LoggerFactory([_logs], new LoggerFilterOptions { MinLevel = LogLevel.Trace });
        _jetStream = new JetStreamSettings { Batch = options.Batch };
    }

    private INatsJSContext Js { get; set; } = null!;
    private LmdbStore Store => _store!;
    private LoopbackUpstream Upstream => _upstream!;
    private StoreCommandQuarantine Quarantine { get; set; } = null!;

    public long Quarantined => _store?.Read(r => r.Count(KeySpace.Quarantine)) ?? 0;

    public static async Task<EffectsBench> StartAsync(string url, BenchOptions options, int? natsPid, TextWriter output, CancellationToken cancellationToken)
    {
        var bench = new EffectsBench(url, options, natsPid, output);
        try
        {
            await bench.InitAsync(cancellationToken);
        }
        catch
        {
            await bench.DisposeAsync();
            throw;
        }
        return bench;
    }

    private async Task InitAsync(CancellationToken cancellationToken)
    {
        _connection = new NatsConnection(new NatsOpts { Url = _url, Name = "bench-effects-publisher" });
        await _connection.ConnectAsync();
        Js = new NatsJSContext(_connection);
        foreach (var config in StreamTopology.Configs(_jetStream))
        {
            await Baseline.DeleteStreamAsync(Js, config.Name!, cancellationToken);
        }
        try
        {
            await new NatsKVContext(Js).DeleteStoreAsync(new EffectClaimOptions { Worker = "-" }.Bucket, cancellationToken);
        }
        catch (NatsJSApiException ex) when (ex.Error.Code == 404)
        {
            // not there
        }
        await StreamTopology.EnsureAsync(Js, _jetStream, _loggers.CreateLogger(typeof(StreamTopology)), cancellationToken);
        _store = new LmdbStore(new LmdbOptions { Path = _dir.File("lmdb"), Durable = _options.Durable }, _loggers.CreateLogger<LmdbStore>());
        Quarantine = new StoreCommandQuarantine(_store, QuarantinePayloadBytes, TimeProvider.System);
        _upstream = await LoopbackUpstream.StartAsync(cancellationToken);
        _upstream.Delay = TimeSpan.FromMilliseconds(_options.UpstreamDelayMs);
    }

    /// <summary>Publishes <paramref name="count"/> messages pipelined, marking each one's publish on <paramref name="timeline"/>.</summary>
    private async Task PublishAsync(Timeline timeline, int count, Func<int, (string Subject, byte[] Data)> make, CancellationToken cancellationToken)
    {
        var errors = await Publisher.PipelinedAsync(Js, count, _options.Window, i =>
        {
            timeline.Stages[0][i] = _timelines.NowUs();
            return make(i);
        }, null, cancellationToken);
        if (errors > 0)
        {
            _output.WriteLine(Text.Inv($"    ({errors} of {count} publishes got no PubAck)"));
        }
    }

    /// <summary>
    /// One item at a time: publish, wait until it finished, next — the latency of an idle system.
    /// Stops early after 10 s without an answer or 60 s in total.
    /// </summary>
    private async Task<Percentiles> ProbeAsync(Timeline timeline, Func<int, (string Subject, byte[] Data)> make, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.GetTimestamp() + (60 * Stopwatch.Frequency);
        for (var i = 0; i < timeline.Count && Stopwatch.GetTimestamp() < deadline; i++)
        {
            var (subject, data) = make(i);
            timeline.Stages[0][i] = _timelines.NowUs();
            var ack = await Js.PublishAsync(subject, data, cancellationToken: cancellationToken);
            ack.EnsureStored();
            if (!await timeline.Finished.WaitAsync(TimeSpan.FromSeconds(10), cancellationToken))
            {
                _output.WriteLine(Text.Inv($"    probe {timeline.Id(i)} got no answer within 10 s; probes stopped"));
                break;
            }
        }
        return timeline.Span(0, timeline.Last);
    }

    /// <summary>Waits (polling) until every item of the timeline finished, at most <paramref name="limit"/>.</summary>
    private static async Task<bool> WaitFinishedAsync(Timeline timeline, TimeSpan limit, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(limit.TotalSeconds * Stopwatch.Frequency);
        while (timeline.FinishedCount < timeline.Count)
        {
            if (Stopwatch.GetTimestamp() > deadline)
            {
                return false;
            }
            await Task.Delay(5, cancellationToken);
        }
        return true;
    }

    /// <summary>Waits (at most 10 s) until a consumer has a pull request waiting: its worker is attached and idle.</summary>
    private async Task WaitPullingAsync(string durable, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.GetTimestamp() + (10 * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < deadline)
        {
            try
            {
                var consumer = await Js.GetConsumerAsync(_jetStream.Streams.WorkflowCommands, durable, cancellationToken);
                if (consumer.Info.NumWaiting > 0)
                {
                    return;
                }
            }
            catch (NatsJSApiException ex) when (ex.Error.Code == 404)
            {
                // not created yet
            }
            await Task.Delay(10, cancellationToken);
        }
    }

    private async Task PurgeAsync(string stream, CancellationToken cancellationToken) =>
        await Js.PurgeStreamAsync(stream, new StreamPurgeRequest(), cancellationToken);

    private static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    private static string Inv(int n) => n.ToString(CultureInfo.InvariantCulture);

    public async ValueTask DisposeAsync()
    {
        if (_upstream is not null)
        {
            await _upstream.DisposeAsync();
        }
        _store?.Dispose();
        if (_connection is not null)
        {
            await _connection.DisposeAsync();
        }
        _loggers.Dispose();
        _dir.Dispose();
    }
}
