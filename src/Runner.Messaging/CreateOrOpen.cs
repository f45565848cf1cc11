using System.Runtime.ExceptionServices;
using NATS.Client.JetStream;

namespace Runner.Messaging;

/// <summary>
/// Creating the streams and buckets that every replica of a deployment creates when missing.
/// Replicas started together send the same create at the same moment, and the server refuses all
/// but one: "stream name already in use", or, when both passed its name check before either stream
/// was added, "subjects overlap with an existing stream". Both mean "another replica created it":
/// the loser opens what the winner created. A refusal with nothing of that name behind it (the
/// subjects belong to some other stream) stands.
/// </summary>
internal static class CreateOrOpen
{
    public const int NameInUse = 10058;
    public const int SubjectsOverlap = 10065;

    public static bool MayBeTwin(NatsJSApiException refused) => refused.Error.ErrCode is NameInUse or SubjectsOverlap;

    public static async Task<T> RunAsync<T>(Func<CancellationToken, ValueTask<T>> create, Func<CancellationToken, ValueTask<T>> open, CancellationToken cancellationToken)
    {
        try
        {
            return await create(cancellationToken);
        }
        catch (NatsJSApiException refused) when (MayBeTwin(refused))
        {
            try
            {
                return await open(cancellationToken);
            }
            catch (NatsJSApiException missing) when (missing.Error.Code == 404)
            {
                ExceptionDispatchInfo.Throw(refused);
                throw;
            }
        }
    }
}
