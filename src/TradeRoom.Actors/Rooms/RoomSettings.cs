using System.Collections.Frozen;
using Akka.Configuration;
using TradeRoom.Actors.Monitoring;

namespace TradeRoom.Actors.Rooms;

/// <summary>How rooms behave: <c>traderoom.rooms</c> in the HOCON.</summary>
/// <param name="IdleTimeout">A room with no subscribers and no events for this long is stopped.</param>
/// <param name="HistorySize">At most this many recent events are kept for resume…</param>
/// <param name="HistoryTtl">…and none older than this.</param>
/// <param name="PrivateEventTypes">Event types delivered only to subscribers whose user id equals the event's <c>data.userId</c>.</param>
public sealed record RoomSettings(TimeSpan IdleTimeout, int HistorySize, TimeSpan HistoryTtl, FrozenSet<string> PrivateEventTypes)
{
    /// <summary>Where rooms count events, rooms, subscriptions and resumes: the host's (see <see cref="TradeRoomSettings.WithMetrics"/>).</summary>
    public TradeRoomMetrics Metrics { get; init; } = TradeRoomMetrics.Unexported;

    /// <summary>How long a room that no event has reached yet stays with no subscribers (<c>rooms.empty-room-timeout</c>); never longer than <see cref="IdleTimeout"/>.</summary>
    public TimeSpan EmptyRoomTimeout { get; init; } = TimeSpan.MaxValue;

    /// <summary>Rooms that may run at once (<c>rooms.max-rooms</c>); 0: no cap.</summary>
    public int MaxRooms { get; init; }

    /// <summary>Rooms one connection may create by subscribing, per minute (<c>limits.new-rooms-per-minute</c>); 0: no budget.</summary>
    public int NewRoomsPerMinute { get; init; }

    /// <summary>Whether rooms persist their events and snapshots: they have a store (<c>persistence.provider</c> is not <c>memory</c>).</summary>
    public bool Durable => Store is not null;

    /// <summary>A durable room saves a snapshot every this many events (<c>persistence.snapshot-every</c>).</summary>
    public int SnapshotEvery { get; init; } = int.MaxValue;

    /// <summary>How long the registry waits before starting again a room whose store failed (<c>persistence.restart-backoff.min</c>), doubling per failure up to <see cref="StoreMaxBackoff"/>.</summary>
    public TimeSpan StoreMinBackoff { get; init; }

    public TimeSpan StoreMaxBackoff { get; init; }

    /// <summary>How long a relay waits for its room to answer a join before it asks again (<c>rooms.rejoin-timeout</c>).</summary>
    public TimeSpan RejoinTimeout { get; init; }

    /// <summary>Whether rooms run as cluster-sharded entities (cluster mode) rather than as children of the local <see cref="RoomRegistry"/>.</summary>
    public bool Sharded { get; init; }

    /// <summary>How many shards the rooms are spread over in cluster mode (<c>rooms.shards</c>); the same on every node.</summary>
    public int Shards { get; init; }

    /// <summary>The rooms' database, for retention (null with the memory provider); set by <see cref="TradeRoomSettings.FromConfig"/>.</summary>
    public Storage.RoomStore? Store { get; init; }

    /// <summary>A room whose last event is older than this has its data deleted (<c>rooms.retention</c>).</summary>
    public TimeSpan Retention { get; init; }

    /// <summary>How often the registry looks for such rooms (<c>rooms.retention-sweep-interval</c>).</summary>
    public TimeSpan RetentionSweepInterval { get; init; }

    /// <param name="traderoom">The <c>traderoom</c> section.</param>
    public static RoomSettings FromConfig(Config traderoom)
    {
        var rooms = traderoom.GetConfig("rooms");
        return new RoomSettings(
            rooms.GetTimeSpan("idle-timeout"),
            rooms.GetInt("history-size"),
            rooms.GetTimeSpan("history-ttl"),
            rooms.GetStringList("private-event-types").ToFrozenSet(StringComparer.Ordinal))
        {
            MaxRooms = rooms.GetInt("max-rooms"),
            EmptyRoomTimeout = rooms.GetTimeSpan("empty-room-timeout"),
            RejoinTimeout = rooms.GetTimeSpan("rejoin-timeout"),
            Shards = rooms.GetInt("shards"),
            NewRoomsPerMinute = traderoom.GetInt("limits.new-rooms-per-minute"),
            SnapshotEvery = traderoom.GetInt("persistence.snapshot-every"),
            StoreMinBackoff = traderoom.GetTimeSpan("persistence.restart-backoff.min"),
            StoreMaxBackoff = traderoom.GetTimeSpan("persistence.restart-backoff.max"),
            Retention = traderoom.GetTimeSpan("rooms.retention"),
            RetentionSweepInterval = traderoom.GetTimeSpan("rooms.retention-sweep-interval"),
        };
    }
}
