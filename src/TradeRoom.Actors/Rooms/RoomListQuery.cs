using Akka.Actor;

namespace TradeRoom.Actors.Rooms;

/// <summary>
/// Answers one <see cref="GetRooms"/>: asks each room of the page for its <see cref="RoomSummary"/>, watching them, so a
/// room that stops before answering is left out rather than waited for; then replies with the list and stops.
/// </summary>
internal sealed class RoomListQuery : ReceiveActor
{
    /// <summary>A backstop only: rooms answer at once, and a room that dies is noticed through DeathWatch.</summary>
    private static readonly TimeSpan GiveUpAfter = TimeSpan.FromSeconds(30);

    private readonly HashSet<IActorRef> _pending;
    private readonly List<RoomSummary> _found;
    private readonly IActorRef _replyTo;
    private readonly string? _next;

    public RoomListQuery(IReadOnlyCollection<IActorRef> rooms, IActorRef replyTo, string? next)
    {
        _next = next;
        _pending = [.. rooms];
        _found = new List<RoomSummary>(rooms.Count);
        _replyTo = replyTo;

        Receive<RoomSummary>(summary =>
        {
            if (_pending.Remove(Sender))
                _found.Add(summary);
            ReplyWhenDone();
        });
        Receive<Terminated>(t =>
        {
            _pending.Remove(t.ActorRef);
            ReplyWhenDone();
        });
        Receive<ReceiveTimeout>(_ => Reply());
    }

    public static Props Props(IReadOnlyCollection<IActorRef> rooms, IActorRef replyTo, string? next) =>
        Akka.Actor.Props.Create(() => new RoomListQuery(rooms, replyTo, next));

    protected override void PreStart()
    {
        foreach (var room in _pending)
        {
            Context.Watch(room);
            room.Tell(GetRoomSummary.Instance);
        }
        SetReceiveTimeout(GiveUpAfter);
        ReplyWhenDone();
    }

    private void ReplyWhenDone()
    {
        if (_pending.Count == 0)
            Reply();
    }

    private void Reply()
    {
        _replyTo.Tell(new RoomList(_found.OrderBy(r => r.BullPenId, StringComparer.Ordinal).ToArray(), _next));
        Context.Stop(Self);
    }
}
