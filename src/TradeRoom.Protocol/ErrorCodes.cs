namespace TradeRoom.Protocol;

/// <summary>The <c>code</c> values of <c>error</c> and <c>auth_error</c> frames and of HTTP error bodies.</summary>
public static class ErrorCodes
{
    public const string InvalidJson = "invalid_json";
    public const string InvalidMessage = "invalid_message";
    public const string UnknownType = "unknown_type";
    public const string NotAuthenticated = "not_authenticated";
    public const string InvalidRoom = "invalid_room";
    public const string InvalidToken = "invalid_token";
    public const string TokenExpired = "token_expired";
    public const string UserMismatch = "user_mismatch";
    public const string MissingUser = "missing_user";
    public const string TooManySubscriptions = "too_many_subscriptions";
    public const string RateLimited = "rate_limited";
    public const string TooManyConnections = "too_many_connections";
    public const string Unauthorized = "unauthorized";
    public const string Forbidden = "forbidden";
    public const string PayloadTooLarge = "payload_too_large";
    public const string Timeout = "timeout";
    public const string RoomNotFound = "room_not_found";
    /// <summary>The server's room cap (<c>rooms.max-rooms</c>) or the connection's new-room budget is reached.</summary>
    public const string RoomLimit = "room_limit";
    /// <summary>Room authorization could not be decided (the callback timed out or failed): fail closed.</summary>
    public const string AuthorizationUnavailable = "authorization_unavailable";
    /// <summary>The room's store (its journal) cannot be written or read now: nothing unstored is delivered.</summary>
    public const string StorageUnavailable = "storage_unavailable";
    /// <summary>The room's delivery on this server stopped (its relay here failed): the subscription ended; subscribe again to resume.</summary>
    public const string RoomUnavailable = "room_unavailable";
}

/// <summary>WebSocket close codes the server uses (see docs/protocol.md).</summary>
public static class CloseCodes
{
    public const int Normal = 1000;
    public const int GoingAway = 1001;
    public const int UnsupportedData = 1003;
    /// <summary>Never sent: what a connection that ended without a close frame (dropped, reset) is recorded as.</summary>
    public const int NoCloseFrame = 1006;
    public const int PolicyViolation = 1008;
    public const int MessageTooBig = 1009;
    public const int InternalError = 1011;
    public const int HeartbeatTimeout = 4000;
    public const int AuthenticationFailed = 4001;
    public const int SlowConsumer = 4008;
    public const int TooManyConnections = 4009;
}
