using Akka.Actor;
using Akka.Hosting;
using Akka.Persistence.Sql.Hosting;
using TradeRoom.Actors.Storage;
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
    /// <summary>
    /// The rooms' journal and snapshot store: Akka.Persistence.Sql on SQLite or PostgreSQL, its tables created on
    /// first use; nothing with the memory provider (rooms then do not persist, see <see cref="Rooms.RoomSettings.Durable"/>).
    /// </summary>
    public static AkkaConfigurationBuilder AddTradeRoomPersistence(this AkkaConfigurationBuilder builder, PersistenceSettings persistence)
    {
        if (persistence.Provider == PersistenceProvider.Memory)
            return builder;
        new RoomStore(persistence).Prepare();
        return builder.WithSqlPersistence(persistence.ConnectionString, persistence.LinqToDbProvider, autoInitialize: true);
    }

    public static AkkaConfigurationBuilder AddTradeRoomActors(this AkkaConfigurationBuilder builder, TradeRoomSettings settings) =>
        builder.WithActors((system, registry) =>
        {
            var rooms = system.ActorOf(RoomRegistry.Props(settings.Rooms), "rooms");
            registry.Register<RoomRegistry>(rooms);
            registry.Register<IntegrationActor>(system.ActorOf(IntegrationActor.Props(rooms, settings.Rooms.PrivateEventTypes), "integration"));
            registry.Register<ConnectionManager>(system.ActorOf(ConnectionManager.Props(rooms, settings.Connections, settings.MaxConnectionsPerUser), "connections"));
        });
}
