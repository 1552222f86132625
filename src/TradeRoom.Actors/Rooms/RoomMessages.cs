using Akka.Actor;

namespace TradeRoom.Actors.Rooms;

/// <summary>A message addressed to one bull pen. The <see cref="RoomRegistry"/> routes every one of these (and only these) to its room.</summary>
public interface IWithBullPenId
{
    string BullPenId { get; }
}

/// <summary>
/// Adds <paramref name="Subscriber"/> (a connection of <paramref name="UserId"/>) to the room; idempotent. The room
/// answers the subscriber with <see cref="SubscribeAck"/> and, when <paramref name="SinceSeq"/> and
/// <paramref name="Epoch"/> name a position it can resume from, the missed events the user may see, in the same turn.
/// </summary>
/// <param name="MayStart">Cluster mode: false once the connection has started its <c>limits.new-rooms-per-minute</c>; a room
/// this subscribe would start refuses it with <c>room_limit</c> instead (a running room takes it all the same).</param>
public sealed record Subscribe(string BullPenId, IActorRef Subscriber, string UserId, long? SinceSeq = null, string? Epoch = null, bool MayStart = true)
    : IWithBullPenId;

/// <summary>Removes <paramref name="Subscriber"/> from the room; idempotent. Answered with <see cref="UnsubscribeAck"/>.</summary>
public sealed record Unsubscribe(string BullPenId, IActorRef Subscriber) : IWithBullPenId;

/// <summary>
/// <paramref name="Subscriber"/> has stopped: its relay forgets it at once, with any request of it still waiting for the
/// room, and answers nothing. Nobody watches a connection (DeathWatch would cost each one a set and a dictionary), so
/// a connection sends this from its PostStop for every room it follows or has asked for. Connections and relays
/// share a node, so it arrives (short of the actor system shutting down, when neither matters any more).
/// </summary>
internal sealed record SubscriberStopped(string BullPenId, IActorRef Subscriber) : IWithBullPenId;

/// <summary>
/// The relay through which a connection follows <paramref name="BullPenId"/> stopped (its parent failed or stopped):
/// sent from the relay's PostStop to each of its connections, which tell their client <c>room_unavailable</c>.
/// </summary>
internal sealed record RelayStopped(string BullPenId);

/// <param name="Seq">The room's last sequence number when the subscriber was added; live events after it follow.</param>
/// <param name="Recovered">True when the missed events after the requested position follow this ack (then live ones).</param>
/// <param name="State">The room's state snapshot as JSON: <c>{"leaderboard":…,"room":…,"members":[…]}</c>.</param>
/// <param name="Replayed">How many of the <see cref="RoomEvent"/>s right after this ack are replayed history.</param>
/// <param name="Started">This subscribe started the room (it was the first message of the room's run): in cluster mode the
/// connection counts it against its <c>limits.new-rooms-per-minute</c>.</param>
public sealed record SubscribeAck(string BullPenId, long Seq, string Epoch, bool Recovered, byte[] State, int Replayed = 0, bool Started = false);

public sealed record UnsubscribeAck(string BullPenId);

/// <summary>
/// A <see cref="Subscribe"/> that was refused (room authorization, the room cap, the connection's new-room budget):
/// the connection stops following the room and answers its client with an <c>error</c> frame carrying
/// <paramref name="Code"/> and the bull pen. Nothing of the room is sent.
/// </summary>
public sealed record SubscribeRefused(string BullPenId, string Code, string Message);

/// <summary>
/// A validated event for one room (see <see cref="Integration.IntegrationActor"/>). The room gives it the next
/// sequence number, serializes it once and fans it out; the sender gets <see cref="Contracts.EventPublished"/>.
/// </summary>
/// <param name="Data">The event's <c>data</c> object as UTF-8 JSON.</param>
/// <param name="UserId">The event's <c>data.userId</c> when it is a string.</param>
/// <param name="IsPrivate">Delivered only to subscribers whose user is <paramref name="UserId"/>.</param>
public sealed record RoutedEvent(string BullPenId, string Type, byte[] Data, string? UserId, bool IsPrivate) : IWithBullPenId;

/// <summary>
/// One event as every subscriber receives it: <paramref name="Frame"/> is the complete UTF-8 frame, built once by
/// the room and shared by all subscribers. <paramref name="VisibleTo"/> is the one user a private event is for (null: everyone).
/// <paramref name="PublishedAt"/> is when the room numbered it (<see cref="Monitoring.TradeRoomMetrics.Now"/>; 0: not stamped),
/// for the publish-to-write latency the socket measures.
/// </summary>
public sealed record RoomEvent(string BullPenId, long Seq, string Type, string? VisibleTo, byte[] Frame, long PublishedAt = 0)
{
    public bool IsVisibleTo(string userId) => VisibleTo is null || VisibleTo == userId;
}

/// <summary>Asks the registry how many rooms are running; answered with <see cref="RoomCount"/>.</summary>
public sealed record GetRoomCount
{
    public static readonly GetRoomCount Instance = new();
}

public sealed record RoomCount(int Rooms);

/// <summary>
/// Asks the registry for one page of the running rooms: at most <paramref name="Limit"/> rooms whose ids come after
/// <paramref name="After"/> (null: from the first) in ordinal order; answered with <see cref="RoomList"/>. Only the
/// rooms of the page are asked, so a page costs the same at 50 rooms or 50,000. Rooms are only read: none is
/// started, and none is kept from stopping when idle.
/// </summary>
public sealed record GetRooms(int Limit, string? After = null);

/// <param name="Node">Cluster mode: the address of the node the room runs on (null in single-node mode).</param>
public sealed record RoomSummary(string BullPenId, int Subscribers, long Seq, string Epoch, string? Node = null);

/// <param name="Rooms">Ordered by id.</param>
/// <param name="Next">The <see cref="GetRooms.After"/> of the next page; null on the last page.</param>
public sealed record RoomList(IReadOnlyList<RoomSummary> Rooms, string? Next = null);

/// <summary>
/// Asks the registry about one room; answered with <see cref="RoomDetails"/>, or <see cref="RoomNotFound"/> when
/// the room is not running (it is not started to answer). Not an <see cref="IWithBullPenId"/>: that would start it.
/// </summary>
public sealed record GetRoomDetails(string BullPenId) : INotInfluenceReceiveTimeout;

/// <param name="Subscribers">Connections subscribed.</param>
/// <param name="State">The state snapshot <c>subscribed</c> carries, as JSON: <c>{"leaderboard":…,"room":…,"members":[…]}</c>.</param>
/// <param name="Users">Distinct ids of the users subscribed, ordered.</param>
/// <param name="Node">Cluster mode: the address of the node the room runs on (null in single-node mode).</param>
public sealed record RoomDetails(string BullPenId, int Subscribers, long Seq, string Epoch, byte[] State, IReadOnlyList<string> Users, string? Node = null);

public sealed record RoomNotFound(string BullPenId);

/// <summary>The registry asks a room for its <see cref="RoomSummary"/> (not activity: the idle timer keeps running).</summary>
internal sealed record GetRoomSummary : INotInfluenceReceiveTimeout
{
    public static readonly GetRoomSummary Instance = new();
}

/// <summary>
/// A room that has been idle asks its parent to stop it. (Not named Passivate: that is Akka sharding's own message.)
/// </summary>
internal sealed record RoomIdle(string BullPenId);

/// <summary>The registry's answer to <see cref="RoomIdle"/>: it has stopped routing to the room and buffers instead.</summary>
internal sealed record StopIfIdle
{
    public static readonly StopIfIdle Instance = new();
}

/// <summary>The room became busy again between asking to stop and being told to: routing resumes.</summary>
internal sealed record PassivationCancelled(string BullPenId);

/// <summary>
/// A room's store failed (a write or its recovery) and it stops. Its local parent then serves
/// <c>storage_unavailable</c> for it until a backoff has passed; the room's relays, which watch it, join it again
/// (<see cref="RelayJoin"/>) and are refused until then. Under sharding the room just stops.
/// </summary>
internal sealed record RoomFailed(string BullPenId);

/// <summary>
/// A room has recovered (from its snapshot and journal, or at once with the memory provider): the registry, which
/// has held the room's first messages meanwhile, hands them over. Should recovery fail, the registry still has them
/// and answers them.
/// </summary>
internal sealed record RoomReady(string BullPenId);

// ---- Between a room and the relays that deliver its events on each node (see RoomRelay). ----

/// <summary>
/// A relay asks its room to add <paramref name="Connection"/> (of <paramref name="UserId"/>), with a resume position
/// or none. The room answers the relay with <see cref="RelaySubscribed"/> in the same turn as it starts sending the
/// relay its events (if it did not already), so the ack, the replay and the live events reach the relay in order.
/// </summary>
/// <param name="MayStart">See <see cref="Subscribe.MayStart"/>.</param>
public sealed record RelaySubscribe(string BullPenId, IActorRef Relay, IActorRef Connection, string UserId, long? SinceSeq, string? Epoch,
    bool MayStart = true) : IWithBullPenId;

/// <summary>The room's answer to <see cref="RelaySubscribe"/>: the relay hands <paramref name="Ack"/>, then <paramref name="Replay"/>, to the connection.</summary>
/// <param name="Replay">The missed events the connection's user may see (empty unless <see cref="SubscribeAck.Recovered"/>).</param>
public sealed record RelaySubscribed(IActorRef Connection, SubscribeAck Ack, IReadOnlyList<RoomEvent> Replay);

/// <summary>
/// The relay dropped <paramref name="Connection"/>. Told to the room's own ref, never routed: it must not start a
/// room that is not running.
/// </summary>
public sealed record RelayUnsubscribe(string BullPenId, IActorRef Connection);

/// <summary>
/// A relay whose room stopped (failed, moved to another node, restarted) joins it again with all its connections,
/// from the last event it got. Answered with <see cref="RelayJoined"/>, or <see cref="RelayRefused"/>.
/// </summary>
public sealed record RelayJoin(string BullPenId, IActorRef Relay, IReadOnlyList<RelayMember> Members, long SinceSeq, string? Epoch)
    : IWithBullPenId;

public sealed record RelayMember(IActorRef Connection, string UserId);

/// <param name="Recovered">Whether <paramref name="Replay"/> holds every event after the relay's position (all of them, private ones too:
/// the relay filters per connection). If not, the room's history no longer covers it, and each connection starts over from <paramref name="State"/>.</param>
public sealed record RelayJoined(string BullPenId, long Seq, string Epoch, bool Recovered, byte[] State, IReadOnlyList<RoomEvent> Replay);

/// <summary>
/// The room cannot take a <see cref="RelaySubscribe"/> (then <paramref name="Connection"/> is the one refused) or a
/// <see cref="RelayJoin"/> (<paramref name="Connection"/> null: the relay tries again after a backoff).
/// </summary>
public sealed record RelayRefused(string BullPenId, IActorRef? Connection, string Code, string Message);

// ---- Retention in cluster mode (see RetentionSweeper). ----

/// <summary>
/// The retention sweeper found the room's last event older than <c>rooms.retention</c>, its journal ending at
/// <paramref name="Seq"/>. Routed like any room message, so it starts the room if it does not run; the room (the one
/// writer of its journal) deletes its events and snapshots and stops only if this message started it (a running room
/// is in use) and it is still at <paramref name="Seq"/>, and nothing else reached it meanwhile. Answered with
/// <see cref="RetentionChecked"/>.
/// </summary>
public sealed record PurgeIfStale(string BullPenId, long Seq) : IWithBullPenId;

/// <summary>The room's answer to <see cref="PurgeIfStale"/>: whether its data was deleted.</summary>
public sealed record RetentionChecked(string BullPenId, bool Purged);
