using System.Text;
using Runner.Core.Transitions;

namespace Runner.Core.Tests.Transitions;

public sealed class TransitionOutputParserTests
{
    private const long Now = 1_700_000_000_000;

    private static TransitionOutput Accept(string json)
    {
        Assert.True(TransitionOutputParser.TryParse(json, Now, out var output, out var error), error);
        Assert.Null(error);
        return output!;
    }

    private static string Reject(string json)
    {
        Assert.False(TransitionOutputParser.TryParse(json, Now, out var output, out var error));
        Assert.Null(output);
        Assert.NotNull(error);
        return error;
    }

    [Fact]
    public void Full_output_is_parsed()
    {
        var output = Accept("""
            {
              "state": {"status":"running","n":[1,2]},
              "commands": [
                {"effect":"slice.launch","id":"orders-abc","payload":{"x":1},"pool":"gpu"},
                {"effect":"http.call"}
              ],
              "schedules": [
                {"name":"deadline","at":1700000600000},
                {"name":"retry","after_ms":500,"payload":{"attempt":2}}
              ],
              "cancel": ["old-timer"],
              "done": true
            }
            """);

        Assert.Equal("""{"status":"running","n":[1,2]}""", output.StateJson);
        Assert.Equal(
            [("slice.launch", "orders-abc", """{"x":1}""", "gpu"), ("http.call", null, "null", null)],
            output.Commands.Select(c => (c.Effect, c.Id, c.PayloadJson, c.Pool)));
        Assert.Equal(
            [new ScheduleRequest("deadline", 1_700_000_600_000, null), new ScheduleRequest("retry", Now + 500, """{"attempt":2}""")],
            output.Schedules);
        Assert.Equal(["old-timer"], output.Cancel);
        Assert.True(output.Done);
    }

    [Fact]
    public void Empty_object_is_a_transition_that_changes_nothing()
    {
        var output = Accept("{}");

        Assert.Equal("null", output.StateJson);
        Assert.Empty(output.Commands);
        Assert.Empty(output.Schedules);
        Assert.Empty(output.Cancel);
        Assert.False(output.Done);
    }

    [Fact]
    public void Null_lists_and_done_are_treated_as_absent()
    {
        var output = Accept("""{"state":1,"commands":null,"schedules":null,"cancel":null,"done":null}""");

        Assert.Equal("1", output.StateJson);
        Assert.Empty(output.Commands);
        Assert.False(output.Done);
    }

    [Fact]
    public void Output_that_is_not_json_is_a_violation()
    {
        Assert.Contains("not JSON-serializable", Reject("{state:"), StringComparison.Ordinal);
    }

    [Fact]
    public void Output_with_a_second_value_after_the_first_is_a_violation()
    {
        Assert.Contains("after a single JSON value", Reject("""{"state":{"n":1}} {"state":{"n":2}}"""), StringComparison.Ordinal);
    }

    [Fact]
    public void Output_text_with_a_lone_surrogate_is_a_violation_not_an_exception()
    {
        Assert.Contains("not valid Unicode", Reject("{\"state\":{\"t\":\"\ud83d\"}}"), StringComparison.Ordinal);
    }

    [Fact]
    public void State_and_payloads_are_read_from_the_results_own_copy_of_the_bytes()
    {
        var utf8 = Encoding.UTF8.GetBytes("""{"state":{"n":7,"t":"été"},"commands":[{"effect":"pay","payload":{"amount":3}}]}""");
        Assert.True(TransitionOutputParser.TryParse(utf8.AsSpan(), Now, out var output, out var error), error);

        // The caller's buffer is reused for the next result: what was read must not change with it.
        utf8.AsSpan().Fill((byte)' ');
        Assert.Equal("""{"n":7,"t":"été"}""", output!.StateJson);
        Assert.Equal("""{"amount":3}""", Assert.Single(output.Commands).PayloadJson);
    }

    [Theory]
    [InlineData("[]")]
    [InlineData("42")]
    [InlineData("\"state\"")]
    [InlineData("null")]
    public void Output_that_is_not_an_object_is_a_violation(string json)
    {
        Assert.Contains("must return an object", Reject(json), StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_field_is_a_violation()
    {
        Assert.Equal("result has unknown field 'command'", Reject("""{"state":{},"command":[]}"""));
    }

    [Fact]
    public void Done_that_is_not_a_boolean_is_a_violation()
    {
        Assert.Equal("'done' must be a boolean", Reject("""{"done":"yes"}"""));
    }

    [Theory]
    [InlineData("commands", """{"commands":{"effect":"x"}}""")]
    [InlineData("commands", """{"commands":"x"}""")]
    [InlineData("schedules", """{"schedules":{}}""")]
    [InlineData("cancel", """{"cancel":"deadline"}""")]
    public void Lists_that_are_not_lists_are_violations(string field, string json)
    {
        Assert.Equal($"'{field}' must be a list", Reject(json));
    }

    [Fact]
    public void Command_that_is_not_an_object_is_a_violation()
    {
        Assert.Equal("commands[0] must be an object", Reject("""{"commands":["http.call"]}"""));
    }

    [Theory]
    [InlineData("""{"commands":[{"payload":{}}]}""")]
    [InlineData("""{"commands":[{"effect":""}]}""")]
    [InlineData("""{"commands":[{"effect":42}]}""")]
    [InlineData("""{"commands":[{"effect":"http.*"}]}""")]
    [InlineData("""{"commands":[{"effect":"has space"}]}""")]
    public void Command_without_a_valid_effect_is_a_violation(string json)
    {
        Assert.StartsWith("commands[0].effect must be", Reject(json), StringComparison.Ordinal);
    }

    [Fact]
    public void Violation_names_the_offending_command()
    {
        Assert.StartsWith("commands[2].effect", Reject("""{"commands":[{"effect":"a"},{"effect":"b"},{}]}"""), StringComparison.Ordinal);
    }

    [Fact]
    public void Command_with_an_unknown_field_is_a_violation()
    {
        Assert.Equal("commands[0] has unknown field 'target'", Reject("""{"commands":[{"effect":"a","target":"b"}]}"""));
    }

    [Fact]
    public void Command_id_too_long_is_a_violation()
    {
        Assert.StartsWith("commands[0].id", Reject($$"""{"commands":[{"effect":"a","id":"{{new string('i', 257)}}"}]}"""), StringComparison.Ordinal);
    }

    [Fact]
    public void Command_pool_with_a_wildcard_is_a_violation()
    {
        Assert.StartsWith("commands[0].pool", Reject("""{"commands":[{"effect":"a","pool":">"}]}"""), StringComparison.Ordinal);
    }

    [Fact]
    public void Schedule_with_both_at_and_after_ms_is_a_violation()
    {
        Assert.Contains("exactly one of 'at'", Reject("""{"schedules":[{"name":"t","at":1,"after_ms":2}]}"""), StringComparison.Ordinal);
    }

    [Fact]
    public void Schedule_with_neither_at_nor_after_ms_is_a_violation()
    {
        Assert.Contains("exactly one of 'at'", Reject("""{"schedules":[{"name":"t"}]}"""), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"schedules":[{"name":"t","after_ms":-1}]}""")]
    [InlineData("""{"schedules":[{"name":"t","at":-5}]}""")]
    public void Negative_schedule_time_is_a_violation(string json)
    {
        Assert.Equal("schedules[0]: times must not be negative", Reject(json));
    }

    [Theory]
    [InlineData("""{"schedules":[{"name":"t","after_ms":1.5}]}""")]
    [InlineData("""{"schedules":[{"name":"t","after_ms":"10"}]}""")]
    [InlineData("""{"schedules":[{"name":"t","at":1e300}]}""")]
    public void Schedule_time_that_is_not_an_integer_is_a_violation(string json)
    {
        Assert.Contains("exactly one of 'at'", Reject(json), StringComparison.Ordinal);
    }

    [Fact]
    public void Schedule_without_a_name_is_a_violation()
    {
        Assert.Equal("schedules[0].name must be a non-empty string", Reject("""{"schedules":[{"after_ms":1}]}"""));
    }

    [Fact]
    public void Schedule_with_an_unknown_field_is_a_violation()
    {
        Assert.Equal("schedules[0] has unknown field 'every'", Reject("""{"schedules":[{"name":"t","after_ms":1,"every":5}]}"""));
    }

    [Theory]
    [InlineData("""{"cancel":[1]}""")]
    [InlineData("""{"cancel":["a",null]}""")]
    [InlineData("""{"cancel":[""]}""")]
    [InlineData("""{"cancel":[{"name":"a"}]}""")]
    public void Cancel_entries_that_are_not_names_are_a_violation(string json)
    {
        Assert.Equal("'cancel' must be a list of schedule names", Reject(json));
    }

    [Fact]
    public void Too_many_commands_is_a_violation()
    {
        var json = new StringBuilder("{\"commands\":[");
        for (var i = 0; i <= TransitionOutputParser.MaxCommands; i++)
        {
            json.Append(i == 0 ? "" : ",").Append("{\"effect\":\"a\"}");
        }
        json.Append("]}");

        Assert.Equal($"'commands' has {TransitionOutputParser.MaxCommands + 1} items, the limit is {TransitionOutputParser.MaxCommands}", Reject(json.ToString()));
    }

    [Fact]
    public void Exactly_the_maximum_number_of_commands_is_accepted()
    {
        var commands = string.Join(',', Enumerable.Repeat("{\"effect\":\"a\"}", TransitionOutputParser.MaxCommands));

        Assert.Equal(TransitionOutputParser.MaxCommands, Accept($"{{\"commands\":[{commands}]}}").Commands.Count);
    }

    [Fact]
    public void State_nested_deeper_than_the_limit_is_a_violation()
    {
        var json = "{\"state\":" + new string('[', 100) + new string(']', 100) + "}";

        Assert.Contains("not JSON-serializable", Reject(json), StringComparison.Ordinal);
    }

    [Fact]
    public void Schedule_may_be_marked_as_a_deadline()
    {
        var output = Accept("""{"schedules":[{"name":"d","after_ms":5,"deadline":true},{"name":"r","after_ms":6,"deadline":false},{"name":"n","after_ms":7,"deadline":null}]}""");

        Assert.Equal([new ScheduleRequest("d", Now + 5, null, Deadline: true), new ScheduleRequest("r", Now + 6, null), new ScheduleRequest("n", Now + 7, null)], output.Schedules);
    }

    [Fact]
    public void Deadline_that_is_not_a_boolean_is_a_violation()
    {
        Assert.Equal("schedules[0].deadline must be a boolean", Reject("""{"schedules":[{"name":"d","after_ms":5,"deadline":"yes"}]}"""));
    }

    [Theory]
    [InlineData("""{"schedules":[{"name":"t","at":253402300800000}]}""")]
    [InlineData("""{"schedules":[{"name":"t","after_ms":8000000000000000}]}""")]
    public void Schedule_due_after_the_year_9999_is_a_violation(string json)
    {
        // Past it, a due time no longer fits the 15 digits schedule keys sort by.
        Assert.Equal("schedules[0]: the timer would be due after 9999-12-31T23:59:59.999Z", Reject(json));
    }

    [Fact]
    public void Schedule_due_at_the_last_millisecond_of_9999_is_accepted()
    {
        Assert.Equal(TransitionOutputParser.MaxDueMs, Accept("""{"schedules":[{"name":"t","at":253402300799999}]}""").Schedules[0].DueMs);
    }
}
