using System.Runtime.InteropServices;
using System.Text.Json;

namespace TradeRoom.Protocol;

/// <summary>A message a client sent over its socket, parsed.</summary>
public abstract record ClientMessage
{
    /// <summary>The message's <c>type</c>, when it had one.</summary>
    public abstract string? Type { get; }

    /// <summary>Whether the message is allowed before the connection has authenticated.</summary>
    public bool AllowedBeforeAuth => Type is ClientMessageTypes.Auth or ClientMessageTypes.Ping;
}

public sealed record AuthenticateMessage(string Token) : ClientMessage
{
    public override string Type => ClientMessageTypes.Auth;
}

/// <param name="SinceSeq">With <paramref name="Epoch"/>: the last seq the client saw, to resume after.</param>
public sealed record SubscribeRoomMessage(string BullPenId, long? SinceSeq = null, string? Epoch = null) : ClientMessage
{
    public override string Type => ClientMessageTypes.SubscribeRoom;
}

public sealed record UnsubscribeRoomMessage(string BullPenId) : ClientMessage
{
    public override string Type => ClientMessageTypes.UnsubscribeRoom;
}

/// <param name="Data">The ping's <c>data</c> as raw JSON, or null when it had none.</param>
public sealed record PingMessage(byte[]? Data) : ClientMessage
{
    public override string Type => ClientMessageTypes.Ping;
}

/// <summary>A message the parser could not accept; the connection answers it with an <c>error</c> frame.</summary>
/// <param name="BullPenId">The (valid) room the refused message was about, echoed in the error so that a client with
/// several requests in flight knows which one failed; null when the message names no usable room.</param>
public sealed record RejectedMessage(string? RejectedType, string Code, string Message, string? BullPenId = null) : ClientMessage
{
    public override string? Type => RejectedType;
}

public static class ClientMessageTypes
{
    public const string Auth = "auth";
    public const string SubscribeRoom = "subscribe_room";
    public const string UnsubscribeRoom = "unsubscribe_room";
    public const string Ping = "ping";
}

/// <summary>Parses one text frame from a client. Never throws: bad input becomes a <see cref="RejectedMessage"/>.</summary>
public static class ClientMessageParser
{
    private static readonly JsonDocumentOptions Options = new() { MaxDepth = 32 };

    public static ClientMessage Parse(ReadOnlyMemory<byte> utf8)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(utf8, Options);
        }
        catch (JsonException e)
        {
            return new RejectedMessage(null, ErrorCodes.InvalidJson, $"message is not valid JSON: {e.Message}");
        }

        using (document)
        {
            try
            {
                return ParseDocument(document.RootElement);
            }
            catch (InvalidOperationException)
            {
                // JsonDocument accepts lone surrogate escapes ("\ud800") and invalid UTF-8 inside strings; reading them throws.
                return new RejectedMessage(null, ErrorCodes.InvalidMessage, "message contains a string that is not valid Unicode text");
            }
        }
    }

    private static ClientMessage ParseDocument(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
            return new RejectedMessage(null, ErrorCodes.InvalidMessage, "a message must be a JSON object");
        if (!root.TryGetProperty("type", out var typeElement) || typeElement.ValueKind != JsonValueKind.String)
            return new RejectedMessage(null, ErrorCodes.InvalidMessage, "a message needs a string \"type\"");

        var type = typeElement.GetString()!;
        var hasData = root.TryGetProperty("data", out var data);
        return type switch
        {
            ClientMessageTypes.Auth => ParseAuth(hasData, data),
            ClientMessageTypes.SubscribeRoom => ParseRoom(type, hasData, data, id => ParseSubscribe(id, data)),
            ClientMessageTypes.UnsubscribeRoom => ParseRoom(type, hasData, data, id => new UnsubscribeRoomMessage(id)),
            // The ping's data goes back exactly as it came.
            ClientMessageTypes.Ping => new PingMessage(hasData ? JsonMarshal.GetRawUtf8Value(data).ToArray() : null),
            _ => new RejectedMessage(type, ErrorCodes.UnknownType, $"unknown message type \"{Truncate(type)}\""),
        };
    }

    private static ClientMessage ParseAuth(bool hasData, JsonElement data)
    {
        if (hasData && data.ValueKind == JsonValueKind.Object
            && data.TryGetProperty("token", out var token) && token.ValueKind == JsonValueKind.String)
            return new AuthenticateMessage(token.GetString()!);
        return new RejectedMessage(ClientMessageTypes.Auth, ErrorCodes.InvalidMessage, "auth needs data.token as a string");
    }

    private static ClientMessage ParseRoom(string type, bool hasData, JsonElement data, Func<string, ClientMessage> create)
    {
        if (!hasData || data.ValueKind != JsonValueKind.Object)
            return new RejectedMessage(type, ErrorCodes.InvalidMessage, $"{type} needs a \"data\" object with a bullPenId");
        if (!data.TryGetProperty("bullPenId", out var idElement))
            return new RejectedMessage(type, ErrorCodes.InvalidRoom, "data.bullPenId is missing");
        return BullPenId.TryRead(idElement, out var id, out var error)
            ? create(id)
            : new RejectedMessage(type, ErrorCodes.InvalidRoom, error);
    }

    private static ClientMessage ParseSubscribe(string bullPenId, JsonElement data)
    {
        long? sinceSeq = null;
        if (data.TryGetProperty("sinceSeq", out var since) && since.ValueKind != JsonValueKind.Null)
        {
            if (since.ValueKind != JsonValueKind.Number || !since.TryGetInt64(out var value) || value < 0)
                return new RejectedMessage(ClientMessageTypes.SubscribeRoom, ErrorCodes.InvalidMessage, "data.sinceSeq must be a non-negative integer", bullPenId);
            sinceSeq = value;
        }
        string? epoch = null;
        if (data.TryGetProperty("epoch", out var epochElement) && epochElement.ValueKind != JsonValueKind.Null)
        {
            if (epochElement.ValueKind != JsonValueKind.String)
                return new RejectedMessage(ClientMessageTypes.SubscribeRoom, ErrorCodes.InvalidMessage, "data.epoch must be a string", bullPenId);
            epoch = epochElement.GetString();
        }
        return new SubscribeRoomMessage(bullPenId, sinceSeq, epoch);
    }

    private static string Truncate(string value) => value.Length <= 64 ? value : value[..64] + "…";
}
