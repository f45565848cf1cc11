using System.Globalization;
using Runner.Core.Ids;

namespace Runner.Core.Subjects;

/// <summary>Builds the subjects Runner publishes to.</summary>
internal static class Subjects
{
    public const string InboxPrefix = "runner.inbox";

    public static string Inbox(PartitionId partition) =>
        string.Create(CultureInfo.InvariantCulture, $"{InboxPrefix}.{partition.Value}");

    public static string Command(string tenant, string effect, string? pool) =>
        pool is null ? $"workflow.cmd.{tenant}.{effect}" : $"workflow.cmd.{tenant}.{effect}.{pool}";

    public static string Timer(string tenant, string saga) => $"workflow.evt.{tenant}.timer.{saga}";
}
