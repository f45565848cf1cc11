namespace Runner.Core.Subjects;

/// <summary>
/// Reads the tenant out of a platform subject: <c>aggregate.{tenant}.…</c>, <c>pipeline.{tenant}.…</c>,
/// <c>lineage.{tenant}.…</c>, <c>workflow.evt.{tenant}.…</c>, <c>workflow.cmd.{tenant}.…</c>.
/// </summary>
internal static class SubjectTenant
{
    public static string? FromSubject(string subject)
    {
        var tokens = subject.Split('.');
        var index = tokens[0] switch
        {
            "aggregate" or "pipeline" or "lineage" => 1,
            "workflow" => 2,
            _ => -1,
        };
        return index > 0 && tokens.Length > index && tokens[index].Length > 0 ? tokens[index] : null;
    }
}
