using System.Globalization;
using System.Text;
using Runner.Core.Ids;

namespace Runner.Core.Keys;

/// <summary>
/// Key composition for every keyspace. Keys are UTF-8 text, components joined by the ASCII unit
/// separator (0x1F), numbers zero-padded so that byte order is numeric order. Every key that
/// belongs to a saga instance starts with its partition, so one partition's records form one
/// contiguous range (what a partition hand-over copies) and carries the tenant.
/// </summary>
internal static class StoreKeys
{
    public const char Separator = '\u001f';

    /// <summary>Marker used in place of a partition or tenant that is not known (router stage).</summary>
    public const string None = "-";

    public static byte[] Instance(PartitionId partition, InstanceId instance) =>
        Join(Partition(partition), instance.Tenant.Value, instance.Saga.Value, instance.Key.Value);

    /// <summary>One step of an instance's history: its version after the transition, so the steps sort in order.</summary>
    public static byte[] History(PartitionId partition, InstanceId instance, long version) =>
        version >= 0
            ? JoinedUtf8.ToArray([Partition(partition), instance.Tenant.Value, instance.Saga.Value, instance.Key.Value], (ulong)version)
            : Join(Partition(partition), instance.Tenant.Value, instance.Saga.Value, instance.Key.Value, version.ToString("D20", CultureInfo.InvariantCulture));

    /// <summary>Prefix of every history step of one instance (ends with the separator, so key "a" never matches "ab").</summary>
    public static byte[] HistoryPrefix(PartitionId partition, InstanceId instance) =>
        Join(Partition(partition), instance.Tenant.Value, instance.Saga.Value, instance.Key.Value, string.Empty);

    /// <summary>An inbox message held for a parked instance, by its inbox sequence (held ones re-run in this order).</summary>
    public static byte[] Held(PartitionId partition, InstanceId instance, ulong inboxSequence) =>
        Join(Partition(partition), instance.Tenant.Value, instance.Saga.Value, instance.Key.Value, inboxSequence.ToString("D20", CultureInfo.InvariantCulture));

    public static byte[] Checkpoint(string consumer, PartitionId partition) =>
        Join(Partition(partition), consumer);

    public static byte[] Outbox(PartitionId partition, ulong inboxSequence, int index) =>
        Join(Partition(partition), inboxSequence.ToString("D20", CultureInfo.InvariantCulture), index.ToString("D5", CultureInfo.InvariantCulture));

    /// <summary>Prefix of all outbox items of a partition, in the order they were committed.</summary>
    public static byte[] OutboxPrefix(PartitionId partition) => Join(Partition(partition), string.Empty);

    /// <summary>Schedules of a partition sort by due time, so a range scan yields the due ones first.</summary>
    /// <remarks>
    /// <paramref name="generation"/> is the instance version of the transition that set the timer:
    /// a timer set again under the same name and due time is a different item, so the scheduler's
    /// delete of the old one after its PubAck can never remove the new one.
    /// </remarks>
    public static byte[] Schedule(PartitionId partition, long dueMs, InstanceId instance, string name, long generation) =>
        Join(Partition(partition), Millis(dueMs), instance.Tenant.Value, instance.Saga.Value, instance.Key.Value, name,
            generation.ToString("D20", CultureInfo.InvariantCulture));

    public static byte[] SchedulePrefix(PartitionId partition) => Join(Partition(partition), string.Empty);

    /// <summary>Sorts after every schedule key of the partition due before <paramref name="dueMs"/> and before the rest.</summary>
    public static byte[] ScheduleDueBound(PartitionId partition, long dueMs) => Join(Partition(partition), Millis(dueMs));

    /// <summary>The due time of a schedule key, or null when the key is not one.</summary>
    public static long? ScheduleDue(ReadOnlySpan<byte> key)
    {
        // {partition:5}␟{due:15}␟…
        const int Start = 6;
        if (key.Length < Start + 15 || key[Start - 1] != (byte)Separator)
        {
            return null;
        }
        return System.Buffers.Text.Utf8Parser.TryParse(key.Slice(Start, 15), out long due, out var consumed) && consumed == 15 ? due : null;
    }

    public static byte[] Dedupe(PartitionId partition, InstanceId instance, string eventId) =>
        Join(Partition(partition), instance.Tenant.Value, instance.Saga.Value, instance.Key.Value, eventId);

    public static byte[] Quarantine(string? tenant, PartitionId? partition, long timeMs, string stream, ulong sequence, string? saga) =>
        Join(
            string.IsNullOrEmpty(tenant) ? None : tenant,
            partition is { } p ? Partition(p) : None,
            Millis(timeMs),
            stream,
            sequence.ToString("D20", CultureInfo.InvariantCulture),
            saga ?? None);

    public static string Partition(PartitionId partition) =>
        (uint)partition.Value < (uint)s_partitions.Length
            ? s_partitions[partition.Value] ??= Format(partition.Value)
            : Format(partition.Value);

    /// <summary>The partition component, made once per partition: every key of every transition starts with it.</summary>
    private static readonly string?[] s_partitions = new string?[4096];

    private static string Format(int partition) => partition.ToString("D5", CultureInfo.InvariantCulture);

    /// <summary>True when a key component can be stored without breaking key composition.</summary>
    public static bool IsValidComponent(string value) =>
        value.Length > 0 && value.Length <= 256 && Encoding.UTF8.GetByteCount(value) <= 256
        && !value.Contains(Separator, StringComparison.Ordinal) && !value.Contains('\0', StringComparison.Ordinal);

    public static string[] Split(ReadOnlySpan<byte> key) => Encoding.UTF8.GetString(key).Split(Separator);

    private static string Millis(long ms) => ms.ToString("D15", CultureInfo.InvariantCulture);

    internal static byte[] Join(params ReadOnlySpan<string> parts) => JoinedUtf8.ToArray(parts);
}
