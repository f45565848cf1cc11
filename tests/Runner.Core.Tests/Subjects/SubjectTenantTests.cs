using Runner.Core.Subjects;

namespace Runner.Core.Tests.Subjects;

public sealed class SubjectTenantTests
{
    [Theory]
    [InlineData("aggregate.acme.order.42.created", "acme")]
    [InlineData("aggregate.acme", "acme")]
    [InlineData("pipeline.globex.etl.completed", "globex")]
    [InlineData("lineage.umbrella.dataset.v1", "umbrella")]
    [InlineData("workflow.evt.initech.http.succeeded", "initech")]
    [InlineData("workflow.cmd.initech.http", "initech")]
    [InlineData("workflow.evt.initech", "initech")]
    public void The_tenant_is_the_token_after_the_subjects_prefix(string subject, string tenant) =>
        Assert.Equal(tenant, SubjectTenant.FromSubject(subject));

    [Theory]
    [InlineData("aggregate")]
    [InlineData("aggregate.")]
    [InlineData("aggregate..order")]
    [InlineData("workflow.evt")]
    [InlineData("workflow.evt.")]
    [InlineData("workflow.evt..http")]
    [InlineData("workflow")]
    [InlineData("orders.acme.created")]
    [InlineData("aggregates.acme.created")]
    [InlineData("")]
    public void A_subject_that_names_no_tenant_gives_none(string subject) =>
        Assert.Null(SubjectTenant.FromSubject(subject));
}
