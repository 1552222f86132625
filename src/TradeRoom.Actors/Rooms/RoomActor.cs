using Akka.Actor;
using Akka.Event;
using TradeRoom.Actors.Integration;
using TradeRoom.Actors.Monitoring;

namespace TradeRoom.Actors.Rooms;

/// <summary>
/// One bull pen. Its <see cref="RoomState"/> numbers events, serializes each once, keeps the history and the state
/// snapshot; the actor holds the subscribers (connection actors, watched so a dead one is dropped) and hands each
/// event's bytes to those who may see it: everyone, or for a private event only its owner's connections.
/// A subscribe is answered, replayed and joined to the live stream in one turn, so nothing is lost or doubled
/// between them. When it has had no subscribers and no messages for the idle timeout, it asks its parent
/// (<see cref="RoomRegistry"/>) to stop it.
/// </summary>
public sealed class RoomActor : ReceiveActor
{
    private readonly RoomState _state;
    private readonly Dictionary<IActorRef, string> _subscribers = new();
    private readonly Dictionary<string, List<IActorRef>> _subscribersByUser = new(StringComparer.Ordinal);
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly TradeRoomMetrics _metrics;
    private readonly RoomSettings _settings;
    private long _activity;
    private long _activityAtPassivation = -1;

    public RoomActor(string bullPenId, RoomSettings settings)
    {
        _state = new RoomState(bullPenId, settings);
        _metrics = settings.Metrics;
        _settings = settings;
        // A room no event has reached yet holds nothing worth keeping, so it goes sooner once nobody follows it:
        // subscribing to made-up ids cannot pile up idle rooms for the whole idle timeout.
        SetReceiveTimeout(settings.EmptyRoomTimeout < settings.IdleTimeout ? settings.EmptyRoomTimeout : settings.IdleTimeout);

        Receive<RoutedEvent>(Publish);
        Receive<Subscribe>(OnSubscribe);
        Receive<Unsubscribe>(u =>
        {
            _activity++;
            RemoveSubscriber(u.Subscriber);
            u.Subscriber.Tell(new UnsubscribeAck(_state.BullPenId));
        });
        Receive<Terminated>(t => RemoveSubscriber(t.ActorRef));
        // Queries read the room without counting as activity, so looking at a room never keeps it alive.
        Receive<GetRoomSummary>(_ => Sender.Tell(new RoomSummary(_state.BullPenId, _subscribers.Count, _state.Seq, _state.Epoch)));
        Receive<GetRoomDetails>(_ => Sender.Tell(new RoomDetails(_state.BullPenId, _subscribers.Count, _state.Seq, _state.Epoch,
            _state.StateJson(), _subscribersByUser.Keys.Order(StringComparer.Ordinal).ToArray())));
        Receive<ReceiveTimeout>(_ =>
        {
            if (_subscribers.Count > 0 || _activityAtPassivation == _activity)
                return;
            _activityAtPassivation = _activity;
            Context.Parent.Tell(new RoomIdle(_state.BullPenId));
        });
        Receive<StopIfIdle>(_ =>
        {
            if (_subscribers.Count == 0 && _activity == _activityAtPassivation)
            {
                _log.Debug("Room {BullPenId} stopped after being idle", _state.BullPenId);
                Context.Stop(Self);
            }
            else
            {
                Context.Parent.Tell(new PassivationCancelled(_state.BullPenId));
            }
        });
    }

    public static Props Props(string bullPenId, RoomSettings settings) =>
        Akka.Actor.Props.Create(() => new RoomActor(bullPenId, settings));

    private static long NowMs => Environment.TickCount64;

    protected override void PreStart() => _metrics.Rooms.Inc();

    protected override void PostStop()
    {
        _metrics.Rooms.Dec();
        _metrics.Subscriptions.Dec(_subscribers.Count);
    }

    private void Publish(RoutedEvent e)
    {
        _activity++;
        var delivery = _state.Apply(e, NowMs);
        if (delivery.Seq == 1)
            SetReceiveTimeout(_settings.IdleTimeout);
        _metrics.EventPublished(delivery.Type);
        if (delivery.VisibleTo is null)
        {
            foreach (var subscriber in _subscribers.Keys)
                subscriber.Tell(delivery, ActorRefs.NoSender);
        }
        else if (_subscribersByUser.TryGetValue(delivery.VisibleTo, out var owners))
        {
            foreach (var owner in owners)
                owner.Tell(delivery, ActorRefs.NoSender);
        }
        Sender.Tell(new EventPublished(_state.BullPenId, delivery.Seq));
    }

    private void OnSubscribe(Subscribe s)
    {
        _activity++;
        if (_subscribers.TryAdd(s.Subscriber, s.UserId))
        {
            Context.Watch(s.Subscriber);
            _metrics.Subscriptions.Inc();
            if (!_subscribersByUser.TryGetValue(s.UserId, out var connections))
                _subscribersByUser[s.UserId] = connections = new List<IActorRef>(1);
            connections.Add(s.Subscriber);
        }

        var replay = s.SinceSeq is { } sinceSeq
            ? _state.TryReplay(sinceSeq, s.Epoch, NowMs)?.Where(e => e.IsVisibleTo(s.UserId)).ToList()
            : null;
        if (s.SinceSeq is not null)
            _metrics.ResumeAttempted(recovered: replay is not null);
        s.Subscriber.Tell(new SubscribeAck(_state.BullPenId, _state.Seq, _state.Epoch, replay is not null, _state.StateJson(), replay?.Count ?? 0));
        if (replay is null)
            return;
        foreach (var missed in replay)
            s.Subscriber.Tell(missed, ActorRefs.NoSender);
    }

    private void RemoveSubscriber(IActorRef subscriber)
    {
        if (!_subscribers.Remove(subscriber, out var userId))
            return;
        Context.Unwatch(subscriber);
        _metrics.Subscriptions.Dec();
        var connections = _subscribersByUser[userId];
        connections.Remove(subscriber);
        if (connections.Count == 0)
            _subscribersByUser.Remove(userId);
    }
}
