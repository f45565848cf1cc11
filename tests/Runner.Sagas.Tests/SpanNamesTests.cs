using Runner.Messaging;
using Xunit;

namespace Runner.Sagas.Tests;

public sealed class SpanNamesTests
{
    [Fact]
    public void A_name_is_made_once_and_shared_until_the_cap_after_which_names_are_made_and_not_kept()
    {
        var names = new SpanNames("saga");
        var first = names.Of("orders");
        Assert.Equal("saga orders", first);
        Assert.Same(first, names.Of("orders"));

        for (var i = 1; i < SpanNames.MaxNames; i++)
        {
            names.Of("saga-" + i);
        }
        Assert.Equal(SpanNames.MaxNames, names.Kept);
        // Past the cap: still the right name, not kept; those kept before are still shared.
        var late = names.Of("late");
        Assert.Equal("saga late", late);
        Assert.NotSame(late, names.Of("late"));
        Assert.Equal(SpanNames.MaxNames, names.Kept);
        Assert.Same(first, names.Of("orders"));
    }

    [Fact]
    public async Task Names_asked_for_from_many_threads_at_once_are_kept_once_each_and_never_past_the_cap()
    {
        var names = new SpanNames("effect");
        await Task.WhenAll(Enumerable.Range(0, 8).Select(t => Task.Run(() =>
        {
            for (var i = 0; i < 2 * SpanNames.MaxNames; i++)
            {
                Assert.Equal("effect e" + i, names.Of("e" + i));
            }
        })));
        Assert.InRange(names.Kept, 1, SpanNames.MaxNames);

        // Whatever places the race left free are taken by fresh names, and then none more.
        for (var i = 0; i < 2 * SpanNames.MaxNames; i++)
        {
            names.Of("fresh" + i);
        }
        Assert.Equal(SpanNames.MaxNames, names.Kept);
    }
}
