using Akka.Actor;
using Akka.Event;
using TradeRoom.Actors.Protocol;
using TradeRoom.Contracts;

namespace TradeRoom.Actors.Rooms;

/// <summary>
/// The one place messages reach rooms: every <see cref="IWithBullPenId"/> message is routed here to its
/// <see cref="RoomActor"/>, which is created on first use (a subscribe or a publish). Messages that arrive while a
/// room recovers from its store are held until it is ready (<see cref="RoomReady"/>); idle rooms are stopped on their
/// own request, and messages that arrive while a room is stopping are held and start it again.
/// A room whose store failed hands its followers back (<see cref="RoomFailed"/>): until it starts again after a
/// backoff, its publishes and subscribes are refused with <c>storage_unavailable</c>, then the new incarnation takes
/// the followers back (<see cref="Rejoin"/>). With a durable store the registry also applies retention: the data of
/// rooms whose last event is older than <see cref="RoomSettings.Retention"/>, and that do not run, is deleted.
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
    // Rooms started and still recovering, with the messages held for them until they are ready (RoomReady).
    private readonly Dictionary<string, List<(IWithBullPenId Message, IActorRef Sender)>> _starting = new(StringComparer.Ordinal);
    // Rooms whose store failed, waiting out their backoff before they start again.
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
                if (_failed.TryGetValue(id, out var failed))
                    ScheduleRestart(id, failed);
            }
        });
        Receive<RoomReady>(r =>
        {
            if (!_rooms.TryGetValue(r.BullPenId, out var room) || !room.Equals(Sender) || !_starting.Remove(r.BullPenId, out var held))
                return;
            foreach (var (message, sender) in held)
                room.Tell(message, sender);
        });
        Receive<RoomFailed>(OnRoomFailed);
        Receive<RestartRoom>(r =>
        {
            if (!_failed.TryGetValue(r.BullPenId, out var failed) || failed.Restarting)
                return;
            if (failed.Followers.Count == 0)
            {
                // Nobody waits for it: the next subscribe or publish starts it.
                _failed.Remove(r.BullPenId);
                return;
            }
            failed.Restarting = true;
            Route(new Rejoin(r.BullPenId, failed.Followers.ToArray(), failed.Seq ?? 0, failed.Epoch ?? ""), Self);
        });
        Receive<Rejoined>(r =>
        {
            if (_failed.Remove(r.BullPenId, out var failed))
                _log.Info("Room {BullPenId} is back after its store failed; its {Followers} followers rejoined it",
                    TextRules.ForLog(r.BullPenId), failed.Followers.Count);
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
        if (_failed.TryGetValue(id, out var failed) && !failed.Restarting)
        {
            ServeFailed(failed, message, sender);
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
            // Held until the room has recovered: should recovery fail, they are answered here, not lost in its stash.
            _starting[id] = [(message, sender)];
            return;
        }
        room.Tell(message, sender);
    }

    /// <summary>
    /// A message for a room whose store failed, during its backoff: publishes and subscribes are refused with
    /// <c>storage_unavailable</c> (nothing unstored is delivered); a follower that leaves is let go.
    /// </summary>
    private void ServeFailed(FailedRoom failed, IWithBullPenId message, IActorRef sender)
    {
        switch (message)
        {
            case Unsubscribe u:
                failed.Followers.RemoveAll(f => f.Connection.Equals(u.Subscriber));
                u.Subscriber.Tell(new UnsubscribeAck(u.BullPenId));
                break;
            case Rejoin r:
                failed.Followers.AddRange(r.Followers);
                break;
            default:
                RefuseForStorage(message, sender);
                break;
        }
    }

    private static void RefuseForStorage(IWithBullPenId message, IActorRef sender) =>
        Refuse(message, sender, ErrorCodes.StorageUnavailable, $"room \"{message.BullPenId}\" cannot start now: its store is unavailable; try again shortly");

    /// <summary>
    /// Answers a message its room cannot take now, each as its kind expects: a subscribe (and each follower of a
    /// <see cref="Rejoin"/>) with <see cref="SubscribeRefused"/>, a publish with <see cref="PublishRejected"/>, both
    /// with <paramref name="code"/>; an unsubscribe has nothing to leave and is acknowledged.
    /// </summary>
    private static void Refuse(IWithBullPenId message, IActorRef sender, string code, string why)
    {
        switch (message)
        {
            case Subscribe s:
                s.Subscriber.Tell(new SubscribeRefused(s.BullPenId, code, why));
                break;
            case RoutedEvent:
                sender.Tell(new PublishRejected(message.BullPenId, code, why));
                break;
            case Unsubscribe u:
                u.Subscriber.Tell(new UnsubscribeAck(u.BullPenId));
                break;
            case Rejoin rejoin:
                foreach (var follower in rejoin.Followers)
                    follower.Connection.Tell(new SubscribeRefused(rejoin.BullPenId, code, why));
                break;
        }
    }

    /// <summary>
    /// A room stopped before it was ready: the messages held for it are answered. The followers of a
    /// <see cref="Rejoin"/> wait on with the failed room, which starts again after its backoff.
    /// </summary>
    private void RefuseStarting(string id)
    {
        if (!_starting.Remove(id, out var held))
            return;
        foreach (var (message, sender) in held)
        {
            if (message is not Rejoin rejoin)
                RefuseForStorage(message, sender);
            else if (!_failed.TryGetValue(id, out var failed) || !failed.Restarting)
                FailedRoomOf(id).Keep(rejoin.Followers, rejoin.Seq, rejoin.Epoch); // not already in the list: keep them
        }
    }

    private void OnRoomFailed(RoomFailed f)
    {
        var id = f.BullPenId;
        if (_rooms.TryGetValue(id, out var room) && room.Equals(Sender))
        {
            _rooms.Remove(id);
            RefuseStarting(id);
        }
        else if (room is not null && f.Seq is { } seq)
        {
            // Its Terminated came first, and a new incarnation already runs: it takes the followers now.
            Route(new Rejoin(id, f.Followers, seq, f.Epoch!), Self);
            return;
        }
        var failed = FailedRoomOf(id);
        failed.Followers.AddRange(f.Followers);
        if (f.Seq is not null)
            (failed.Seq, failed.Epoch) = (f.Seq, f.Epoch);
        ScheduleRestart(id, failed);
    }

    private FailedRoom FailedRoomOf(string id)
    {
        if (!_failed.TryGetValue(id, out var failed))
            _failed[id] = failed = new FailedRoom();
        return failed;
    }

    /// <summary>Starts the room again after a backoff that doubles with each failure, from <c>persistence.restart-backoff.min</c> to its max.</summary>
    private void ScheduleRestart(string id, FailedRoom failed)
    {
        failed.Restarting = false;
        var backoff = TimeSpan.FromTicks(Math.Min(_settings.StoreMaxBackoff.Ticks, _settings.StoreMinBackoff.Ticks << Math.Min(failed.Failures, 20)));
        failed.Failures++;
        _log.Warning("Room {BullPenId} lost its store (failure {Failures}); it starts again in {Backoff}, and until then its publishes " +
            "and subscribes get storage_unavailable", TextRules.ForLog(id), failed.Failures, backoff);
        Timers.StartSingleTimer("restart-" + id, new RestartRoom(id), backoff);
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
            if (message is Rejoin)
                _failed.Remove(id); // its followers are refused: nobody is left waiting for the room
            Refuse(message, sender, ErrorCodes.RoomLimit,
                $"the server runs its maximum of {_settings.MaxRooms} rooms (traderoom.rooms.max-rooms); room \"{id}\" cannot start now");
            return true;
        }
        if (message is not Subscribe subscribe || _settings.NewRoomsPerMinute <= 0)
            return false;
        if (!_budgets.TryGetValue(subscribe.Subscriber, out var budget))
            budget = NewRoomBudget.Whole(_settings.NewRoomsPerMinute, NowMs);
        if (!budget.TryTake(NowMs, _settings.NewRoomsPerMinute))
        {
            _settings.Metrics.RoomRefused(Monitoring.TradeRoomMetrics.RoomBudget);
            Refuse(subscribe, sender, ErrorCodes.RoomLimit,
                $"room \"{id}\" is not running, and this connection has started its {_settings.NewRoomsPerMinute} new rooms for the minute " +
                "(traderoom.limits.new-rooms-per-minute); subscribe again later, or to a room that is running");
            return true;
        }
        _budgets[subscribe.Subscriber] = budget;
        return false;
    }

    internal static string RoomActorName(string bullPenId) => "room-" + Uri.EscapeDataString(bullPenId);

    /// <summary>Stale rooms purged per round of the retention sweep.</summary>
    private const int SweepPage = 500;

    private sealed record ForgetWholeBudgets
    {
        public static readonly ForgetWholeBudgets Instance = new();
    }

    private sealed record RestartRoom(string BullPenId);

    private sealed record SweepRetention
    {
        public static readonly SweepRetention Instance = new();
    }

    private sealed record StaleRooms(IReadOnlyList<string> BullPenIds);

    private sealed record Purged(IReadOnlyList<string> BullPenIds, Exception? Failure, bool MorePages = false);

    /// <summary>A room whose store failed: the followers it handed back and what they have seen.</summary>
    private sealed class FailedRoom
    {
        public List<Follower> Followers { get; } = [];
        public long? Seq { get; set; }
        public string? Epoch { get; set; }
        public int Failures { get; set; }
        /// <summary>A new incarnation was started for the followers and has not rejoined them yet.</summary>
        public bool Restarting { get; set; }

        public void Keep(IReadOnlyList<Follower> followers, long seq, string epoch)
        {
            Followers.AddRange(followers);
            Seq ??= seq;
            Epoch ??= epoch;
        }
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
