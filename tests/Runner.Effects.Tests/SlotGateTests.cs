using Runner.Effects.Workers;
using Xunit;

namespace Runner.Effects.Tests;

public sealed class SlotGateTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Free_slots_are_taken_at_once_and_the_next_asker_waits_until_one_is_given_back()
    {
        using var gate = new SlotGate(2, CancellationToken.None);
        Assert.True(await gate.TakeAsync());
        Assert.True(await gate.TakeAsync());
        Assert.Equal(0, gate.Free);

        var third = gate.TakeAsync();
        Assert.False(third.IsCompleted);
        gate.Give();
        Assert.True(await third.AsTask().WaitAsync(s_timeout));
        Assert.Equal(0, gate.Free);

        gate.Give();
        gate.Give();
        Assert.Equal(2, gate.Free);
    }

    [Fact]
    public async Task Waiters_get_slots_in_the_order_they_asked()
    {
        using var gate = new SlotGate(1, CancellationToken.None);
        Assert.True(await gate.TakeAsync());
        var order = new List<int>();
        var waits = Enumerable.Range(0, 5).Select(i => Wait(i)).ToList();
        async Task Wait(int i)
        {
            Assert.True(await gate.TakeAsync());
            lock (order)
            {
                order.Add(i);
            }
            gate.Give();
        }

        gate.Give();
        await Task.WhenAll(waits).WaitAsync(s_timeout);
        Assert.Equal([0, 1, 2, 3, 4], order);
        Assert.Equal(1, gate.Free);
    }

    [Fact]
    public async Task Closing_wakes_every_waiter_with_false_and_still_gives_a_free_slot_after()
    {
        using var closing = new CancellationTokenSource();
        using var gate = new SlotGate(1, closing.Token);
        Assert.True(await gate.TakeAsync());
        var first = gate.TakeAsync().AsTask();
        var second = gate.TakeAsync().AsTask();

        await closing.CancelAsync();
        Assert.False(await first.WaitAsync(s_timeout));
        Assert.False(await second.WaitAsync(s_timeout));
        // No slot free: refused at once. A slot given back: taken (a command in hand may still run).
        Assert.False(await gate.TakeAsync());
        gate.Give();
        Assert.True(await gate.TakeAsync());
    }

    [Fact]
    public async Task A_waiter_whose_token_ends_gets_false_at_once_and_the_slot_goes_to_the_next_waiter()
    {
        using var gate = new SlotGate(1, CancellationToken.None);
        Assert.True(await gate.TakeAsync());
        using var lost = new CancellationTokenSource();
        var abandoned = gate.TakeAsync(lost.Token).AsTask();
        var next = gate.TakeAsync().AsTask();

        await lost.CancelAsync();
        Assert.False(await abandoned.WaitAsync(s_timeout));
        Assert.False(next.IsCompleted);
        // The abandoned wait's place in the queue is skipped: the slot given back goes to the one still waiting.
        gate.Give();
        Assert.True(await next.WaitAsync(s_timeout));
        Assert.Equal(0, gate.Free);
        gate.Give();
        Assert.Equal(1, gate.Free);

        // A token that ends after the slot was given changes nothing; one already ended refuses at once when no slot is free.
        Assert.True(await gate.TakeAsync(lost.Token));
        Assert.False(await gate.TakeAsync(lost.Token));
        using var later = new CancellationTokenSource();
        var served = gate.TakeAsync(later.Token).AsTask();
        gate.Give();
        Assert.True(await served.WaitAsync(s_timeout));
        await later.CancelAsync();
        gate.Give();
        Assert.Equal(1, gate.Free);
    }

    [Fact]
    public async Task A_wait_asked_after_an_abandoned_one_does_not_jump_the_queue_through_its_leftover_place()
    {
        using var gate = new SlotGate(1, CancellationToken.None);
        Assert.True(await gate.TakeAsync());
        using var lost = new CancellationTokenSource();
        var first = gate.TakeAsync(lost.Token).AsTask();
        var second = gate.TakeAsync().AsTask();
        await lost.CancelAsync();
        Assert.False(await first.WaitAsync(s_timeout));

        // Asked after the second: it must wait its turn, though the abandoned wait's place is still at the head.
        var third = gate.TakeAsync().AsTask();
        gate.Give();
        Assert.True(await second.WaitAsync(s_timeout));
        Assert.False(third.IsCompleted);
        gate.Give();
        Assert.True(await third.WaitAsync(s_timeout));
        gate.Give();
        Assert.Equal(1, gate.Free);
    }

    [Fact]
    public async Task Many_abandoned_waits_behind_a_held_slot_leave_the_live_ones_in_order()
    {
        using var gate = new SlotGate(1, CancellationToken.None);
        Assert.True(await gate.TakeAsync());
        var live = new List<Task<bool>>();
        for (var i = 0; i < 200; i++)
        {
            using var lost = new CancellationTokenSource();
            var abandoned = gate.TakeAsync(lost.Token).AsTask();
            if (i % 10 == 0)
            {
                live.Add(gate.TakeAsync().AsTask());
            }
            await lost.CancelAsync();
            Assert.False(await abandoned.WaitAsync(s_timeout));
        }

        // Each live wait, in the order asked, gets the slot as it is given back.
        for (var i = 0; i < live.Count; i++)
        {
            gate.Give();
            Assert.True(await live[i].WaitAsync(s_timeout));
            Assert.All(live.Skip(i + 1), t => Assert.False(t.IsCompleted));
        }
        gate.Give();
        Assert.Equal(1, gate.Free);
    }

    [Fact]
    public async Task Waiters_abandoning_while_slots_are_given_never_get_a_slot_twice_nor_lose_one()
    {
        const int Slots = 2;
        const int Workers = 8;
        const int Rounds = 1_000;
        using var gate = new SlotGate(Slots, CancellationToken.None);
        var holding = 0;
        var most = 0;
        var taken = 0;
        var abandoned = 0;
        await Task.WhenAll(Enumerable.Range(0, Workers).Select(w => Task.Run(async () =>
        {
            for (var i = 0; i < Rounds; i++)
            {
                using var lost = new CancellationTokenSource();
                var wait = gate.TakeAsync(lost.Token);
                if ((i + w) % 3 == 0)
                {
                    lost.Cancel();
                }
                if (!await wait)
                {
                    Interlocked.Increment(ref abandoned);
                    continue;
                }
                var now = Interlocked.Increment(ref holding);
                InterlockedMax(ref most, now);
                Interlocked.Increment(ref taken);
                if (i % 5 == 0)
                {
                    await Task.Yield();
                }
                Interlocked.Decrement(ref holding);
                gate.Give();
            }
        }))).WaitAsync(s_timeout);

        Assert.Equal(Workers * Rounds, taken + abandoned);
        // A wait whose token never ended always gets its slot.
        var neverCancelled = Enumerable.Range(0, Workers).Sum(w => Enumerable.Range(0, Rounds).Count(i => (i + w) % 3 != 0));
        Assert.InRange(taken, neverCancelled, Workers * Rounds);
        Assert.InRange(most, 1, Slots);
        // Every slot taken was given back, whatever the abandoned waits left in the queue.
        Assert.Equal(Slots, gate.Free);
    }

    [Fact]
    public async Task A_gate_made_with_a_token_already_cancelled_is_closed()
    {
        using var gate = new SlotGate(1, new CancellationToken(canceled: true));
        Assert.True(await gate.TakeAsync());
        Assert.False(await gate.TakeAsync());
    }

    [Fact]
    public async Task Many_concurrent_holders_never_exceed_the_slots_and_every_asker_gets_one()
    {
        const int Slots = 3;
        const int Workers = 8;
        const int Rounds = 2_000;
        using var gate = new SlotGate(Slots, CancellationToken.None);
        var holding = 0;
        var most = 0;
        var taken = 0;
        await Task.WhenAll(Enumerable.Range(0, Workers).Select(_ => Task.Run(async () =>
        {
            for (var i = 0; i < Rounds; i++)
            {
                Assert.True(await gate.TakeAsync());
                var now = Interlocked.Increment(ref holding);
                InterlockedMax(ref most, now);
                Interlocked.Increment(ref taken);
                if (i % 7 == 0)
                {
                    await Task.Yield();
                }
                Interlocked.Decrement(ref holding);
                gate.Give();
            }
        }))).WaitAsync(s_timeout);

        Assert.Equal(Workers * Rounds, taken);
        Assert.InRange(most, 1, Slots);
        Assert.Equal(Slots, gate.Free);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen)
        {
        }
    }
}
