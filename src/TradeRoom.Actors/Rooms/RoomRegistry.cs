using Akka.Actor;
using Akka.Event;
using TradeRoom.Contracts;
using TradeRoom.Protocol;

namespace TradeRoom.Actors.Rooms;

/// <summary>
/// The one place messages reach rooms: every <see cref="IWithBullPenId"/> message is routed here to its
/// <see cref="RoomActor"/>, which is created on first use (a subscribe or a publish). Messages that arrive while a
/// room recovers from its store are held until it is ready (<see cref="RoomReady"/>); idle rooms are stopped on their
/// own request, and messages that arrive while a room is stopping are held and start it again.
/// A room whose store failed says so (<see cref="RoomFailed"/>) and stops: until a backoff has passed, its publishes,
/// subscribes and relays' joins are refused with <c>storage_unavailable</c>; then the next of them starts it again.
/// With a durable store the registry also applies retention: the data of rooms whose last event is older than
/// <see cref="RoomSettings.Retention"/>, and that do not run, is deleted.
/// Creating rooms is bounded twice: at most <see cref="RoomSettings.MaxRooms"/> run at once, and each connection may
/// create at most <see cref="RoomSettings.NewRoomsPerMinute"/> by subscribing (a subscribe to a running room is free,
/// and publishers, trusted services, only meet the cap). The registry keeps that budget because it is the one actor
/// that knows whether a room runs.
/// In cluster mode a shard region takes its place behind the same registry key and the same messages.
/// </summary>
public sealed class RoomRegistry : ReceiveActor, IWithTimers
{
    private readonly RoomSettings _settings;
    private readonly Dictionary<string, IActorRef> _rooms = new(StringComparer.Ordinal);
    private readonly Dictionary<IActorRef, string> _ids = new();
    private readonly Dictionary<string, List<(IWithBullPenId Message, IActorRef Sender)>> _stopping = new(StringComparer.Ordinal);
    // Rooms started and still recovering, with the messages held for them until they are ready (RoomReady).
    private readonly Dictionary<string, List<(IWithBullPenId Message, IActorRef Sender)>> _starting = new(StringComparer.Ordinal);
    // Rooms whose store failed, with their failures so far and whether they are waiting out their backoff.
    private readonly Dictionary<string, FailedRoom> _failed = new(StringComparer.Ordinal);
    private bool _sweeping;
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
                _log.Warning("Room {BullPenId} stopped unexpectedly", TextRules.ForLog(id));
                _rooms.Remove(id);
                RefuseStarting(id);
            }
        });
        Receive<RoomReady>(r =>
        {
            if (!_rooms.TryGetValue(r.BullPenId, out var room) || !room.Equals(Sender) || !_starting.Remove(r.BullPenId, out var held))
                return;
            // Recovered: its store works again, so the next failure starts the backoff over.
            _failed.Remove(r.BullPenId);
            foreach (var (message, sender) in held)
                room.Tell(message, sender);
        });
        Receive<RoomFailed>(OnRoomFailed);
        Receive<BackoffOver>(r =>
        {
            if (_failed.TryGetValue(r.BullPenId, out var failed))
                failed.WaitingOut = false; // the next message for the room starts it again
        });
        Receive<SweepRetention>(_ => Sweep());
        Receive<StaleRooms>(OnStaleRooms);
        Receive<Purged>(OnPurged);
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
        if (_settings.Store is not null)
            Timers.StartPeriodicTimer(SweepRetention.Instance, SweepRetention.Instance, TimeSpan.Zero, _settings.RetentionSweepInterval);
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
        if (_stopping.TryGetValue(id, out var buffer) || _starting.TryGetValue(id, out buffer))
        {
            buffer.Add((message, sender));
            return;
        }
        if (_failed.TryGetValue(id, out var failed) && failed.WaitingOut)
        {
            RefuseForStorage(message, sender);
            return;
        }
        if (!_rooms.TryGetValue(id, out var room))
        {
            if (RefuseNewRoom(message, sender))
                return;
            room = Context.ActorOf(RoomActor.Props(id, _settings), RoomActorName(id));
            Context.Watch(room);
            _rooms[id] = room;
            _ids[room] = id;
            // Held until the room has recovered: should recovery fail, they are answered here, not lost in its stash.
            _starting[id] = [(message, sender)];
            return;
        }
        room.Tell(message, sender);
    }

    private static void RefuseForStorage(IWithBullPenId message, IActorRef sender) =>
        Refuse(message, sender, ErrorCodes.StorageUnavailable, $"room \"{message.BullPenId}\" cannot start now: its store is unavailable; try again shortly");

    /// <summary>
    /// Answers a message its room cannot take now, each as its kind expects, with <paramref name="code"/>: a relay's
    /// subscribe or join with <see cref="RelayRefused"/> (the relay tells the connection, or tries again later), a
    /// publish with <see cref="PublishRejected"/>, a retention check with "not purged".
    /// </summary>
    internal static void Refuse(IWithBullPenId message, IActorRef sender, string code, string why)
    {
        switch (message)
        {
            case RelaySubscribe s:
                s.Relay.Tell(new RelayRefused(s.BullPenId, s.Connection, code, why));
                break;
            case RelayJoin j:
                j.Relay.Tell(new RelayRefused(j.BullPenId, null, code, why));
                break;
            case RoutedEvent:
                sender.Tell(new PublishRejected(message.BullPenId, code, why));
                break;
            case PurgeIfStale:
                sender.Tell(new RetentionChecked(message.BullPenId, Purged: false));
                break;
        }
    }

    /// <summary>A room stopped before it was ready: the messages held for it are answered.</summary>
    private void RefuseStarting(string id)
    {
        if (!_starting.Remove(id, out var held))
            return;
        foreach (var (message, sender) in held)
            RefuseForStorage(message, sender);
    }

    /// <summary>Refuses the room's messages for a backoff that doubles with each failure, from <c>persistence.restart-backoff.min</c> to its max.</summary>
    private void OnRoomFailed(RoomFailed f)
    {
        var id = f.BullPenId;
        if (_rooms.TryGetValue(id, out var room) && room.Equals(Sender))
        {
            _rooms.Remove(id);
            RefuseStarting(id);
        }
        if (!_failed.TryGetValue(id, out var failed))
            _failed[id] = failed = new FailedRoom();
        failed.WaitingOut = true;
        var backoff = TimeSpan.FromTicks(Math.Min(_settings.StoreMaxBackoff.Ticks, _settings.StoreMinBackoff.Ticks << Math.Min(failed.Failures, 20)));
        failed.Failures++;
        _log.Warning("Room {BullPenId} lost its store (failure {Failures}); for {Backoff} its publishes and subscribes get " +
            "storage_unavailable, then it starts again", TextRules.ForLog(id), failed.Failures, backoff);
        Timers.StartSingleTimer("backoff-" + id, new BackoffOver(id), backoff);
    }

    /// <summary>Looks for rooms whose last event is older than <c>rooms.retention</c> (one page at a time).</summary>
    private void Sweep()
    {
        if (_sweeping || _settings.Store is not { } store)
            return;
        _sweeping = true;
        store.StaleRoomsAsync(DateTime.UtcNow - _settings.Retention, SweepPage)
            .PipeTo(Self, success: ids => new StaleRooms(ids), failure: e => new Purged([], e));
    }

    private void OnStaleRooms(StaleRooms stale)
    {
        // A running room is in use, so it is not stale whatever its journal says; the others are held while their rows go.
        var ids = stale.BullPenIds
            .Where(id => !_rooms.ContainsKey(id) && !_stopping.ContainsKey(id) && !_failed.ContainsKey(id))
            .ToArray();
        foreach (var id in ids)
            _stopping[id] = [];
        _settings.Store!.PurgeAsync(ids)
            .PipeTo(Self, success: () => new Purged(ids, null, stale.BullPenIds.Count == SweepPage), failure: e => new Purged(ids, e));
    }

    private void OnPurged(Purged purged)
    {
        _sweeping = false;
        if (purged.Failure is not null)
            _log.Warning("Retention could not delete old rooms' data: {Reason}", purged.Failure.Message);
        else if (purged.BullPenIds.Count > 0)
            _log.Info("Retention deleted the data of {Rooms} rooms unused for {Retention}", purged.BullPenIds.Count, _settings.Retention);
        foreach (var id in purged.BullPenIds)
        {
            if (_stopping.Remove(id, out var held))
            {
                foreach (var (message, sender) in held)
                    Route(message, sender);
            }
        }
        if (purged.MorePages)
            Self.Tell(SweepRetention.Instance);
    }

    /// <summary>Whether starting a room for <paramref name="message"/> is refused (then the refusal has been answered).</summary>
    private bool RefuseNewRoom(IWithBullPenId message, IActorRef sender)
    {
        var id = message.BullPenId;
        if (_settings.MaxRooms > 0 && RunningRooms >= _settings.MaxRooms)
        {
            _settings.Metrics.RoomRefused(Monitoring.TradeRoomMetrics.RoomCap);
            Refuse(message, sender, ErrorCodes.RoomLimit,
                $"the server runs its maximum of {_settings.MaxRooms} rooms (traderoom.rooms.max-rooms); room \"{id}\" cannot start now");
            return true;
        }
        if (message is not RelaySubscribe subscribe || _settings.NewRoomsPerMinute <= 0)
            return false;
        if (!_budgets.TryGetValue(subscribe.Connection, out var budget))
            budget = NewRoomBudget.Whole(_settings.NewRoomsPerMinute, NowMs);
        if (!budget.TryTake(NowMs, _settings.NewRoomsPerMinute))
        {
            _settings.Metrics.RoomRefused(Monitoring.TradeRoomMetrics.RoomBudget);
            Refuse(subscribe, sender, ErrorCodes.RoomLimit,
                $"room \"{id}\" is not running, and this connection has started its {_settings.NewRoomsPerMinute} new rooms for the minute " +
                "(traderoom.limits.new-rooms-per-minute); subscribe again later, or to a room that is running");
            return true;
        }
        _budgets[subscribe.Connection] = budget;
        return false;
    }

    internal static string RoomActorName(string bullPenId) => "room-" + Uri.EscapeDataString(bullPenId);

    /// <summary>Stale rooms purged per round of the retention sweep.</summary>
    private const int SweepPage = 500;

    private sealed record ForgetWholeBudgets
    {
        public static readonly ForgetWholeBudgets Instance = new();
    }

    private sealed record BackoffOver(string BullPenId);

    private sealed record SweepRetention
    {
        public static readonly SweepRetention Instance = new();
    }

    private sealed record StaleRooms(IReadOnlyList<string> BullPenIds);

    private sealed record Purged(IReadOnlyList<string> BullPenIds, Exception? Failure, bool MorePages = false);

    /// <summary>A room whose store failed: how many times in a row, and whether its backoff is still running.</summary>
    private sealed class FailedRoom
    {
        public int Failures { get; set; }
        public bool WaitingOut { get; set; }
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

    /// <summary>Whether a room may be started now (at least one whole token), without taking it.</summary>
    public bool CanTake(long nowMs, int perMinute)
    {
        Refill(nowMs, perMinute);
        return _tokens >= 1;
    }

    /// <summary>
    /// Counts a room already started. Unlike <see cref="TryTake"/> it may leave the budget below zero, a debt the
    /// refill pays off before the next start is allowed: a connection counting starts from the rooms' answers
    /// (cluster mode) can have had more subscribes on their way than it had tokens.
    /// </summary>
    public void Charge(long nowMs, int perMinute)
    {
        Refill(nowMs, perMinute);
        _tokens -= 1;
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
