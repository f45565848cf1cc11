using System.Diagnostics.CodeAnalysis;
using System.Text;
using Runner.Core.Manifests;
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

    public static bool TryExpand(string template, CommandMessage command, [NotNullWhen(true)] out string? url, [NotNullWhen(false)] out string? error) =>
        TryExpand(template, command, Uri.EscapeDataString, out url, out error);

    /// <summary>
    /// Expands a publish subject or type template. A value must be one subject token: not empty, no
    /// <c>.</c>, <c>*</c>, <c>&gt;</c> or white space — so a payload can never reach another subject.
    /// </summary>
    public static bool TryExpandSubject(string template, CommandMessage command, [NotNullWhen(true)] out string? subject, [NotNullWhen(false)] out string? error)
    {
        string? bad = null;
        var ok = TryExpand(template, command, value =>
        {
            if (value.Length == 0 || value.AsSpan().IndexOfAny(".*> \t\r\n") >= 0)
            {
                bad ??= value;
            }
            return value;
        }, out subject, out error);
        if (ok && bad is not null)
        {
            subject = null;
            error = $"'{bad}' cannot fill a subject token of '{template}' (empty, or holds '.', '*', '>' or white space)";
            return false;
        }
        return ok;
    }

    private static bool TryExpand(string template, CommandMessage command, Func<string, string> encode, [NotNullWhen(true)] out string? url, [NotNullWhen(false)] out string? error)
    {
        url = null;
        error = null;
        var builder = new StringBuilder(template.Length + 32);
        var position = 0;
        while (position < template.Length)
        {
            var open = template.IndexOf('{', position);
            if (open < 0)
            {
                builder.Append(template, position, template.Length - position);
                break;
            }
            var close = template.IndexOf('}', open + 1);
            if (close < 0)
            {
                error = $"url template '{template}' has an unclosed '{{'";
                return false;
            }
            builder.Append(template, position, open - position);
            var name = template[(open + 1)..close];
            if (!TryValue(name, command, out var value, out error))
            {
                return false;
            }
            builder.Append(encode(value));
            position = close + 1;
        }
        url = builder.ToString();
        return true;
    }

    private static bool TryValue(string name, CommandMessage command, [NotNullWhen(true)] out string? value, [NotNullWhen(false)] out string? error)
    {
        error = null;
        value = name switch
        {
            "tenant" => command.Tenant,
            "command_id" => command.CommandId,
            "correlation_id" => command.CorrelationId,
            "saga" => command.Saga,
            "effect" => command.Effect,
            _ => null,
        };
        if (value is not null)
        {
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
        // JsonPath.Select skips the first name ("payload") and yields only non-empty scalars.
        value = path!.Select(command.Payload, skip: 1);
        if (value is null)
        {
            error = $"url placeholder '{{{name}}}': the command payload has no non-empty string, number or boolean at that path";
            return false;
        }
        return true;
    }
}
