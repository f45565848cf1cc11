using Runner.Core.Json;
using Runner.Core.Subjects;
using Xunit;

namespace Runner.Core.Tests.Json;

public sealed class SharedStringsTests
{
    [Fact]
    public void Repeated_text_is_one_string_until_the_table_is_full_then_each_is_made_as_before()
    {
        var shared = new SharedStrings(capacity: 2);

        var first = shared.Get("acme.orders".AsSpan(0, 4));
        Assert.Equal("acme", first);
        Assert.Same(first, shared.Get("acme".AsSpan()));
        Assert.Same(shared.Get("initech"), shared.Get("initech"));

        var overflow = shared.Get("globex");
        var again = shared.Get("globex");
        Assert.Equal("globex", again);
        Assert.NotSame(overflow, again);
        Assert.Same(first, shared.Get("acme"));
    }

    [Fact]
    public void A_subjects_tenant_is_the_same_string_for_every_event_of_that_tenant()
    {
        var one = SubjectTenant.FromSubject("aggregate.acme-shared.order.1.created");
        var two = SubjectTenant.FromSubject("workflow.evt.acme-shared.orders.2.done");

        Assert.Equal("acme-shared", one);
        Assert.Same(one, two);
    }
}
