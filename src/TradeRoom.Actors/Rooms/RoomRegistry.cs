using Akka.Actor;
using Akka.Event;

namespace TradeRoom.Actors.Rooms;

/// <summary>
/// The one place messages reach rooms: every <see cref="IWithBullPenId"/> message is routed here to its
/// <see cref="RoomActor"/>, which is created on first use (a subscribe or a publish). Idle rooms are stopped on
/// their own request; messages that arrive while a room is stopping are buffered and start a fresh room.
/// Later this registry can be swapped for a cluster shard region behind the same messages.
/// </summary>
public sealed class RoomRegistry : ReceiveActor
{
    private readonly RoomSettings _settings;
    private readonly Dictionary<string, IActorRef> _rooms = new(StringComparer.Ordinal);
    private readonly Dictionary<IActorRef, string> _ids = new();
    private readonly Dictionary<string, List<(IWithBullPenId Message, IActorRef Sender)>> _stopping = new(StringComparer.Ordinal);
    private readonly ILoggingAdapter _log = Context.GetLogger();

    public RoomRegistry(RoomSettings settings)
    {
        _settings = settings;

        Receive<IWithBullPenId>(Route);
        Receive<GetRoomCount>(_ => Sender.Tell(new RoomCount(_rooms.Count + _stopping.Count)));
        // Queries reach running rooms only: a room that is not running (or is stopping) is not there to look at.
        Receive<GetRooms>(_ => Context.ActorOf(RoomListQuery.Props(_rooms.Values.ToArray(), Sender)));
        Receive<GetRoomDetails>(q =>
        {
            if (_rooms.TryGetValue(q.BullPenId, out var room))
                room.Forward(q);
            else
                Sender.Tell(new RoomNotFound(q.BullPenId));
        });
        Receive<Passivate>(p =>
        {
            if (!_rooms.TryGetValue(p.BullPenId, out var room) || !room.Equals(Sender))
                return;
            _rooms.Remove(p.BullPenId);
            _stopping[p.BullPenId] = [];
            room.Tell(StopIfIdle.Instance);
        });
        Receive<PassivationCancelled>(p =>
        {
            if (!_stopping.Remove(p.BullPenId, out var buffered))
                return;
            _rooms[p.BullPenId] = Sender;
            foreach (var (message, sender) in buffered)
                Sender.Tell(message, sender);
        });
        Receive<Terminated>(t =>
        {
            if (!_ids.Remove(t.ActorRef, out var id))
                return;
            if (_stopping.Remove(id, out var buffered))
            {
                foreach (var (message, sender) in buffered)
                    Route(message, sender);
            }
            else if (_rooms.TryGetValue(id, out var current) && current.Equals(t.ActorRef))
            {
                _log.Warning("Room {BullPenId} stopped unexpectedly", id);
                _rooms.Remove(id);
            }
        });
    }

    public static Props Props(RoomSettings settings) => Akka.Actor.Props.Create(() => new RoomRegistry(settings));

    /// <summary>A room that throws keeps its subscribers, sequence, history and state and goes on with the next message.</summary>
    protected override SupervisorStrategy SupervisorStrategy() =>
        new OneForOneStrategy(e =>
        {
            _log.Error(e, "A room failed while handling a message; it resumes with its state intact");
            return Directive.Resume;
        });

    private void Route(IWithBullPenId message) => Route(message, Sender);

    private void Route(IWithBullPenId message, IActorRef sender)
    {
        var id = message.BullPenId;
        if (_stopping.TryGetValue(id, out var buffer))
        {
            buffer.Add((message, sender));
            return;
        }
        if (!_rooms.TryGetValue(id, out var room))
        {
            if (message is Unsubscribe unsubscribe)
            {
                // No room, so nothing to leave: answer for it rather than start a room to say so.
                unsubscribe.Subscriber.Tell(new UnsubscribeAck(id));
                return;
            }
            room = Context.ActorOf(RoomActor.Props(id, _settings), RoomActorName(id));
            Context.Watch(room);
            _rooms[id] = room;
            _ids[room] = id;
        }
        room.Tell(message, sender);
    }

    internal static string RoomActorName(string bullPenId) => "room-" + Uri.EscapeDataString(bullPenId);
}
