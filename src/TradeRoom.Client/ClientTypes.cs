using System.Text.Json;

namespace TradeRoom.Client;

/// <summary>Where the client is.</summary>
public enum ClientState
{
    /// <summary>Made, never connected.</summary>
    Idle,
    /// <summary>The first connection after <see cref="TradeRoomClient.ConnectAsync"/> is under way.</summary>
    Connecting,
    /// <summary>Connected and authenticated.</summary>
    Connected,
    /// <summary>A connection ended; waiting for the next attempt or making it.</summary>
    Reconnecting,
    /// <summary>Stopped: closed by the application, or a close that retrying cannot fix (see the reconnect policy).</summary>
    Closed,
}

/// <summary>A change of <see cref="TradeRoomClient.State"/>.</summary>
/// <param name="State">The new state.</param>
/// <param name="Attempt">The reconnect attempt (1, 2, …) for <see cref="ClientState.Reconnecting"/>, else 0.</param>
/// <param name="Delay">The backoff before that attempt.</param>
/// <param name="Url">The URL of the connection, or of the attempt under way or next.</param>
/// <param name="Node">The server node of the connection (<c>auth_success</c>'s <c>data.node</c>), if connected.</param>
public sealed record StateChange(ClientState State, int Attempt, TimeSpan Delay, Uri Url, string? Node);

/// <summary>An <c>auth_success</c>: the authenticated user and the server node the connection is on.</summary>
public sealed record AuthInfo(string UserId, string? Node);

/// <summary>A connection that ended.</summary>
/// <param name="Code">The close code (<see cref="CloseCodes"/>); 1006 when there was no close frame.</param>
/// <param name="Reason">The close reason; for 1006, what ended the link (<c>connection failed</c>, <c>ping_timeout</c>, …).</param>
/// <param name="WillReconnect">What the reconnect policy decided.</param>
/// <param name="Url">The URL the connection was to.</param>
/// <param name="Node">The node it was on; null if it never got <c>auth_success</c>.</param>
public sealed record CloseInfo(int Code, string Reason, bool WillReconnect, Uri Url, string? Node);

/// <summary>A <c>subscribed</c> answer, as the room's handlers see it.</summary>
/// <param name="BullPenId">The room.</param>
/// <param name="Seq">The room's head when it answered.</param>
/// <param name="Epoch">The room's epoch, kept for the next resume.</param>
/// <param name="Recovered">
/// True: every event since the room's position follows, in order. False: the events in between are gone (a first
/// subscribe, a new epoch, or a position older than the room's history): redraw from <paramref name="State"/>.
/// </param>
/// <param name="State">The room's state up to <paramref name="Seq"/>.</param>
public sealed record SubscribedInfo(string BullPenId, long Seq, string Epoch, bool Recovered, RoomSnapshot State);

/// <summary>One event of a room: <c>{"type","bullPenId","seq","data"}</c>.</summary>
public sealed record EventFrame(string Type, string BullPenId, long Seq, JsonElement Data)
{
    /// <summary>The data as <typeparamref name="T"/> (camelCase names, as the server's JSON).</summary>
    public T? DataAs<T>() => Data.Deserialize<T>(Json.Options);
}

/// <summary>
/// An error the client reports on <see cref="TradeRoomClient.Error"/>: the server's (<see cref="Frame"/> is
/// <c>error</c> or <c>auth_error</c>; <see cref="BullPenId"/> names the room of a refused subscribe) or the client's
/// own (<see cref="Frame"/> null): <c>transport_error</c>, <c>connect_timeout</c>, <c>ping_timeout</c>,
/// <c>token_error</c>, <c>invalid_frame</c>, <c>invalid_payload</c>, <c>callback_error</c>.
/// </summary>
public sealed record TradeRoomError(string Code, string Message)
{
    /// <summary><c>error</c> or <c>auth_error</c> for the server's errors; null for the client's own.</summary>
    public string? Frame { get; init; }

    public string? BullPenId { get; init; }

    /// <summary>The exception behind a client error (a callback's, the socket's, the token provider's).</summary>
    public Exception? Cause { get; init; }

    public override string ToString() => BullPenId is null ? $"{Code}: {Message}" : $"{Code} ({BullPenId}): {Message}";
}

/// <summary>Thrown by <see cref="TradeRoomClient.ConnectAsync"/> and <see cref="TradeRoomClient.RefreshTokenAsync"/> when they cannot succeed.</summary>
public sealed class TradeRoomClientException(TradeRoomError error, int? closeCode = null)
    : Exception(closeCode is { } code ? $"{error} (close {code})" : error.ToString(), error.Cause)
{
    public TradeRoomError Error { get; } = error;

    /// <summary>The error code: the server's (<c>invalid_token</c>, <c>token_expired</c>, <c>user_mismatch</c>, …) or <c>closed</c>, <c>not_connected</c>, <c>token_error</c>.</summary>
    public string Code => Error.Code;

    /// <summary>The close code of the connection whose end stopped the client, if that is why.</summary>
    public int? CloseCode { get; } = closeCode;
}

internal static class Json
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web);
}
