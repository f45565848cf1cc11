using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using Runner.Messaging;
using Xunit;

namespace Runner.Sagas.Tests;

/// <summary>Which failed NATS calls are waited out (the infrastructure's) and which count toward quarantine (the message's).</summary>
public sealed class PubAcksTests
{
    private static NatsJSApiException Api(int code, int errCode) => new(new ApiError { Code = code, ErrCode = errCode, Description = "test" });

    public static TheoryData<string, Exception, bool> Failures() => new()
    {
        { "no PubAck in time", new TimeoutException(), true },
        { "no responders (no stream leader)", new NatsNoRespondersException(), true },
        { "the reply subscription ended", new NatsNoReplyException(), true },
        { "JetStream unavailable (503)", Api(503, 10008), true },
        { "storage full", Api(500, 10047), true },
        { "stream not found (a bucket gone)", Api(404, 10059), true },
        { "larger than the stream allows", Api(400, PubAcks.MessageTooLarge), false },
        { "larger than the server's max payload", new NatsPayloadTooLargeException("too large"), false },
        { "a header the client will not write", new NatsException("Invalid header key 'a b'"), false },
        { "not a NATS failure", new InvalidDataException("not a claim record"), false },
    };

    [Theory]
    [MemberData(nameof(Failures))]
    public void A_failure_is_transient_only_when_it_is_not_the_messages(string what, Exception failure, bool transient)
    {
        Assert.True(PubAcks.IsTransient(failure) == transient, $"{what}: expected transient={transient}");
        Assert.False(transient && PubAcks.IsRefusal(failure), $"{what}: a transient failure is never a refusal");
    }
}
