using Akka.Configuration;
using TradeRoom.Actors.Rooms;

namespace TradeRoom.Actors;

/// <summary>The server's settings, read from the <c>traderoom</c> section of the HOCON in <c>hocon/</c> (documented there and in the README).</summary>
public sealed record TradeRoomSettings
{
    public required int WsPort { get; init; }
    public required int ApiPort { get; init; }
    public required string BindAddress { get; init; }
    public required string JwtSecret { get; init; }
    public required TimeSpan JwtClockSkew { get; init; }
    public required int MaxMessageSize { get; init; }
    public required int MaxHandshakeSize { get; init; }
    public required TimeSpan HandshakeTimeout { get; init; }
    public required IReadOnlyList<string> AllowedOrigins { get; init; }
    public required long OutboundQueueLimit { get; init; }
    public required TimeSpan CloseTimeout { get; init; }
    public required long MaxBodySize { get; init; }
    public required TimeSpan PublishTimeout { get; init; }
    public required RoomSettings Rooms { get; init; }
    public required TimeSpan ShutdownTimeout { get; init; }

    /// <summary>Reads the settings from a config holding the <c>traderoom</c> section.</summary>
    public static TradeRoomSettings FromConfig(Config config)
    {
        var c = config.GetConfig("traderoom") ?? throw new ConfigurationException("the HOCON has no traderoom section");
        return new TradeRoomSettings
        {
            WsPort = c.GetInt("ws-port"),
            ApiPort = c.GetInt("api-port"),
            BindAddress = c.GetString("bind-address"),
            JwtSecret = c.GetString("jwt.secret") ?? "",
            JwtClockSkew = c.GetTimeSpan("jwt.clock-skew"),
            MaxMessageSize = checked((int)c.GetByteSize("websocket.max-message-size")!.Value),
            MaxHandshakeSize = checked((int)c.GetByteSize("websocket.max-handshake-size")!.Value),
            HandshakeTimeout = c.GetTimeSpan("websocket.handshake-timeout"),
            AllowedOrigins = c.GetStringList("websocket.allowed-origins").ToArray(),
            OutboundQueueLimit = c.GetByteSize("websocket.outbound-queue-limit")!.Value,
            CloseTimeout = c.GetTimeSpan("websocket.close-timeout"),
            MaxBodySize = c.GetByteSize("http.max-body-size")!.Value,
            PublishTimeout = c.GetTimeSpan("http.publish-timeout"),
            Rooms = RoomSettings.FromConfig(c.GetConfig("rooms")),
            ShutdownTimeout = c.GetTimeSpan("shutdown-timeout"),
        };
    }
}
