namespace Runner.Core.Subjects;

/// <summary>A NATS subject filter (<c>*</c> matches one token, a trailing <c>&gt;</c> one or more).</summary>
internal sealed class SubjectPattern
{
    private readonly string[] _tokens;

    private SubjectPattern(string text, string[] tokens)
    {
        Text = text;
        _tokens = tokens;
    }

    public string Text { get; }

    public static bool TryParse(string text, out SubjectPattern? pattern, out string? error)
    {
        pattern = null;
        error = Validate(text, allowWildcards: true);
        if (error is not null)
        {
            return false;
        }
        pattern = new SubjectPattern(text, text.Split('.'));
        return true;
    }

    public static SubjectPattern Parse(string text) =>
        TryParse(text, out var pattern, out var error) ? pattern! : throw new FormatException(error);

    /// <summary>Returns null when the subject (or filter) is well formed, otherwise why not.</summary>
    public static string? Validate(string text, bool allowWildcards)
    {
        if (string.IsNullOrEmpty(text))
        {
            return "subject is empty";
        }
        // Token by token over the text itself: tenants and effect names are checked per event and per command.
        var rest = text.AsSpan();
        while (true)
        {
            var dot = rest.IndexOf('.');
            var token = dot < 0 ? rest : rest[..dot];
            var last = dot < 0;
            if (token.IsEmpty)
            {
                return $"subject '{text}' has an empty token";
            }
            foreach (var c in token)
            {
                if (char.IsWhiteSpace(c) || char.IsControl(c))
                {
                    return $"subject '{text}' contains whitespace or control characters";
                }
            }
            if (token is ">")
            {
                if (!allowWildcards)
                {
                    return $"subject '{text}' may not contain wildcards";
                }
                if (!last)
                {
                    return $"subject '{text}': '>' must be the last token";
                }
            }
            else if (token is "*")
            {
                if (!allowWildcards)
                {
                    return $"subject '{text}' may not contain wildcards";
                }
            }
            else if (token.ContainsAny('*', '>'))
            {
                return $"subject '{text}': wildcards must be whole tokens";
            }
            if (last)
            {
                return null;
            }
            rest = rest[(dot + 1)..];
        }
    }

    public bool Matches(string subject)
    {
        var position = 0;
        for (var i = 0; i < _tokens.Length; i++)
        {
            if (position > subject.Length)
            {
                return false;
            }
            var end = subject.IndexOf('.', position);
            var token = end < 0 ? subject.AsSpan(position) : subject.AsSpan(position, end - position);
            var want = _tokens[i];
            if (want == ">")
            {
                return token.Length > 0;
            }
            if (want != "*" && !token.SequenceEqual(want))
            {
                return false;
            }
            if (token.Length == 0)
            {
                return false;
            }
            position = end < 0 ? subject.Length + 1 : end + 1;
        }
        return position == subject.Length + 1;
    }

    /// <summary>True when every subject this pattern matches is also matched by <paramref name="other"/>.</summary>
    public bool IsCoveredBy(SubjectPattern other)
    {
        for (var i = 0; i < _tokens.Length; i++)
        {
            if (i >= other._tokens.Length)
            {
                return false;
            }
            var theirs = other._tokens[i];
            if (theirs == ">")
            {
                return true;
            }
            var mine = _tokens[i];
            if (mine == ">")
            {
                return false;
            }
            if (theirs != "*" && (mine == "*" || mine != theirs))
            {
                return false;
            }
        }
        return _tokens.Length == other._tokens.Length;
    }

    public override string ToString() => Text;
}
