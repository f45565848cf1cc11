using Runner.Effects.Providers;
using Runner.Testing;
using Xunit;

namespace Runner.Effects.Tests.Providers;

public sealed class SecretReaderTests : IDisposable
{
    private readonly TempDirectory _directory = new("runner-test-secrets");
    private readonly SecretReader _reader;

    public SecretReaderTests() => _reader = new SecretReader(_directory.Path);

    public void Dispose() => _directory.Dispose();

    [Theory]
    [InlineData("token\n", "token")]
    [InlineData("token\r\n", "token")]
    [InlineData("token", "token")]
    [InlineData("  spaced  \n", "  spaced  ")]
    public async Task One_trailing_newline_is_trimmed(string content, string expected)
    {
        await File.WriteAllTextAsync(_directory.File("api-key"), content);
        Assert.Equal(expected, await _reader.ReadAsync("api-key", CancellationToken.None));
    }

    [Fact]
    public async Task A_rotated_secret_is_read_again()
    {
        await File.WriteAllTextAsync(_directory.File("api-key"), "one\n");
        Assert.Equal("one", await _reader.ReadAsync("api-key", CancellationToken.None));
        await File.WriteAllTextAsync(_directory.File("api-key"), "two\n");
        Assert.Equal("two", await _reader.ReadAsync("api-key", CancellationToken.None));
    }

    [Fact]
    public async Task A_missing_secret_is_named_in_the_error()
    {
        var error = await Assert.ThrowsAsync<SecretUnavailableException>(() => _reader.ReadAsync("api-key", CancellationToken.None).AsTask());
        Assert.Contains("'api-key'", error.Message, StringComparison.Ordinal);
        Assert.Contains("not found", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("two\nlines\n")]
    [InlineData("\n")]
    [InlineData("")]
    public async Task A_secret_that_cannot_be_a_header_value_is_refused_without_its_content(string content)
    {
        await File.WriteAllTextAsync(_directory.File("api-key"), content);
        var error = await Assert.ThrowsAsync<SecretUnavailableException>(() => _reader.ReadAsync("api-key", CancellationToken.None).AsTask());
        Assert.Contains("'api-key'", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("lines", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("../passwd")]
    [InlineData("..")]
    [InlineData("a/b")]
    [InlineData("")]
    public async Task A_name_outside_the_directory_is_refused(string name) =>
        await Assert.ThrowsAsync<SecretUnavailableException>(() => _reader.ReadAsync(name, CancellationToken.None).AsTask());
}
