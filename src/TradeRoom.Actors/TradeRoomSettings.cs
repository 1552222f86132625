using Akka.Configuration;
using TradeRoom.Actors.Connections;
using TradeRoom.Actors.Monitoring;
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
    public required bool JwtRequireExp { get; init; }
    public required int JwtCacheSize { get; init; }
    public required bool AllowServiceTokens { get; init; }
    public required Auth.RoomAuthorizationSettings RoomAuthorization { get; init; }
    public required int MaxMessageSize { get; init; }
    public required int MessagesPerSecond { get; init; }
    public required int MessageBurst { get; init; }
    public required int FloodCloseAfter { get; init; }
    public required TimeSpan MaxLagCredit { get; init; }
    public required int MaxConnectionsPerUser { get; init; }
    public required ConnectionSettings Connections { get; init; }
    public required long MaxBodySize { get; init; }
    public required TimeSpan PublishTimeout { get; init; }
    public required TimeSpan QueryTimeout { get; init; }
    public required int RoomsPageSize { get; init; }
    public required RoomSettings Rooms { get; init; }
    public required Storage.PersistenceSettings Persistence { get; init; }
    public required TimeSpan ShutdownTimeout { get; init; }

    /// <summary>Cluster mode: on when <c>Cluster.Enabled</c>; off (one process, no remoting) by default.</summary>
    public required Cluster.ClusterSettings Cluster { get; init; }

    /// <summary>The metrics every part of the server counts into (rooms and connections read them from their own settings).</summary>
    public TradeRoomMetrics Metrics => Connections.Metrics;

    /// <summary>These settings with <paramref name="metrics"/> as the one place rooms, connections and sockets count.</summary>
    public TradeRoomSettings WithMetrics(TradeRoomMetrics metrics) => this with
    {
        Connections = Connections with { Metrics = metrics },
        Rooms = Rooms with { Metrics = metrics },
    };

    /// <summary>These settings with <paramref name="authorizer"/> deciding who may follow which room.</summary>
    public TradeRoomSettings WithRoomAuthorizer(Auth.RoomAuthorizer authorizer) => this with
    {
        Connections = Connections with { Authorizer = authorizer },
    };

    /// <summary>Reads the settings from a config holding the <c>traderoom</c> section.</summary>
    public static TradeRoomSettings FromConfig(Config config)
    {
        var c = config.GetConfig("traderoom") ?? throw new ConfigurationException("the HOCON has no traderoom section");
        var persistence = Storage.PersistenceSettings.FromConfig(c);
        return new TradeRoomSettings
        {
            WsPort = c.GetInt("ws-port"),
            ApiPort = c.GetInt("api-port"),
            BindAddress = c.GetString("bind-address"),
            JwtSecret = c.GetString("jwt.secret") ?? "",
            JwtClockSkew = c.GetTimeSpan("jwt.clock-skew"),
            JwtRequireExp = c.GetBoolean("jwt.require-exp"),
            JwtCacheSize = c.GetInt("jwt.cache-size"),
            AllowServiceTokens = c.GetBoolean("websocket.allow-service-tokens"),
            RoomAuthorization = Auth.RoomAuthorizationSettings.FromConfig(c.GetConfig("auth")),
            MaxMessageSize = checked((int)c.GetByteSize("websocket.max-message-size")!.Value),
            MessagesPerSecond = c.GetInt("limits.messages-per-second"),
            MessageBurst = c.GetInt("limits.message-burst"),
            FloodCloseAfter = c.GetInt("limits.flood-close-after"),
            MaxLagCredit = c.GetTimeSpan("limits.max-lag-credit"),
            MaxConnectionsPerUser = c.GetInt("limits.max-connections-per-user"),
            Connections = new ConnectionSettings(
                c.GetTimeSpan("websocket.auth-timeout"),
                c.GetInt("limits.max-subscriptions"),
                c.GetByteSize("websocket.outbound-queue-limit")!.Value,
                c.GetByteSize("websocket.slow-consumer-hard-limit")!.Value)
            {
                NewRoomsPerMinute = c.GetBoolean("cluster.enabled") ? c.GetInt("limits.new-rooms-per-minute") : 0,
            },
            MaxBodySize = c.GetByteSize("http.max-body-size")!.Value,
            PublishTimeout = c.GetTimeSpan("http.publish-timeout"),
            QueryTimeout = c.GetTimeSpan("http.query-timeout"),
            RoomsPageSize = c.GetInt("http.rooms-page-size"),
            Rooms = RoomSettings.FromConfig(c) with
            {
                Store = persistence.Provider != Storage.PersistenceProvider.Memory ? new Storage.RoomStore(persistence) : null,
                Sharded = c.GetBoolean("cluster.enabled"),
            },
            Persistence = persistence,
            ShutdownTimeout = c.GetTimeSpan("shutdown-timeout"),
            Cluster = TradeRoom.Actors.Cluster.ClusterSettings.FromConfig(c),
        };
    }
}
