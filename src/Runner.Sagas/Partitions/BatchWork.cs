using NATS.Client.JetStream;
using Runner.Core.Ids;
using Runner.Core.Transitions;
using Runner.Sagas.Outbox;
using Runner.Storage;

namespace Runner.Sagas.Partitions;

/// <summary>
/// An inbox message as the worker runs it: just read from the partition's consumer
/// (<see cref="Msg"/> set), or held for a parked instance and run again on resume (no message).
/// </summary>
internal sealed record InboxItem(IReadOnlyDictionary<string, string> Headers, byte[] Data, ulong Sequence, long InboxMs, string Subject, Messaging.JetStreamMessage? Msg)
{
    /// <summary>A message just read, with its delivery (its inbox sequence, and the inbox's time of it in Unix ms).</summary>
    public static InboxItem From(Messaging.JetStreamMessage msg, Messaging.Delivery delivery) =>
        new(msg.Headers, msg.Data, delivery.StreamSequence, delivery.Timestamp.ToUnixTimeMilliseconds(), msg.Subject, msg);

    public static InboxItem From(HeldMessage held) =>
        new(new Dictionary<string, string>(held.Headers, StringComparer.OrdinalIgnoreCase), held.Data, held.InboxSequence, held.InboxMs, held.Subject, null);

    public HeldMessage ToHeld() => new()
    {
        InboxSequence = Sequence,
        InboxMs = InboxMs,
        Subject = Subject,
        Headers = new Dictionary<string, string>(Headers, StringComparer.OrdinalIgnoreCase),
        Data = Data,
    };
}

/// <summary>One event of one instance, as its dedupe marker names it.</summary>
internal readonly record struct SeenEvent(InstanceId Instance, string EventId);

/// <summary>
/// Everything one inbox batch produces before it commits. Sized for <c>messages</c> transitions up
/// front: growing a batch's tables by doubling allocated about twice what they end up holding. A
/// worker that runs one batch at a time passes its <see cref="Tables"/>, emptied when the batch is
/// disposed, so the tables are not made again for every batch; without them the batch makes its own.
/// </summary>
internal sealed class BatchWork(PartitionId partition, int messages = 0, BatchWork.Tables? tables = null) : IDisposable
{
    /// <summary>The lookup tables of a batch, kept by a worker from one batch to the next (one batch at a time).</summary>
    internal sealed class Tables(int capacity = 0)
    {
        private int _taken;

        public Dictionary<InstanceId, SagaInstanceRecord> Instances { get; } = new(capacity);

        public HashSet<SeenEvent> SeenEvents { get; } = new(capacity);

        public Tables Take() => Interlocked.Exchange(ref _taken, 1) == 0
            ? this
            : throw new InvalidOperationException("a worker's batch tables are already in use by another batch");

        public void Return()
        {
            Instances.Clear();
            SeenEvents.Clear();
            Volatile.Write(ref _taken, 0);
        }
    }

    /// <summary>Ops one transition usually writes: state, history (and the step it drops), dedupe marker, one command.</summary>
    private const int OpsPerTransition = 5;

    public PartitionId Partition { get; } = partition;

    public WriteBatch Batch { get; } = new(messages * OpsPerTransition + 1);

    /// <summary>Room for the batch's values (records, history steps, markers), given back once it has committed.</summary>
    private readonly ValueArena _values = new();

    /// <summary>Puts <paramref name="value"/> as JSON, written into the batch's pooled room rather than an array of its own.</summary>
    public void PutJson<T>(Core.Keys.KeySpace space, byte[] key, T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type) =>
        PutJson(space, key, (value, type), static (writer, s) => System.Text.Json.JsonSerializer.Serialize(writer, s.value, s.type));

    /// <summary>
    /// Puts the document <paramref name="write"/> writes, into the batch's pooled room. A write that fails part way
    /// leaves nothing behind (the writer may already have handed the room some of it), so the next value starts clean.
    /// </summary>
    public void PutJson<TState>(Core.Keys.KeySpace space, byte[] key, TState state, Action<System.Text.Json.Utf8JsonWriter, TState> write)
    {
        try
        {
            Core.Json.ThreadJsonWriter.WriteTo(_values, state, write);
        }
        catch
        {
            _values.Discard();
            throw;
        }
        Batch.Put(space, key, _values.Take());
    }

    /// <summary>Gives the ops' and values' room back: only once the batch's commit has completed (or it never went to the writer).</summary>
    public void Dispose()
    {
        Batch.ReturnRoom();
        _values.Dispose();
        _tables.Return();
    }

    /// <summary>Instances as this batch left them, so later events in the batch see earlier transitions.</summary>
    public Dictionary<InstanceId, SagaInstanceRecord> Instances => _tables.Instances;

    /// <summary>Events this batch has applied or dropped, by instance and event id (what the dedupe marker's key says).</summary>
    public HashSet<SeenEvent> SeenEvents => _tables.SeenEvents;

    public List<OutboxEntry> Outbox { get; } = new(messages);

    public List<Messaging.JetStreamMessage> Terminated { get; } = [];

    public List<TransitionNotice> Notices { get; } = new(messages);

    /// <summary>
    /// For each instance this batch parked, held for or resumed: every message it holds now, in
    /// inbox order, whether committed before or added by this batch.
    /// </summary>
    public Dictionary<InstanceId, List<InboxItem>> Held { get; } = [];

    /// <summary>A transition of the batch set a timer: the scheduler is woken after the commit.</summary>
    public bool Scheduled { get; set; }

    /// <summary>Where the batch stands before one message is processed.</summary>
    internal readonly record struct Mark(int Ops, int Outbox, int Notices, int Terminated);

    public Mark Save() => new(Batch.Count, Outbox.Count, Notices.Count, Terminated.Count);

    /// <summary>
    /// Undoes whatever one message added before it failed unexpectedly, so no half transition can
    /// reach the commit. (Instances change only as the last step of a transition.)
    /// </summary>
    public void Restore(Mark mark)
    {
        Batch.TruncateTo(mark.Ops);
        Outbox.RemoveRange(mark.Outbox, Outbox.Count - mark.Outbox);
        Notices.RemoveRange(mark.Notices, Notices.Count - mark.Notices);
        Terminated.RemoveRange(mark.Terminated, Terminated.Count - mark.Terminated);
    }

    /// <summary>Claimed last of the fields (initializers run in order): nothing after it can fail and leave the tables claimed.</summary>
    private readonly Tables _tables = (tables ?? new Tables(messages)).Take();
}
