using System.Text;

namespace Runner.Slice.Lineage;

/// <summary>Where a run's lineage events go.</summary>
internal interface ILineageSink : IAsyncDisposable
{
    ValueTask EmitAsync(string eventType, byte[] runEvent, CancellationToken cancellationToken);
}

/// <summary>
/// Lineage as envelopes on stdout (<c>{"kind":"lineage","event":…}</c>), for the effect worker that
/// launched the slice: it publishes them to the LINEAGE stream itself, so a slice without network
/// access still reports its lineage.
/// </summary>
internal sealed class EnvelopeLineageSink(EventWriter writer) : ILineageSink
{
    public ValueTask EmitAsync(string eventType, byte[] runEvent, CancellationToken cancellationToken) =>
        writer.WriteAsync("lineage", "event", runEvent, cancellationToken);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

/// <summary>Lineage appended as JSON lines to a file.</summary>
internal sealed class FileLineageSink(string path) : ILineageSink
{
    public async ValueTask EmitAsync(string eventType, byte[] runEvent, CancellationToken cancellationToken)
    {
        var file = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read, 1, FileOptions.Asynchronous);
        await using (file.ConfigureAwait(false))
        {
            await file.WriteAsync(runEvent, cancellationToken).ConfigureAwait(false);
            await file.WriteAsync("\n"u8.ToArray(), cancellationToken).ConfigureAwait(false);
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

/// <summary>Nowhere: a run with no lineage destination says so once on stderr.</summary>
internal sealed class NoLineageSink : ILineageSink
{
    public ValueTask EmitAsync(string eventType, byte[] runEvent, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

/// <summary>
/// stdout in <c>--events</c> mode: one JSON envelope per line, serialized so lineage events and the
/// final result never interleave.
/// </summary>
internal sealed class EventWriter(Stream stdout)
{
    private readonly SemaphoreSlim _gate = new(1, 1);

    public async ValueTask WriteAsync(string kind, string property, byte[] json, CancellationToken cancellationToken)
    {
        var head = Encoding.UTF8.GetBytes($"{{\"kind\":\"{kind}\",\"{property}\":");
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await stdout.WriteAsync(head, cancellationToken).ConfigureAwait(false);
            await stdout.WriteAsync(json, cancellationToken).ConfigureAwait(false);
            await stdout.WriteAsync("}\n"u8.ToArray(), cancellationToken).ConfigureAwait(false);
            await stdout.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }
}
