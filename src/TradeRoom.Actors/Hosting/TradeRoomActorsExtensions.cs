using Akka.Actor;
using Akka.Hosting;
using Akka.Persistence.Sql.Hosting;
using LinqToDB;
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
    /// first use (the SQLite file itself by <see cref="RoomStore.Prepare"/>, before); nothing with the memory provider (rooms then do not persist, see <see cref="Rooms.RoomSettings.Durable"/>).
    /// </summary>
    public static AkkaConfigurationBuilder AddTradeRoomPersistence(this AkkaConfigurationBuilder builder, PersistenceSettings persistence)
    {
        // Memory rooms persist nothing and recover nothing, but a persistent actor still asks its plugins once as it
        // starts: the in-memory ones answer at once (the default snapshot store would look on disk).
        if (persistence.Provider == PersistenceProvider.Memory)
            return builder.AddHocon(
                "akka.persistence.journal.plugin = akka.persistence.journal.inmem\n" +
                "akka.persistence.snapshot-store.plugin = akka.persistence.snapshot-store.inmem", HoconAddMode.Prepend);
        if (SqliteDataOptions(persistence) is { } sqlite)
            builder.WithSqlPersistence(sqlite, autoInitialize: true);
        else
            builder.WithSqlPersistence(persistence.ConnectionString, persistence.LinqToDbProvider, autoInitialize: true);
        // The journal runs this many write transactions at once. SQLite takes one writer at a time, and a second
        // one only sleeps on the file's lock: with one, the events of all rooms wait together and go in one batch.
        return persistence.Writers is { } writers
            ? builder.AddHocon($"akka.persistence.journal.sql.parallelism = {writers}", HoconAddMode.Prepend)
            : builder;
    }

    /// <summary>
    /// How the journal and the snapshot store connect to SQLite (null for the other providers): its synchronous mode is
    /// a per-connection setting that the file does not keep, so every connection they open sets it first
    /// (<c>persistence.sqlite.synchronous</c>; README.md, "Storage", says what it means for durability).
    /// </summary>
    public static DataOptions? SqliteDataOptions(PersistenceSettings persistence) =>
        persistence.SqliteSynchronous is { } synchronous
            ? new DataOptions()
                .UseConnectionString(persistence.LinqToDbProvider, persistence.ConnectionString)
                .UseInterceptor(new SqlitePragmas($"PRAGMA synchronous={synchronous};"))
            : null;

    public static AkkaConfigurationBuilder AddTradeRoomActors(this AkkaConfigurationBuilder builder, TradeRoomSettings settings) =>
        builder.WithActors((system, registry) =>
        {
            var rooms = system.ActorOf(RoomRegistry.Props(settings.Rooms), "rooms");
            registry.Register<RoomRegistry>(rooms);
            registry.Register<IntegrationActor>(system.ActorOf(IntegrationActor.Props(rooms, settings.Rooms.PrivateEventTypes), "integration"));
            registry.Register<ConnectionManager>(system.ActorOf(ConnectionManager.Props(rooms, settings.Connections, settings.MaxConnectionsPerUser), "connections"));
        });
}
