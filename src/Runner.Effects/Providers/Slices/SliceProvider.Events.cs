using System.Text.Json;
using Microsoft.Extensions.Logging;
using Runner.Core.Transitions;

namespace Runner.Effects.Providers.Slices;

internal sealed partial class SliceProvider
{
    /// <summary>
    /// Reads runner-slice's <c>--events</c> protocol from stdout: JSON lines
    /// <c>{"kind":"lineage","event":{…}}</c>, published to LINEAGE as they come, and
    /// <c>{"kind":"result","result":{…}}</c>, the run's output. A line that does not start with
    /// <c>{</c> is a log line; one that does but is no envelope (cut at the line limit, or broken)
    /// is a lost event: counted in the result, the first one logged, and kept as a log line.
    /// </summary>
    internal sealed class EventReader(ILineagePublisher lineage, ILogger logger, CommandMessage command, string runId)
    {
        private const int SnippetChars = 200;

        private readonly Dictionary<string, int> _seen = new(StringComparer.Ordinal);

        public string? OutputJson { get; private set; }

        public int LineageEvents { get; private set; }

        public int LineageFailed { get; private set; }

        public int Malformed { get; private set; }

        public async ValueTask<bool> OnLineAsync(string line, CancellationToken cancellationToken)
        {
            if (line.Length == 0 || line[0] != '{')
            {
                return false;
            }
            if (await TryHandleAsync(line, cancellationToken))
            {
                return true;
            }
            if (++Malformed == 1)
            {
                EffectsLog.MalformedSliceEvent(logger, command.CommandId, command.Tenant, command.CorrelationId, runId,
                    line.Length > SnippetChars ? line[..SnippetChars] : line);
            }
            return false;
        }

        private async ValueTask<bool> TryHandleAsync(string line, CancellationToken cancellationToken)
        {
            JsonDocument document;
            try
            {
                document = JsonDocument.Parse(line);
            }
            catch (JsonException)
            {
                return false;
            }
            using (document)
            {
                var root = document.RootElement;
                if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("kind", out var kind) || kind.ValueKind != JsonValueKind.String)
                {
                    return false;
                }
                switch (kind.GetString())
                {
                    case "result" when root.TryGetProperty("result", out var result):
                        OutputJson = result.GetRawText();
                        return true;
                    case "lineage" when root.TryGetProperty("event", out var runEvent) && runEvent.ValueKind == JsonValueKind.Object:
                        await PublishAsync(runEvent, cancellationToken);
                        return true;
                    default:
                        return false;
                }
            }
        }

        private async ValueTask PublishAsync(JsonElement runEvent, CancellationToken cancellationToken)
        {
            var ns = Text(runEvent, "job", "namespace") ?? "unknown";
            var name = Text(runEvent, "job", "name") ?? "unknown";
            var type = Text(runEvent, "eventType") ?? "OTHER";
            var run = Text(runEvent, "run", "runId") ?? runId;
            var count = _seen[type] = _seen.GetValueOrDefault(type) + 1;
            var messageId = count == 1 ? $"{run}:{type}" : $"{run}:{type}:{count}";
            var subject = $"lineage.{Token(command.Tenant)}.{Tokens(ns)}.{Tokens(name)}";
            try
            {
                await lineage.PublishAsync(command, subject, messageId, runEvent.GetRawText(), cancellationToken);
                LineageEvents++;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // Counted in the result: the run's output is still reported.
                LineageFailed++;
                EffectsLog.LineageFailed(logger, command.CommandId, command.Tenant, command.CorrelationId, subject, ex.Message);
            }
        }

        private static string? Text(JsonElement element, params string[] path)
        {
            foreach (var key in path)
            {
                if (element.ValueKind != JsonValueKind.Object || !element.TryGetProperty(key, out element))
                {
                    return null;
                }
            }
            return element.ValueKind == JsonValueKind.String && element.GetString() is { Length: > 0 } text ? text : null;
        }

        /// <summary>A namespace keeps its dots (more subject tokens); what a subject cannot hold becomes <c>_</c>.</summary>
        private static string Tokens(string text) =>
            string.Join('.', text.Split('.').Select(Token));

        private static string Token(string text)
        {
            var chars = text.Select(c => char.IsWhiteSpace(c) || char.IsControl(c) || c is '*' or '>' or '.' ? '_' : c).ToArray();
            return chars.Length == 0 ? "_" : new string(chars);
        }
    }
}
