using Akka.Actor;

namespace TradeRoom.Actors.Rooms;

/// <summary>A message addressed to one bull pen. The <see cref="RoomRegistry"/> routes every one of these (and only these) to its room.</summary>
public interface IWithBullPenId
{
    string BullPenId { get; }
}

/// <summary>Adds <paramref name="Subscriber"/> (a connection) to the room; idempotent. The room answers the subscriber with <see cref="SubscribeAck"/>.</summary>
public sealed record Subscribe(string BullPenId, IActorRef Subscriber, string UserId) : IWithBullPenId;

/// <summary>Removes <paramref name="Subscriber"/> from the room; idempotent. Answered with <see cref="UnsubscribeAck"/>.</summary>
public sealed record Unsubscribe(string BullPenId, IActorRef Subscriber) : IWithBullPenId;

/// <param name="Seq">The room's last sequence number when the subscriber was added; events after it follow.</param>
public sealed record SubscribeAck(string BullPenId, long Seq);

public sealed record UnsubscribeAck(string BullPenId);

/// <summary>
/// A validated event for one room (see <see cref="Integration.IntegrationActor"/>). The room gives it the next
/// sequence number, serializes it once and fans it out; the sender gets <see cref="Integration.EventPublished"/>.
/// </summary>
/// <param name="Data">The event's <c>data</c> object as UTF-8 JSON.</param>
public sealed record RoutedEvent(string BullPenId, string Type, byte[] Data) : IWithBullPenId;

/// <summary>
/// One event as every subscriber receives it: <paramref name="Frame"/> is the complete UTF-8 frame, built once by
/// the room and shared by all subscribers.
/// </summary>
public sealed record RoomEvent(string BullPenId, long Seq, string Type, byte[] Frame);

/// <summary>Asks the registry how many rooms are running; answered with <see cref="RoomCount"/>.</summary>
public sealed record GetRoomCount
{
    public static readonly GetRoomCount Instance = new();
}

public sealed record RoomCount(int Rooms);

/// <summary>A room that has been idle asks its parent to stop it.</summary>
internal sealed record Passivate(string BullPenId);

/// <summary>The registry's answer to <see cref="Passivate"/>: it has stopped routing to the room and buffers instead.</summary>
internal sealed record StopIfIdle
{
    public static readonly StopIfIdle Instance = new();
}

/// <summary>The room became busy again between asking to stop and being told to: routing resumes.</summary>
internal sealed record PassivationCancelled(string BullPenId);
