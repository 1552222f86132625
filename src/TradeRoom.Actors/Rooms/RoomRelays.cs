using Akka.Actor;
using Akka.Event;

namespace TradeRoom.Actors.Rooms;

/// <summary>
/// This node's <see cref="RoomRelay"/>s, one per room that a connection here follows: connections send their
/// <see cref="Subscribe"/>, <see cref="Unsubscribe"/> and <see cref="SubscriberStopped"/> here, and each goes to its
/// room's relay, made on the first subscribe. A relay left with no connection is stopped, unless a message for it is
/// already on its way.
/// </summary>
public sealed class RoomRelays : ReceiveActor
{
    private readonly Dictionary<string, (IActorRef Relay, long Sent)> _relays = new(StringComparer.Ordinal);
    private readonly ILoggingAdapter _log = Context.GetLogger();

    public RoomRelays(IActorRef rooms, RoomSettings settings)
    {
        Receive<Subscribe>(s =>
        {
            if (!_relays.TryGetValue(s.BullPenId, out var relay))
                relay = (Context.ActorOf(RoomRelay.Props(s.BullPenId, rooms, settings)), 0); // unnamed: a stopping one may still hold the name
            _relays[s.BullPenId] = (relay.Relay, relay.Sent + 1);
            relay.Relay.Forward(s);
        });
        Receive<Unsubscribe>(u =>
        {
            if (!_relays.TryGetValue(u.BullPenId, out var relay))
            {
                // Nothing here follows the room, so there is nothing to leave.
                u.Subscriber.Tell(new UnsubscribeAck(u.BullPenId));
                return;
            }
            _relays[u.BullPenId] = (relay.Relay, relay.Sent + 1);
            relay.Relay.Forward(u);
        });
        Receive<SubscriberStopped>(s =>
        {
            // No relay: nothing here holds the connection, and nobody waits for an answer.
            if (!_relays.TryGetValue(s.BullPenId, out var relay))
                return;
            _relays[s.BullPenId] = (relay.Relay, relay.Sent + 1);
            relay.Relay.Forward(s);
        });
        Receive<RelayEmpty>(e =>
        {
            if (_relays.TryGetValue(e.BullPenId, out var relay) && relay.Relay.Equals(Sender) && relay.Sent == e.Received)
            {
                _relays.Remove(e.BullPenId);
                Context.Stop(Sender);
            }
        });
    }

    public static Props Props(IActorRef rooms, RoomSettings settings) => Akka.Actor.Props.Create(() => new RoomRelays(rooms, settings));

    /// <summary>A relay that throws keeps its connections and goes on: they would otherwise stop getting their room's events.</summary>
    protected override SupervisorStrategy SupervisorStrategy() =>
        new OneForOneStrategy(e =>
        {
            _log.Error(e, "A room relay failed while handling a message; it resumes with its connections");
            return Directive.Resume;
        });
}
