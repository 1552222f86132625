using Akka.Actor;
using Akka.Cluster.Sharding;
using TradeRoom.Actors.Monitoring;
using TradeRoom.Protocol;

namespace TradeRoom.Actors.Rooms;

/// <summary>
/// Cluster mode: what sharding starts in a room's place when this node already hosts <c>rooms.max-rooms</c> rooms
/// (<see cref="RoomSlots"/>). It is not the room: it reads and writes nothing in the store. It answers each message
/// sharding hands it with <c>room_limit</c>, as the single-node registry does (a publish gets
/// <see cref="Contracts.PublishRejected"/>, a subscribe or a relay's join <see cref="RelayRefused"/>), and asks
/// sharding to passivate it at once. Sharding holds the room's later messages until it has stopped, then starts the
/// room again for them (a room if a slot has come free, else another refusal): every start is driven by a message
/// and answers it, so nothing goes unanswered and nothing restarts by itself. A refused relay join is tried again
/// after the relay's own backoff.
/// </summary>
internal sealed class RoomRefusedAtCap : ReceiveActor
{
    public RoomRefusedAtCap(string bullPenId, RoomSettings settings, int max)
    {
        var passivating = false;
        Receive<StopIfIdle>(_ => Context.Stop(Self));
        Receive<IWithBullPenId>(message =>
        {
            settings.Metrics.RoomRefused(TradeRoomMetrics.RoomCap);
            RoomRegistry.Refuse(message, Sender, ErrorCodes.RoomLimit,
                $"the node room \"{bullPenId}\" belongs to hosts its maximum of {max} rooms (traderoom.rooms.max-rooms, per node); " +
                "it cannot start now: try again later");
            if (passivating)
                return;
            passivating = true;
            Context.Parent.Tell(new Passivate(StopIfIdle.Instance));
        });
    }

    public static Props Props(string bullPenId, RoomSettings settings, int max) =>
        Akka.Actor.Props.Create(() => new RoomRefusedAtCap(bullPenId, settings, max));
}
