using Akka.Actor;
using Akka.Hosting;
using TradeRoom.Actors.Connections;
using TradeRoom.Actors.Integration;
using TradeRoom.Actors.Rooms;

namespace TradeRoom.Actors.Hosting;

public static class TradeRoomActorsExtensions
{
    /// <summary>
    /// Starts the server's actors and registers them in the <see cref="ActorRegistry"/> under their own types:
    /// <see cref="RoomRegistry"/> (the one route to rooms), <see cref="IntegrationActor"/> (where events enter) and
    /// <see cref="ConnectionManager"/> (parent of connections).
    /// </summary>
    public static AkkaConfigurationBuilder AddTradeRoomActors(this AkkaConfigurationBuilder builder, TradeRoomSettings settings) =>
        builder.WithActors((system, registry) =>
        {
            var rooms = system.ActorOf(RoomRegistry.Props(settings.Rooms), "rooms");
            registry.Register<RoomRegistry>(rooms);
            registry.Register<IntegrationActor>(system.ActorOf(IntegrationActor.Props(rooms, settings.Rooms.PrivateEventTypes), "integration"));
            registry.Register<ConnectionManager>(system.ActorOf(ConnectionManager.Props(rooms, settings.Connections, settings.MaxConnectionsPerUser), "connections"));
        });
}
