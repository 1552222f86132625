using Akka.Actor;
using Akka.Cluster.Hosting;
using Akka.Cluster.Sharding;
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
    /// The rooms' journal and snapshot store: Akka.Persistence.Sql on SQLite or PostgreSQL, its tables created on
    /// first use (the SQLite file itself by <see cref="RoomStore.Prepare"/>, before); nothing with the memory provider (rooms then do not persist, see <see cref="Rooms.RoomSettings.Durable"/>).
    /// </summary>
    /// <param name="metrics">Counts the journal's write transactions (group commit only); none when null.</param>
    public static AkkaConfigurationBuilder AddTradeRoomPersistence(this AkkaConfigurationBuilder builder, PersistenceSettings persistence,
        Monitoring.TradeRoomMetrics? metrics = null)
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
        if (persistence.GroupCommit)
        {
            // The plugin's journal and snapshot store with one writer for both, and their recovery reads as plain
            // queries (the tables and the rows' format stay the plugin's).
            var groupCommit = new GroupCommitSetup(persistence, metrics);
            builder.AddSetup(groupCommit);
            builder.AddHocon($"akka.persistence.journal.sql.class = \"{ClassName<GroupCommitJournal>()}\"\n" +
                             $"akka.persistence.snapshot-store.sql.class = \"{ClassName<GroupCommitSnapshotStore>()}\"", HoconAddMode.Prepend);
            builder.AddStartup((system, _) => system.RegisterOnTermination(groupCommit.Stop));
        }
        // The journal and the snapshot store start with the server (their tables checked, their connections made), not
        // when the first room recovers after a start, which then waited for them (SQLite 391 → 71 ms, PostgreSQL
        // 461 → 116 ms for a room of 1,000 events, bench/analysis.md). Only if the database answers: a plugin that
        // cannot reach it restarts and logs again and again, so then it starts with the first room, as before.
        builder.AddStartup((system, _) => Task.Run(async () =>
        {
            if (!await new RoomStore(persistence).CanConnectAsync())
                return;
            var plugins = Akka.Persistence.Persistence.Instance.Apply(system);
            plugins.JournalFor(null);
            plugins.SnapshotStoreFor(null);
        }));
        // The journal runs this many write transactions at once. SQLite takes one writer at a time, and a second
        // one only sleeps on the file's lock: with one, the events of all rooms wait together and go in one batch.
        return persistence.Writers is { } writers
            ? builder.AddHocon($"akka.persistence.journal.sql.parallelism = {writers}", HoconAddMode.Prepend)
            : builder;
    }

    private static string ClassName<T>() => $"{typeof(T).FullName}, {typeof(T).Assembly.GetName().Name}";

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


    /// <summary>
    /// Starts the server's actors and registers them in the <see cref="ActorRegistry"/>. Rooms are reached through
    /// one key, <see cref="RoomRegistry"/>: the local registry (parent of this process's rooms), or in cluster mode the
    /// shard region of the <see cref="RoomActor"/> entities; whatever routes to rooms sends the same messages either
    /// way. <see cref="RoomRelays"/> (this node's relays, which connections subscribe through),
    /// <see cref="IntegrationActor"/> (where events enter) and <see cref="ConnectionManager"/> (parent of connections)
    /// go under their own types.
    /// </summary>
    public static AkkaConfigurationBuilder AddTradeRoomActors(this AkkaConfigurationBuilder builder, TradeRoomSettings settings)
    {
        // The connections' mailbox (ConnectionManager makes every connection with it).
        builder.AddHocon(LeanMailbox.Definition, HoconAddMode.Append);
        var roomSettings = settings.Rooms;
        if (roomSettings.Sharded)
        {
            // Before the shard region: its rooms tell the directory they run.
            builder.WithActors((system, registry) =>
                registry.Register<RoomDirectory>(system.ActorOf(RoomDirectory.Props(settings.QueryTimeout), RoomDirectory.Name)));
            // rooms.max-rooms holds per node: a room whose shard lives on a node that hosts its maximum gets a
            // stand-in that refuses its messages with room_limit, and reads and writes nothing (RoomRefusedAtCap).
            var slots = new RoomSlots(roomSettings.MaxRooms);
            builder.WithShardRegion<RoomRegistry>("rooms",
                (_, registry) => id => slots.TryTake()
                    ? RoomActor.Props(id, roomSettings, registry.Get<RoomDirectory>(), slots)
                    : RoomRefusedAtCap.Props(id, roomSettings, slots.Max),
                new RoomMessageExtractor(roomSettings.Shards),
                new ShardOptions
                {
                    Role = Cluster.ClusterSettings.ServerRole,
                    // Rooms stop themselves when idle (sharding's Passivate), after a snapshot.
                    ShouldPassivateIdleEntities = false,
                    // A room handed to another node first finishes the writes in flight and acknowledges them.
                    HandOffStopMessage = StopIfIdle.Instance,
                });
            if (roomSettings.Store is { } store)
            {
                // Retention: one sweeper in the cluster lists the stale rooms; each room deletes its own data.
                builder.WithSingleton<RetentionSweeper>("retention",
                    (_, registry, _) => RetentionSweeper.Props(registry.Get<RoomRegistry>(), store, roomSettings.Retention, roomSettings.RetentionSweepInterval),
                    new ClusterSingletonOptions { Role = Cluster.ClusterSettings.ServerRole },
                    createProxyToo: false);
            }
        }
        return builder.WithActors((system, registry) =>
        {
            IActorRef rooms;
            if (roomSettings.Sharded)
            {
                rooms = registry.Get<RoomRegistry>();
                Cluster.ClusterMetrics.RegisterShards(settings.Metrics.Registry, rooms, settings.QueryTimeout);
            }
            else
            {
                rooms = system.ActorOf(RoomRegistry.Props(roomSettings), "rooms");
                registry.Register<RoomRegistry>(rooms);
                registry.Register<RoomDirectory>(rooms); // the registry knows every room of the process
            }
            registry.Register<IntegrationActor>(system.ActorOf(IntegrationActor.Props(rooms, roomSettings.PrivateEventTypes), "integration"));
            var relays = system.ActorOf(RoomRelays.Props(rooms, roomSettings), "relays");
            registry.Register<RoomRelays>(relays);
            registry.Register<ConnectionManager>(system.ActorOf(ConnectionManager.Props(relays, settings.Connections, settings.MaxConnectionsPerUser), "connections"));
        });
    }
}

/// <summary>Routes every <see cref="IWithBullPenId"/> message to its room's entity, the room's id hashed over <c>rooms.shards</c> shards.</summary>
internal sealed class RoomMessageExtractor(int shards) : HashCodeMessageExtractor(shards)
{
    public override string? EntityId(object message) => (message as IWithBullPenId)?.BullPenId;
}
