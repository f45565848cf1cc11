namespace Runner.Core.Subjects;

/// <summary>
/// Reads the tenant out of a platform subject: <c>aggregate.{tenant}.…</c>, <c>pipeline.{tenant}.…</c>,
/// <c>lineage.{tenant}.…</c>, <c>workflow.evt.{tenant}.…</c>, <c>workflow.cmd.{tenant}.…</c>.
/// </summary>
internal static class SubjectTenant
{
    /// <summary>Tenants repeat from event to event: each is one string (up to this many).</summary>
    private static readonly Json.SharedStrings s_tenants = new(4096);

    /// <summary>The tenant token, or null when the subject names none. Walks the tokens in place: it runs for every event.</summary>
    public static string? FromSubject(string subject)
    {
        var span = subject.AsSpan();
        var dot = span.IndexOf('.');
        if (dot < 0)
        {
            return null;
        }
        var skip = span[..dot] switch
        {
            "aggregate" or "pipeline" or "lineage" => 0,
            "workflow" => 1,
            _ => -1,
        };
        if (skip < 0)
        {
            return null;
        }
        var start = dot + 1;
        for (var i = 0; i < skip; i++)
        {
            var next = span[start..].IndexOf('.');
            if (next < 0)
            {
                return null;
            }
            start += next + 1;
        }
        var length = span[start..].IndexOf('.');
        var token = length < 0 ? span[start..] : span.Slice(start, length);
        return token.IsEmpty ? null : s_tenants.Get(token);
    }
}
