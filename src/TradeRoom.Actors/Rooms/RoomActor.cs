using Akka.Actor;
using Akka.Event;
using TradeRoom.Actors.Integration;
using TradeRoom.Actors.Protocol;

namespace TradeRoom.Actors.Rooms;

/// <summary>
/// One bull pen: numbers its events, serializes each once and hands the same bytes to every subscriber.
/// Subscribers are connection actors, watched so that a dead one is dropped. When it has had no subscribers
/// and no messages for the idle timeout, it asks its parent (<see cref="RoomRegistry"/>) to stop it.
/// </summary>
public sealed class RoomActor : ReceiveActor
{
    private readonly string _bullPenId;
    private readonly Dictionary<IActorRef, string> _subscribers = new();
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private long _seq;
    private long _activity;
    private long _activityAtPassivation = -1;

    public RoomActor(string bullPenId, TimeSpan idleTimeout)
    {
        _bullPenId = bullPenId;
        SetReceiveTimeout(idleTimeout);

        Receive<RoutedEvent>(Publish);
        Receive<Subscribe>(s =>
        {
            _activity++;
            if (_subscribers.TryAdd(s.Subscriber, s.UserId))
                Context.Watch(s.Subscriber);
            s.Subscriber.Tell(new SubscribeAck(_bullPenId, _seq));
        });
        Receive<Unsubscribe>(u =>
        {
            _activity++;
            if (_subscribers.Remove(u.Subscriber))
                Context.Unwatch(u.Subscriber);
            u.Subscriber.Tell(new UnsubscribeAck(_bullPenId));
        });
        Receive<Terminated>(t => _subscribers.Remove(t.ActorRef));
        Receive<ReceiveTimeout>(_ =>
        {
            if (_subscribers.Count > 0 || _activityAtPassivation == _activity)
                return;
            _activityAtPassivation = _activity;
            Context.Parent.Tell(new Passivate(_bullPenId));
        });
        Receive<StopIfIdle>(_ =>
        {
            if (_subscribers.Count == 0 && _activity == _activityAtPassivation)
            {
                _log.Debug("Room {BullPenId} stopped after being idle", _bullPenId);
                Context.Stop(Self);
            }
            else
            {
                Context.Parent.Tell(new PassivationCancelled(_bullPenId));
            }
        });
    }

    public static Props Props(string bullPenId, TimeSpan idleTimeout) =>
        Akka.Actor.Props.Create(() => new RoomActor(bullPenId, idleTimeout));

    private void Publish(RoutedEvent e)
    {
        _activity++;
        var seq = ++_seq;
        var delivery = new RoomEvent(_bullPenId, seq, e.Type, ServerFrames.Event(e.Type, _bullPenId, seq, e.Data));
        foreach (var subscriber in _subscribers.Keys)
            subscriber.Tell(delivery, ActorRefs.NoSender);
        Sender.Tell(new EventPublished(_bullPenId, seq));
    }
}
