using NATS.Client.Core;
using NATS.Client.JetStream;
using Runner.Slice.Engine;
using Runner.Slice.Lineage;
using Runner.Slice.Specs;

namespace Runner.Slice.Nats;

/// <summary>
/// The slice's NATS connection, when <c>RUNNER_NATS_URL</c> is set: JetStream sources and sinks,
/// and lineage published to <c>lineage.{tenant}.{namespace}.{job}</c> (tenant from <c>RUNNER_TENANT</c>).
/// </summary>
internal sealed class SliceNats : IAsyncDisposable
{
    private readonly NatsConnection _connection;

    private SliceNats(NatsConnection connection, string tenant)
    {
        _connection = connection;
        JetStream = new NatsJSContext(connection);
        Tenant = tenant;
    }

    public NatsJSContext JetStream { get; }

    public string Tenant { get; }

    public static async Task<SliceNats?> ConnectAsync(CancellationToken cancellationToken)
    {
        var url = Environment.GetEnvironmentVariable("RUNNER_NATS_URL");
        if (string.IsNullOrWhiteSpace(url))
        {
            return null;
        }
        var connection = new NatsConnection(NatsOpts.Default with { Url = url, Name = "runner-slice" });
        await connection.ConnectAsync().ConfigureAwait(false);
        var tenant = Environment.GetEnvironmentVariable("RUNNER_TENANT");
        return new SliceNats(connection, string.IsNullOrWhiteSpace(tenant) ? "default" : tenant);
    }

    public ILineageSink Lineage(SliceSpec spec) => new NatsLineageSink(JetStream, Tenant, spec);

    public IEndpointFactory Endpoints() => new EndpointFactory(
        (endpoint, spec, resume) => new JetStreamSource(JetStream, endpoint, spec, resume),
        (endpoint, spec, _) => new JetStreamSink(JetStream, endpoint, spec));

    public ValueTask DisposeAsync() => _connection.DisposeAsync();
}

/// <summary>Lineage events published to JetStream, deduplicated by run, event type and count.</summary>
internal sealed class NatsLineageSink(NatsJSContext js, string tenant, SliceSpec spec) : ILineageSink
{
    private int _sent;

    public async ValueTask EmitAsync(string eventType, byte[] runEvent, CancellationToken cancellationToken)
    {
        var subject = $"lineage.{tenant}.{spec.Run.Job.Namespace}.{spec.Run.Job.Name}";
        var id = $"{spec.Run.Id}:{eventType}:{Interlocked.Increment(ref _sent)}";
        var ack = await js.PublishAsync(subject, runEvent, opts: new NatsJSPubOpts { MsgId = id }, cancellationToken: cancellationToken).ConfigureAwait(false);
        if (ack.Error is not null)
        {
            // A duplicate is success: the stream already holds this event from an earlier attempt.
            ack.EnsureSuccess();
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
