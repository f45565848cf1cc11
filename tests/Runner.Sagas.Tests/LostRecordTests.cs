using Runner.Sagas.Snapshots;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>Which stored snapshots a lost lease record may take back: those of the inbox it serves, told by their stamp.</summary>
public sealed class LostRecordTests
{
    private static readonly DateTimeOffset s_inboxCreated = new(2026, 12, 6, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void A_snapshot_stamped_with_this_inbox_is_its_own_whatever_its_stored_time_says()
    {
        var stored = new StoredSnapshot(s_inboxCreated.AddDays(-1), SnapshotStore.InboxStamp(s_inboxCreated));
        Assert.Null(LostRecord.OfAnotherInbox(stored, s_inboxCreated));
    }

    [Fact]
    public void A_snapshot_stamped_with_another_inbox_is_not_taken_even_when_stored_after_this_one_was_made()
    {
        var former = s_inboxCreated.AddHours(-3);
        var stored = new StoredSnapshot(s_inboxCreated.AddMinutes(5), SnapshotStore.InboxStamp(former));
        var why = LostRecord.OfAnotherInbox(stored, s_inboxCreated);
        Assert.NotNull(why);
        Assert.Contains(SnapshotStore.InboxStamp(former), why, StringComparison.Ordinal);
        Assert.Contains(SnapshotStore.InboxStamp(s_inboxCreated), why, StringComparison.Ordinal);
    }

    [Fact]
    public void The_stamp_tells_inboxes_apart_to_the_tick()
    {
        var stored = new StoredSnapshot(s_inboxCreated.AddMinutes(5), SnapshotStore.InboxStamp(s_inboxCreated.AddTicks(1)));
        Assert.NotNull(LostRecord.OfAnotherInbox(stored, s_inboxCreated));
    }

    [Theory]
    [InlineData(-60, false)]
    [InlineData(60, true)]
    public void An_unstamped_snapshot_is_judged_by_when_it_was_stored(int secondsAfterInbox, bool usable)
    {
        var stored = new StoredSnapshot(s_inboxCreated.AddSeconds(secondsAfterInbox), null);
        Assert.Equal(usable, LostRecord.OfAnotherInbox(stored, s_inboxCreated) is null);
    }
}
