using Akka.Actor;
using Akka.Event;
using TradeRoom.Actors.Integration;
using TradeRoom.Actors.Protocol;

namespace TradeRoom.Actors.Rooms;

/// <summary>
/// The one place messages reach rooms: every <see cref="IWithBullPenId"/> message is routed here to its
/// <see cref="RoomActor"/>, which is created on first use (a subscribe or a publish). Idle rooms are stopped on
/// their own request; messages that arrive while a room is stopping are buffered and start a fresh room.
/// Creating rooms is bounded twice: at most <see cref="RoomSettings.MaxRooms"/> run at once, and each connection may
/// create at most <see cref="RoomSettings.NewRoomsPerMinute"/> by subscribing (a subscribe to a running room is free,
/// and publishers, trusted services, only meet the cap). The registry keeps that budget because it is the one actor
/// that knows whether a room runs.
/// Later this registry can be swapped for a cluster shard region behind the same messages.
/// </summary>
public sealed class RoomRegistry : ReceiveActor, IWithTimers
{
    private readonly RoomSettings _settings;
    private readonly Dictionary<string, IActorRef> _rooms = new(StringComparer.Ordinal);
    private readonly Dictionary<IActorRef, string> _ids = new();
    private readonly Dictionary<string, List<(IWithBullPenId Message, IActorRef Sender)>> _stopping = new(StringComparer.Ordinal);
    // Only connections that created a room recently: an entry goes once its budget is whole again.
    private readonly Dictionary<IActorRef, NewRoomBudget> _budgets = new();
    private readonly ILoggingAdapter _log = Context.GetLogger();

    public RoomRegistry(RoomSettings settings)
    {
        _settings = settings;

        Receive<IWithBullPenId>(Route);
        Receive<GetRoomCount>(_ => Sender.Tell(new RoomCount(RunningRooms)));
        // Queries reach running rooms only: a room that is not running (or is stopping) is not there to look at.
        Receive<GetRooms>(OnGetRooms);
        Receive<GetRoomDetails>(q =>
        {
            if (_rooms.TryGetValue(q.BullPenId, out var room))
                room.Forward(q);
            else
                Sender.Tell(new RoomNotFound(q.BullPenId));
        });
        Receive<RoomIdle>(p =>
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
        Receive<ForgetWholeBudgets>(_ =>
        {
            var now = NowMs;
            foreach (var (connection, budget) in _budgets.ToArray())
            {
                if (budget.IsWhole(now, _settings.NewRoomsPerMinute))
                    _budgets.Remove(connection);
            }
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(RoomSettings settings) => Akka.Actor.Props.Create(() => new RoomRegistry(settings));

    protected override void PreStart()
    {
        if (_settings.NewRoomsPerMinute > 0)
            Timers.StartPeriodicTimer(ForgetWholeBudgets.Instance, ForgetWholeBudgets.Instance, TimeSpan.FromMinutes(1));
    }

    /// <summary>A room that throws keeps its subscribers, sequence, history and state and goes on with the next message.</summary>
    protected override SupervisorStrategy SupervisorStrategy() =>
        new OneForOneStrategy(e =>
        {
            _log.Error(e, "A room failed while handling a message; it resumes with its state intact");
            return Directive.Resume;
        });

    private static long NowMs => Environment.TickCount64;

    /// <summary>Rooms alive now, those stopping included (they hold their memory until they have stopped).</summary>
    private int RunningRooms => _rooms.Count + _stopping.Count;

    private void OnGetRooms(GetRooms query)
    {
        var ids = _rooms.Keys
            .Where(id => query.After is null || string.CompareOrdinal(id, query.After) > 0)
            .Order(StringComparer.Ordinal)
            .Take(query.Limit + 1)
            .ToList();
        string? next = null;
        if (ids.Count > query.Limit)
        {
            ids.RemoveAt(query.Limit);
            next = ids[^1];
        }
        Context.ActorOf(RoomListQuery.Props(ids.Select(id => _rooms[id]).ToArray(), Sender, next));
    }

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
            if (RefuseNewRoom(message, sender))
                return;
            room = Context.ActorOf(RoomActor.Props(id, _settings), RoomActorName(id));
            Context.Watch(room);
            _rooms[id] = room;
            _ids[room] = id;
        }
        room.Tell(message, sender);
    }

    /// <summary>Whether starting a room for <paramref name="message"/> is refused (then the refusal has been answered).</summary>
    private bool RefuseNewRoom(IWithBullPenId message, IActorRef sender)
    {
        var id = message.BullPenId;
        if (_settings.MaxRooms > 0 && RunningRooms >= _settings.MaxRooms)
        {
            _settings.Metrics.RoomRefused(Monitoring.TradeRoomMetrics.RoomCap);
            var why = $"the server runs its maximum of {_settings.MaxRooms} rooms (traderoom.rooms.max-rooms); room \"{id}\" cannot start now";
            switch (message)
            {
                case Subscribe s:
                    s.Subscriber.Tell(new SubscribeRefused(id, ErrorCodes.RoomLimit, why));
                    break;
                case RoutedEvent:
                    sender.Tell(new PublishRejected(id, ErrorCodes.RoomLimit, why));
                    break;
            }
            return true;
        }
        if (message is not Subscribe subscribe || _settings.NewRoomsPerMinute <= 0)
            return false;
        if (!_budgets.TryGetValue(subscribe.Subscriber, out var budget))
            budget = NewRoomBudget.Whole(_settings.NewRoomsPerMinute, NowMs);
        if (!budget.TryTake(NowMs, _settings.NewRoomsPerMinute))
        {
            _settings.Metrics.RoomRefused(Monitoring.TradeRoomMetrics.RoomBudget);
            subscribe.Subscriber.Tell(new SubscribeRefused(id, ErrorCodes.RoomLimit,
                $"room \"{id}\" is not running, and this connection has started its {_settings.NewRoomsPerMinute} new rooms for the minute " +
                "(traderoom.limits.new-rooms-per-minute); subscribe again later, or to a room that is running"));
            return true;
        }
        _budgets[subscribe.Subscriber] = budget;
        return false;
    }

    internal static string RoomActorName(string bullPenId) => "room-" + Uri.EscapeDataString(bullPenId);

    private sealed record ForgetWholeBudgets
    {
        public static readonly ForgetWholeBudgets Instance = new();
    }
}

/// <summary>
/// A token bucket of rooms a connection may still start: <c>perMinute</c> of them at once, refilled evenly over a
/// minute. A value type kept in the registry's dictionary, one entry per connection that started a room recently.
/// </summary>
internal struct NewRoomBudget
{
    private double _tokens;
    private long _atMs;

    public static NewRoomBudget Whole(int perMinute, long nowMs) => new() { _tokens = perMinute, _atMs = nowMs };

    public bool TryTake(long nowMs, int perMinute)
    {
        Refill(nowMs, perMinute);
        if (_tokens < 1)
            return false;
        _tokens -= 1;
        return true;
    }

    public bool IsWhole(long nowMs, int perMinute)
    {
        Refill(nowMs, perMinute);
        return _tokens >= perMinute;
    }

    private void Refill(long nowMs, int perMinute)
    {
        _tokens = Math.Min(perMinute, _tokens + (nowMs - _atMs) * perMinute / 60_000.0);
        _atMs = nowMs;
    }
}
