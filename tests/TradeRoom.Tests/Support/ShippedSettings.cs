using TradeRoom.Actors;
using TradeRoom.Actors.Connections;
using TradeRoom.Actors.Rooms;
using TradeRoom.Server;

namespace TradeRoom.Tests.Support;

/// <summary>
/// The room and connection rules hocon/traderoom.conf ships with, for specs that build actors by hand: read from the
/// file, so that no default is written twice. Only what the records are made with; the registry's caps and timers and the
/// store stay off, as those specs need (the memory provider: nothing is opened).
/// </summary>
internal static class ShippedSettings
{
    private static readonly TradeRoomSettings Shipped = TradeRoomSettings.FromConfig(ServerConfig.Load("traderoom.persistence.provider = memory"));

    public static RoomSettings Rooms { get; } =
        new(Shipped.Rooms.IdleTimeout, Shipped.Rooms.HistorySize, Shipped.Rooms.HistoryTtl, Shipped.Rooms.PrivateEventTypes);

    public static ConnectionSettings Connections { get; } =
        new(Shipped.Connections.AuthTimeout, Shipped.Connections.MaxSubscriptions, Shipped.Connections.OutboundBudget, Shipped.Connections.HardLimit);

    /// <summary>
    /// For the TestKit of a spec that makes a <see cref="ConnectionManager"/> by hand: the connections' mailbox, which
    /// the server's actor system gets from <c>AddTradeRoomActors</c>.
    /// </summary>
    public static Akka.Configuration.Config ActorSystem => LeanMailbox.Definition;
}
