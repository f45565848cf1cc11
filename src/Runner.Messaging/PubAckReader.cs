using System.Buffers;
using System.Text;
using System.Text.Json;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace Runner.Messaging;

/// <summary>
/// Reads a PubAck straight from its bytes. The pipeline reads one per publish (three per claimed
/// command, one or two per saga event), and the client's serializer spent more on walking its
/// metadata than on the few fields a PubAck has. The common shapes
/// (<c>{"stream":"S","seq":N}</c>, with <c>duplicate</c>, <c>domain</c>, <c>val</c> or fields unknown
/// here) are read here; an error reply or anything unexpected goes to that serializer, so what it
/// returns or throws is as before. The stream's name is kept and shared while it repeats.
/// </summary>
internal sealed class PubAckReader
{
    private Known? _known;

    /// <summary>The PubAck, null for a JSON <c>null</c>; throws <see cref="JsonException"/> when the bytes are not one.</summary>
    public PubAckResponse? Read(in ReadOnlySequence<byte> payload) =>
        TryRead(payload, out var ack) ? ack : NatsJSJsonSerializer<PubAckResponse>.Default.Deserialize(payload);

    private bool TryRead(in ReadOnlySequence<byte> payload, out PubAckResponse? ack)
    {
        ack = null;
        var reader = new Utf8JsonReader(payload);
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }
            string? stream = null;
            string? domain = null;
            string? value = null;
            ulong seq = 0;
            var duplicate = false;
            while (reader.Read())
            {
                if (reader.TokenType == JsonTokenType.EndObject)
                {
                    if (reader.Read())
                    {
                        return false; // something after the object: the serializer says what
                    }
                    ack = new PubAckResponse { Stream = stream, Seq = seq, Duplicate = duplicate, Domain = domain, Value = value };
                    return true;
                }
                if (reader.TokenType != JsonTokenType.PropertyName)
                {
                    return false;
                }
                if (reader.ValueTextEquals("stream"u8))
                {
                    if (!reader.Read() || reader.TokenType != JsonTokenType.String)
                    {
                        return false;
                    }
                    stream = Stream(ref reader);
                }
                else if (reader.ValueTextEquals("seq"u8))
                {
                    if (!reader.Read() || reader.TokenType != JsonTokenType.Number || !reader.TryGetUInt64(out seq))
                    {
                        return false;
                    }
                }
                else if (reader.ValueTextEquals("duplicate"u8))
                {
                    if (!reader.Read() || reader.TokenType is not (JsonTokenType.True or JsonTokenType.False))
                    {
                        return false;
                    }
                    duplicate = reader.GetBoolean();
                }
                else if (reader.ValueTextEquals("domain"u8))
                {
                    if (!TryReadText(ref reader, out domain))
                    {
                        return false;
                    }
                }
                else if (reader.ValueTextEquals("val"u8))
                {
                    if (!TryReadText(ref reader, out value))
                    {
                        return false;
                    }
                }
                else if (reader.ValueTextEquals("error"u8))
                {
                    return false; // a refusal: rare, and read by the serializer with its error model
                }
                else if (!reader.Read() || !reader.TrySkip())
                {
                    return false;
                }
            }
            return false;
        }
        catch (JsonException)
        {
            return false; // the serializer reads it again and throws its own error
        }
    }

    /// <summary>The string or null the property holds; false for anything else.</summary>
    private static bool TryReadText(ref Utf8JsonReader reader, out string? text)
    {
        text = null;
        if (!reader.Read() || reader.TokenType is not (JsonTokenType.String or JsonTokenType.Null))
        {
            return false;
        }
        text = reader.GetString();
        return true;
    }

    /// <summary>The stream's name, the one made before when it is the same.</summary>
    private string Stream(ref Utf8JsonReader reader)
    {
        if (Volatile.Read(ref _known) is { } known && reader.ValueTextEquals(known.Utf8))
        {
            return known.Name;
        }
        var name = reader.GetString()!;
        Volatile.Write(ref _known, new Known(name, Encoding.UTF8.GetBytes(name)));
        return name;
    }

    private sealed record Known(string Name, byte[] Utf8);
}
