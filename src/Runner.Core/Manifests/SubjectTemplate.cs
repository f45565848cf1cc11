namespace Runner.Core.Manifests;

/// <summary>
/// Load-time checks of a publish effect's subject template: placeholders are those of URL
/// templates (<see cref="UrlTemplate.Placeholders"/> and <c>{payload.a.b}</c>), tokens are not
/// empty, and wildcards are not allowed. Each placeholder must fill a whole token, so a value can
/// never add a token of its own (values are checked per command).
/// </summary>
internal static class SubjectTemplate
{
    public static List<string> Validate(string subject)
    {
        var problems = ValidatePlaceholders(subject);
        // Each placeholder must be a whole token; with them replaced, the tokens must be plain.
        var sample = new System.Text.StringBuilder(subject.Length);
        var at = 0;
        while (at < subject.Length)
        {
            var open = subject.IndexOf('{', at);
            if (open < 0)
            {
                sample.Append(subject, at, subject.Length - at);
                break;
            }
            var close = subject.IndexOf('}', open + 1);
            if (close < 0)
            {
                sample.Append(subject, at, subject.Length - at);
                break;
            }
            if ((open > 0 && subject[open - 1] != '.') || (close + 1 < subject.Length && subject[close + 1] != '.'))
            {
                problems.Add($"placeholder '{subject[open..(close + 1)]}' must be a whole token");
            }
            sample.Append(subject, at, open - at).Append('x');
            at = close + 1;
        }
        var expanded = sample.ToString();
        if (expanded.Contains('{', StringComparison.Ordinal) || expanded.Contains('}', StringComparison.Ordinal))
        {
            problems.Add($"'{subject}' holds a brace outside a placeholder");
        }
        else if (Subjects.SubjectPattern.Validate(expanded, allowWildcards: false) is { } problem)
        {
            problems.Add(problem);
        }
        return problems;
    }

    public static List<string> ValidatePlaceholders(string template)
    {
        var problems = new List<string>();
        var at = 0;
        while ((at = template.IndexOf('{', at)) >= 0)
        {
            var end = template.IndexOf('}', at + 1);
            if (end < 0)
            {
                problems.Add($"'{{' at position {at + 1} is not closed with '}}'");
                break;
            }
            var name = template[(at + 1)..end];
            if (!UrlTemplate.IsPlaceholder(name))
            {
                problems.Add($"unknown placeholder '{{{name}}}' (expected {{tenant}}, {{command_id}}, {{correlation_id}}, {{saga}}, {{effect}} or {{payload.a.b}})");
            }
            at = end + 1;
        }
        return problems;
    }
}
