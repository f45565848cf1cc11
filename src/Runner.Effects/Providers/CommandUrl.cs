using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Text;
using Runner.Core.Manifests;
using Runner.Core.Subjects;
using Runner.Core.Transitions;

namespace Runner.Effects.Providers;

/// <summary>
/// Expands an effect URL template (checked at load time by <c>Runner.Core.Manifests.UrlTemplate</c>) for one command: <c>{tenant}</c>, <c>{command_id}</c>,
/// <c>{correlation_id}</c>, <c>{saga}</c>, <c>{effect}</c> and <c>{payload.a.b}</c> (a path into
/// the payload, with <c>[i]</c> for array items as in correlation expressions). Every value is
/// URL-encoded, so a value can never add a path segment, a query parameter or another host.
/// </summary>
internal static class CommandUrl
{
    private const string PayloadPrefix = "payload";

    // A template is scanned (and its payload paths parsed) once, not per command: keyed by the
    // manifest's string instance, so a reloaded manifest's templates go when it goes.
    private static readonly ConditionalWeakTable<string, Parsed> s_parsed = new();

    public static bool TryExpand(string template, CommandMessage command, [NotNullWhen(true)] out string? url, [NotNullWhen(false)] out string? error) =>
        TryExpand(template, command, subjectTokens: false, out url, out error);

    /// <summary>
    /// Expands a publish subject or type template. A value must be one subject token: not empty, no
    /// <c>.</c>, wildcard, white space or control character — so a payload can never reach another subject.
    /// </summary>
    public static bool TryExpandSubject(string template, CommandMessage command, [NotNullWhen(true)] out string? subject, [NotNullWhen(false)] out string? error) =>
        TryExpand(template, command, subjectTokens: true, out subject, out error);

    private static bool TryExpand(string template, CommandMessage command, bool subjectTokens, [NotNullWhen(true)] out string? text, [NotNullWhen(false)] out string? error)
    {
        text = null;
        var parsed = s_parsed.GetValue(template, Parse);
        if (parsed.Error is not null)
        {
            error = parsed.Error;
            return false;
        }
        var builder = new StringBuilder(template.Length + 32);
        foreach (var part in parsed.Parts)
        {
            if (part.Literal is { } literal)
            {
                builder.Append(literal);
                continue;
            }
            var value = part.Field switch
            {
                "tenant" => command.Tenant,
                "command_id" => command.CommandId,
                "correlation_id" => command.CorrelationId,
                "saga" => command.Saga,
                "effect" => command.Effect,
                // JsonPath.Select skips the first name ("payload") and yields only non-empty scalars.
                _ => part.Path!.Select(command.Payload, skip: 1),
            };
            if (value is null)
            {
                error = $"url placeholder '{{{part.Field}}}': the command payload has no non-empty string, number or boolean at that path";
                return false;
            }
            if (subjectTokens && (value.Contains('.', StringComparison.Ordinal) || SubjectPattern.Validate(value, allowWildcards: false) is not null))
            {
                error = $"'{value}' cannot fill a subject token of '{template}' (empty, or holds '.', a wildcard, white space or a control character)";
                return false;
            }
            builder.Append(subjectTokens ? value : Uri.EscapeDataString(value));
        }
        text = builder.ToString();
        error = null;
        return true;
    }

    private static Parsed Parse(string template)
    {
        var parts = new List<Part>();
        var position = 0;
        while (position < template.Length)
        {
            var open = template.IndexOf('{', position);
            if (open < 0)
            {
                parts.Add(new Part(template[position..], null, null));
                break;
            }
            var close = template.IndexOf('}', open + 1);
            if (close < 0)
            {
                return new Parsed([], $"url template '{template}' has an unclosed '{{'");
            }
            if (open > position)
            {
                parts.Add(new Part(template[position..open], null, null));
            }
            var name = template[(open + 1)..close];
            if (!TryPart(name, out var part, out var error))
            {
                return new Parsed([], error);
            }
            parts.Add(part);
            position = close + 1;
        }
        return new Parsed(parts, null);
    }

    private static bool TryPart(string name, [NotNullWhen(true)] out Part? part, [NotNullWhen(false)] out string? error)
    {
        part = null;
        error = null;
        if (UrlTemplate.Placeholders.Contains(name))
        {
            part = new Part(null, name, null);
            return true;
        }
        var isPayload = name == PayloadPrefix
            || name.StartsWith(PayloadPrefix + ".", StringComparison.Ordinal)
            || name.StartsWith(PayloadPrefix + "[", StringComparison.Ordinal);
        if (!isPayload)
        {
            error = $"unknown url placeholder '{{{name}}}' (known: tenant, command_id, correlation_id, saga, effect, payload.<path>)";
            return false;
        }
        if (!JsonPath.TryParse(name, out var path, out var pathError))
        {
            error = $"url placeholder '{{{name}}}': {pathError}";
            return false;
        }
        part = new Part(null, name, path);
        return true;
    }

    /// <summary>Literal text, or a placeholder (<see cref="Field"/>, with <see cref="Path"/> for a payload path).</summary>
    private sealed record Part(string? Literal, string? Field, JsonPath? Path);

    private sealed record Parsed(IReadOnlyList<Part> Parts, string? Error);
}
