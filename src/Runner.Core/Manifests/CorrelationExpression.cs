using System.Globalization;
using System.Text.Json;
using Runner.Core.Events;

namespace Runner.Core.Manifests;

/// <summary>
/// How a trigger finds the correlation key in an event: <c>subject[N]</c> (N-th subject token,
/// from 0), <c>$.data.path.to[0].field</c> (a path into the event), or <c>header:NAME</c>.
/// </summary>
internal abstract class CorrelationExpression
{
    public required string Text { get; init; }

    public abstract string? Evaluate(SagaEvent evt);

    public static bool TryParse(string text, out CorrelationExpression? expression, out string? error)
    {
        expression = null;
        error = null;
        text = text.Trim();
        if (text.StartsWith("subject[", StringComparison.Ordinal) && text.EndsWith(']'))
        {
            var inner = text["subject[".Length..^1];
            if (!int.TryParse(inner, NumberStyles.None, CultureInfo.InvariantCulture, out var index))
            {
                error = $"correlation '{text}': subject index must be a non-negative integer";
                return false;
            }
            expression = new SubjectToken { Text = text, Index = index };
            return true;
        }
        if (text.StartsWith("header:", StringComparison.Ordinal))
        {
            var name = text["header:".Length..].Trim();
            if (name.Length == 0)
            {
                error = $"correlation '{text}': header name is empty";
                return false;
            }
            expression = new Header { Text = text, Name = name };
            return true;
        }
        if (text.StartsWith("$.", StringComparison.Ordinal))
        {
            if (!JsonPath.TryParse(text[2..], out var path, out error))
            {
                error = $"correlation '{text}': {error}";
                return false;
            }
            expression = new EventPath { Text = text, Path = path! };
            return true;
        }
        error = $"correlation '{text}' must be subject[N], $.path or header:NAME";
        return false;
    }

    private sealed class SubjectToken : CorrelationExpression
    {
        public required int Index { get; init; }

        /// <summary>The token at <see cref="Index"/> (empty between two dots), null past the last; found in place, as it runs for every event.</summary>
        public override string? Evaluate(SagaEvent evt)
        {
            var rest = evt.Origin.Subject.AsSpan();
            for (var i = 0; i < Index; i++)
            {
                var dot = rest.IndexOf('.');
                if (dot < 0)
                {
                    return null;
                }
                rest = rest[(dot + 1)..];
            }
            var end = rest.IndexOf('.');
            return (end < 0 ? rest : rest[..end]).ToString();
        }
    }

    private sealed class Header : CorrelationExpression
    {
        public required string Name { get; init; }

        public override string? Evaluate(SagaEvent evt) =>
            CloudEventDecoder.TryGetHeader(evt.Headers, Name, out var value) && value.Length > 0 ? value : null;
    }

    private sealed class EventPath : CorrelationExpression
    {
        public required JsonPath Path { get; init; }

        public override string? Evaluate(SagaEvent evt)
        {
            var head = Path.Segments[0];
            switch (head.Name)
            {
                case "id": return Path.Segments.Count == 1 ? evt.Id : null;
                case "type": return Path.Segments.Count == 1 ? evt.Type : null;
                case "source": return Path.Segments.Count == 1 ? evt.Source : null;
                case "subject": return Path.Segments.Count == 1 ? evt.CeSubject : null;
                case "tenant": return Path.Segments.Count == 1 ? evt.Tenant : null;
                case "data": break;
                default: return null;
            }
            try
            {
                using var doc = JsonDocument.Parse(evt.Data);
                return Path.Select(doc.RootElement, skip: 1);
            }
            catch (JsonException)
            {
                return null;
            }
        }
    }
}
