using System.Text;
using Runner.Sagas.Instances;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>The history's state hash from the state's UTF-8 bytes is the hash of its text: steps written before and after agree.</summary>
public sealed class HistoryStateHashTests
{
    [Theory]
    [InlineData("null")]
    [InlineData("""{"count":5}""")]
    [InlineData("""{"name":"é ü 漢字 😀","escaped":"\u0000\ud800","n":[1.5,-0,1e21]}""")]
    public void The_hash_of_the_bytes_is_the_hash_of_the_text(string state)
    {
        var fromText = HistoryWriter.StateHash(state);

        Assert.Equal(fromText, HistoryWriter.StateHash(Encoding.UTF8.GetBytes(state)));
        Assert.Equal(16, fromText.Length);
        Assert.NotEqual(fromText, HistoryWriter.StateHash(Encoding.UTF8.GetBytes(state + " ")));
    }
}
