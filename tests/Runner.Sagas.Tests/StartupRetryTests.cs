using Microsoft.Extensions.Logging.Abstractions;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using Runner.Messaging;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>What a starting replica waits through, and what ends its start.</summary>
public sealed class StartupRetryTests
{
    public static TheoryData<Exception> Unanswered() =>
    [
        new NatsJSPublishNoResponseException(),
        new NatsNoRespondersException(),
        new NatsNoReplyException(),
        new TimeoutException(),
        new NatsJSApiException(new ApiError { Code = 503, Description = "JetStream system temporarily unavailable" }),
    ];

    [Theory]
    [MemberData(nameof(Unanswered))]
    public async Task A_call_nobody_answered_yet_is_tried_again_until_it_succeeds(Exception unanswered)
    {
        var calls = 0;
        var result = await StartupRetry.RunAsync("manifest versions", _ =>
            ++calls < 3 ? Task.FromException<int>(unanswered) : Task.FromResult(42),
            NullLogger.Instance, TimeProvider.System, CancellationToken.None);

        Assert.Equal(42, result);
        Assert.Equal(3, calls);
    }

    [Fact]
    public async Task A_refusal_ends_the_start_at_once()
    {
        var calls = 0;
        var refused = new NatsJSApiException(new ApiError { Code = 400, ErrCode = 10058, Description = "stream name already in use" });

        var thrown = await Assert.ThrowsAsync<NatsJSApiException>(() => StartupRetry.RunAsync("streams", _ =>
        {
            calls++;
            return Task.FromException<int>(refused);
        }, NullLogger.Instance, TimeProvider.System, CancellationToken.None));

        Assert.Same(refused, thrown);
        Assert.Equal(1, calls);
    }
}
