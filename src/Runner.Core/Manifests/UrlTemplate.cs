using System.Text;
using System.Text.RegularExpressions;

namespace Runner.Core.Manifests;

/// <summary>
/// The URL of an effect as a manifest writes it: <c>${NAME}</c> and <c>${NAME:-default}</c> are
/// taken from the environment once, at load time, so one manifest serves every deployment; the
/// <c>{...}</c> placeholders that remain are filled per command by the provider.
/// </summary>
internal static partial class UrlTemplate
{
    public static readonly IReadOnlyList<string> Placeholders = ["tenant", "command_id", "correlation_id", "saga", "effect"];

    private const string PlaceholderList = "{tenant}, {command_id}, {correlation_id}, {saga}, {effect} or {payload.a.b}";

    /// <summary>
    /// Replaces every <c>${NAME}</c> and <c>${NAME:-default}</c> (shell rules: the default also
    /// applies when the variable is set but empty). Returns null when a problem was added.
    /// </summary>
    public static string? ExpandEnvironment(string text, Func<string, string?> environment, List<string> problems)
    {
        var before = problems.Count;
        var expanded = new StringBuilder(text.Length);
        var at = 0;
        while (at < text.Length)
        {
            var start = text.IndexOf("${", at, StringComparison.Ordinal);
            if (start < 0)
            {
                expanded.Append(text, at, text.Length - at);
                break;
            }
            expanded.Append(text, at, start - at);
            var end = text.IndexOf('}', start + 2);
            if (end < 0)
            {
                problems.Add($"'${{' at position {start + 1} is not closed with '}}'");
                break;
            }
            var body = text[(start + 2)..end];
            var separator = body.IndexOf(":-", StringComparison.Ordinal);
            var name = separator < 0 ? body : body[..separator];
            var fallback = separator < 0 ? null : body[(separator + 2)..];
            if (!VariableName().IsMatch(name))
            {
                problems.Add($"'${{{body}}}': '{name}' is not an environment variable name");
            }
            else
            {
                var value = environment(name);
                if (string.IsNullOrEmpty(value) && fallback is not null)
                {
                    value = fallback;
                }
                else if (value is null)
                {
                    problems.Add($"environment variable '{name}' is not set and has no default (write ${{{name}:-default}})");
                }
                expanded.Append(value);
            }
            at = end + 1;
        }
        return problems.Count == before ? expanded.ToString() : null;
    }

    /// <summary>
    /// Checks an expanded URL: every <c>{...}</c> is a known placeholder, and with placeholders
    /// filled in it is an absolute http or https URL without credentials.
    /// </summary>
    public static void Validate(string url, List<string> problems)
    {
        var sample = new StringBuilder(url.Length);
        var at = 0;
        while (at < url.Length)
        {
            var c = url[at];
            if (c == '}')
            {
                problems.Add($"'}}' at position {at + 1} has no matching '{{'");
                at++;
                continue;
            }
            if (c != '{')
            {
                sample.Append(c);
                at++;
                continue;
            }
            var end = url.IndexOf('}', at + 1);
            if (end < 0)
            {
                problems.Add($"'{{' at position {at + 1} is not closed with '}}'");
                break;
            }
            var name = url[(at + 1)..end];
            if (!IsPlaceholder(name))
            {
                problems.Add($"unknown placeholder '{{{name}}}' (expected {PlaceholderList})");
            }
            sample.Append('x');
            at = end + 1;
        }

        if (!Uri.TryCreate(sample.ToString(), UriKind.Absolute, out var uri)
            || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)
            || string.IsNullOrEmpty(uri.Host))
        {
            problems.Add($"'{url}' is not an absolute http or https URL");
        }
        else if (uri.UserInfo.Length > 0)
        {
            problems.Add("a URL must not carry credentials: send them in a header from a secret");
        }
    }

    public static bool IsPlaceholder(string name) => Placeholders.Contains(name) || PayloadPath().IsMatch(name);

    [GeneratedRegex(@"^[A-Za-z_][A-Za-z0-9_]*\z")]
    private static partial Regex VariableName();

    [GeneratedRegex(@"^payload((\.[A-Za-z0-9_-]+)|(\[[0-9]+\]))+\z")]
    private static partial Regex PayloadPath();
}
