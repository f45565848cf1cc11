using Xunit;

namespace Runner.Slice.Tests;

public sealed class ProgramTests
{
    [Fact]
    public void Unknown_command_prints_usage_and_exits_2()
    {
        Assert.Equal(2, Program.Main(["frobnicate"]));
    }
}
