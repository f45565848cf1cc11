using System.Globalization;
using NATS.Client.JetStream;

namespace Runner.Sagas.Ownership;

/// <summary>Durable consumers named by lease epoch (<c>{name}-e{epoch}</c>), as routers and partitions read through.</summary>
internal static class EpochConsumers
{
    /// <summary>
    /// The consumers of <paramref name="stream"/> that holders before <paramref name="epoch"/> read through: the
    /// earlier epochs of <paramref name="name"/>, and <paramref name="name"/> itself (before consumers had epochs).
    /// Never a later epoch's: a holder paused past its lease must not delete its successor's consumer.
    /// </summary>
    public static async Task<List<string>> FormerAsync(INatsJSContext js, string stream, string name, long epoch, CancellationToken cancellationToken)
    {
        var prefix = name + "-e";
        var former = new List<string>();
        await foreach (var consumer in js.ListConsumerNamesAsync(stream, cancellationToken))
        {
            if (string.Equals(consumer, name, StringComparison.Ordinal)
                || (consumer.StartsWith(prefix, StringComparison.Ordinal)
                    && long.TryParse(consumer.AsSpan(prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var of)
                    && of < epoch))
            {
                former.Add(consumer);
            }
        }
        return former;
    }
}
