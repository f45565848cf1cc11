using Runner.Slice.Specs;

namespace Runner.Slice.Engine;

/// <summary>
/// Sources and sinks of the spec's endpoint types. File endpoints need nothing else; JetStream
/// endpoints use the connection the run was given (<c>RUNNER_NATS_URL</c>).
/// </summary>
internal sealed class EndpointFactory(Func<Endpoint, SliceSpec, Checkpoint?, ISource>? jetStreamSource = null,
    Func<Endpoint, SliceSpec, bool, ISink>? jetStreamSink = null) : IEndpointFactory
{
    public ISource CreateSource(Endpoint endpoint, SliceSpec spec, Checkpoint? resume) => endpoint.Type switch
    {
        Endpoint.Jsonl => new JsonlSource(spec.Expand(endpoint.Path!), resume?.SourcePosition ?? 0, resume?.SourceLine ?? 0),
        Endpoint.Csv => new CsvSource(spec.Expand(endpoint.Path!), resume?.SourcePosition ?? 0, resume?.SourceLine ?? 0),
        _ => jetStreamSource?.Invoke(endpoint, spec, resume)
            ?? throw new InvalidDataException("a jetstream source needs a NATS connection: set RUNNER_NATS_URL"),
    };

    public ISink CreateSink(Endpoint endpoint, SliceSpec spec, FieldTable fields, bool deadLetter) => endpoint.Type switch
    {
        Endpoint.Jsonl => new FileSink(spec.Expand(endpoint.Path!), csv: false, fields),
        Endpoint.Csv => new FileSink(spec.Expand(endpoint.Path!), csv: true, fields),
        _ => jetStreamSink?.Invoke(endpoint, spec, deadLetter)
            ?? throw new InvalidDataException("a jetstream sink needs a NATS connection: set RUNNER_NATS_URL"),
    };
}
