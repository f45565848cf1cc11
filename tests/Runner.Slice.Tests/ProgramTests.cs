using Xunit;

namespace Runner.Slice.Tests;

public sealed class ProgramTests
{
    [Fact]
    public async Task Unknown_command_prints_usage_and_exits_2()
    {
        Assert.Equal(2, await Program.Main(["frobnicate"]));
    }
}
