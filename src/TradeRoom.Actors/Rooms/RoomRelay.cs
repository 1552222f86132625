using Akka.Actor;
using Akka.Event;
using TradeRoom.Actors.Monitoring;
using TradeRoom.Protocol;

namespace TradeRoom.Actors.Rooms;

/// <summary>
/// One room's delivery on this node: it holds the node's connections that follow the room, and the room sends it
/// each event once, whatever the number of connections here (across nodes: once per node, not once per subscriber).
/// Connections talk to it as they would to a room (<see cref="Subscribe"/>, <see cref="Unsubscribe"/>, then
/// <see cref="SubscribeAck"/>, <see cref="RoomEvent"/>s, <see cref="UnsubscribeAck"/>, <see cref="SubscribeRefused"/>);
/// it talks to the room through the rooms' route (the local <see cref="RoomRegistry"/> or the shard region).
/// <para>
/// It watches its room. When the room stops while connections follow it (its store failed, it moved to another
/// node, its node died), the relay joins it again (<see cref="RelayJoin"/>) with the last seq it got and the room's
/// epoch, and hands its connections exactly the events they missed: no gap, no duplicate. Refused or unanswered, it
/// tries again after a backoff (<c>persistence.restart-backoff</c>).
/// </para>
/// <para>
/// It watches no connection, and no connection watches it (a watch costs the watched a set of its watchers, and the
/// watcher a dictionary: hundreds of bytes per idle connection). A connection that stops says so
/// (<see cref="SubscriberStopped"/>), and a relay that stops tells its connections (<see cref="RelayStopped"/>); both
/// are on this node, so these messages arrive.
/// </para>
/// <para>
/// A connection's subscribe is answered only by the room's own answer (<see cref="RelaySubscribed"/>), which the room
/// sends in the turn that adds it, so no event published in between misses it.
/// </para>
/// </summary>
public sealed class RoomRelay : ReceiveActor, IWithTimers
{
    private readonly string _bullPenId;
    private readonly IActorRef _rooms;
    private readonly RoomSettings _settings;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    // Connections the room has added, by user (for private events), and the subscribes the room has yet to answer.
    private readonly Dictionary<IActorRef, string> _members = new();
    private readonly Dictionary<string, List<IActorRef>> _membersByUser = new(StringComparer.Ordinal);
    // Per connection, its requests waiting for the room's answer, in order: subscribes, and (null) unsubscribes behind them.
    private readonly Dictionary<IActorRef, Queue<Subscribe?>> _pending = new();
    // The room as last heard from (null until it first answers), and the last event it sent here.
    private IActorRef? _room;
    private long _seq;
    private string? _epoch;
    private bool _roomOnOtherNode;
    private bool _rejoining;
    private int _joinFailures;
    // Subscribes and unsubscribes received from the parent: it stops an empty relay only if it sent nothing more.
    private long _received;

    public RoomRelay(string bullPenId, IActorRef rooms, RoomSettings settings)
    {
        _bullPenId = bullPenId;
        _rooms = rooms;
        _settings = settings;

        Receive<RoomEvent>(Deliver);
        Receive<Subscribe>(OnSubscribe);
        Receive<Unsubscribe>(OnUnsubscribe);
        Receive<RelaySubscribed>(OnSubscribed);
        Receive<RelayRefused>(OnRefused);
        Receive<RelayJoined>(OnJoined);
        Receive<SubscriberStopped>(OnSubscriberStopped);
        Receive<Terminated>(t =>
        {
            if (t.ActorRef.Equals(_room))
                OnRoomStopped();
        });
        Receive<JoinAgain>(_ => Join());
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(string bullPenId, IActorRef rooms, RoomSettings settings) =>
        Akka.Actor.Props.Create(() => new RoomRelay(bullPenId, rooms, settings));

    /// <summary>
    /// Runs however the relay stops (its parent stopped or failed; a restart would run it too): its connections would
    /// otherwise wait for events (or an answer to their subscribe) that never come, so each learns that the room's
    /// delivery here stopped.
    /// </summary>
    protected override void PostStop()
    {
        _settings.Metrics.Subscriptions.Dec(_members.Count);
        var stopped = new RelayStopped(_bullPenId);
        foreach (var connection in _members.Keys)
            connection.Tell(stopped, Self);
        foreach (var connection in _pending.Keys)
        {
            if (!_members.ContainsKey(connection))
                connection.Tell(stopped, Self);
        }
    }

    private void OnSubscribe(Subscribe s)
    {
        _received++;
        if (!_pending.TryGetValue(s.Subscriber, out var requests))
            _pending[s.Subscriber] = requests = new Queue<Subscribe?>(1);
        requests.Enqueue(s);
        _rooms.Tell(new RelaySubscribe(_bullPenId, Self, s.Subscriber, s.UserId, s.SinceSeq, s.Epoch, s.MayStart));
    }

    /// <summary>Leaves at once, or, behind a subscribe the room has yet to answer, right after that answer: every request is answered, in order.</summary>
    private void OnUnsubscribe(Unsubscribe u)
    {
        _received++;
        if (_pending.TryGetValue(u.Subscriber, out var requests))
        {
            requests.Enqueue(null);
            return;
        }
        Leave(u.Subscriber);
        ReportIfEmpty();
    }

    /// <summary>The connection has stopped: it leaves at once, with its requests still waiting for the room, and nothing is answered.</summary>
    private void OnSubscriberStopped(SubscriberStopped stopped)
    {
        _received++;
        _pending.Remove(stopped.Subscriber);
        Drop(stopped.Subscriber);
        ReportIfEmpty();
    }

    private void Leave(IActorRef connection)
    {
        Drop(connection);
        connection.Tell(new UnsubscribeAck(_bullPenId));
    }

    private void OnSubscribed(RelaySubscribed answer)
    {
        var connection = answer.Connection;
        if (!TakePending(connection, out var subscribe))
        {
            // It stopped (SubscriberStopped) while the room answered, and the room added it all the same: it forgets it now.
            Sender.Tell(new RelayUnsubscribe(_bullPenId, connection));
            return;
        }
        WatchRoom(Sender);
        if (!_rejoining)
            Timers.Cancel(JoinAgain.Instance);
        var ack = answer.Ack;
        // The room sends this relay its events from its answer on: before, from other connections' answers. A relay
        // with no member yet, or answered by a room in another epoch, starts from the answer.
        _seq = _members.Count == 0 || ack.Epoch != _epoch ? ack.Seq : Math.Max(_seq, ack.Seq);
        _epoch = ack.Epoch;
        AddMember(connection, subscribe.UserId);
        connection.Tell(ack, Self);
        foreach (var missed in answer.Replay)
            connection.Tell(missed, ActorRefs.NoSender);
        LeaveIfAsked(connection);
    }

    private void OnRefused(RelayRefused refused)
    {
        if (refused.Connection is null)
        {
            _log.Info("Relay of room {BullPenId} could not join it again ({Code}); it tries again", TextRules.ForLog(_bullPenId), refused.Code);
            ScheduleJoin();
            return;
        }
        if (!TakePending(refused.Connection, out _))
            return;
        refused.Connection.Tell(new SubscribeRefused(_bullPenId, refused.Code, refused.Message));
        LeaveIfAsked(refused.Connection);
    }

    /// <summary>Carries out the unsubscribes that waited for the answer just given, then stops if nothing is left.</summary>
    private void LeaveIfAsked(IActorRef connection)
    {
        if (_pending.TryGetValue(connection, out var requests))
        {
            while (requests.TryPeek(out var next) && next is null)
            {
                requests.Dequeue();
                Drop(connection);
                connection.Tell(new UnsubscribeAck(_bullPenId));
            }
            if (requests.Count == 0)
                _pending.Remove(connection);
        }
        ReportIfEmpty();
    }

    private void Deliver(RoomEvent e)
    {
        if (e.Seq <= _seq)
            return; // already handed out (a replay overlapping what came live): never twice
        if (_roomOnOtherNode)
            _settings.Metrics.CrossNodeEventsReceived?.Inc();
        _seq = Math.Max(_seq, e.Seq);
        if (e.VisibleTo is null)
        {
            foreach (var connection in _members.Keys)
                connection.Tell(e, ActorRefs.NoSender);
        }
        else if (_membersByUser.TryGetValue(e.VisibleTo, out var owners))
        {
            foreach (var owner in owners)
                owner.Tell(e, ActorRefs.NoSender);
        }
    }

    private void OnRoomStopped()
    {
        _room = null;
        if (_members.Count == 0 && _pending.Count == 0)
            return;
        _log.Info("Room {BullPenId} stopped while {Connections} connections here follow it; joining it again from seq {Seq}",
            TextRules.ForLog(_bullPenId), _members.Count + _pending.Count, _seq);
        Join();
    }

    /// <summary>
    /// Joins the room again with every member, and asks again for the pending subscribes: the stopped room may
    /// never have answered them.
    /// </summary>
    private void Join()
    {
        if (_room is not null)
            return;
        _rejoining = _members.Count > 0;
        if (_rejoining)
            _rooms.Tell(new RelayJoin(_bullPenId, Self, _members.Select(m => new RelayMember(m.Key, m.Value)).ToArray(), _seq, _epoch));
        foreach (var requests in _pending.Values)
        {
            foreach (var s in requests)
            {
                if (s is not null)
                    _rooms.Tell(new RelaySubscribe(_bullPenId, Self, s.Subscriber, s.UserId, s.SinceSeq, s.Epoch, s.MayStart));
            }
        }
        // Unanswered (the room failed again while recovering, or its node is unreachable): try again.
        Timers.StartSingleTimer(JoinAgain.Instance, JoinAgain.Instance, _settings.RejoinTimeout);
    }

    private void OnJoined(RelayJoined joined)
    {
        if (!_rejoining)
            return;
        _rejoining = false;
        _joinFailures = 0;
        Timers.Cancel(JoinAgain.Instance);
        WatchRoom(Sender);
        if (joined.Recovered)
        {
            foreach (var missed in joined.Replay)
            {
                if (missed.Seq > _seq)
                    Deliver(missed);
            }
        }
        else
        {
            // The room's history no longer covers what this node's connections last saw: each starts over.
            _log.Warning("Room {BullPenId} came back without the events after seq {Seq}; its connections here start over from seq {Head}",
                TextRules.ForLog(_bullPenId), _seq, joined.Seq);
            foreach (var (connection, _) in _members)
                connection.Tell(new SubscribeAck(_bullPenId, joined.Seq, joined.Epoch, false, joined.State), Self);
        }
        // Starting over may go back (a room that lost its events numbers anew in a new epoch): the next rejoin must
        // ask from this position, not from the old epoch's higher seq.
        _seq = joined.Recovered ? Math.Max(_seq, joined.Seq) : joined.Seq;
        _epoch = joined.Epoch;
    }

    /// <summary>The request the room just answered for <paramref name="connection"/> (its oldest one); false if none was due.</summary>
    private bool TakePending(IActorRef connection, out Subscribe subscribe)
    {
        subscribe = null!;
        if (!_pending.TryGetValue(connection, out var requests) || !requests.TryDequeue(out var oldest))
            return false;
        subscribe = oldest!; // unsubscribes are carried out as soon as they reach the head of the queue
        if (requests.Count == 0)
            _pending.Remove(connection);
        return true;
    }

    private void ScheduleJoin()
    {
        var backoff = TimeSpan.FromTicks(Math.Min(_settings.StoreMaxBackoff.Ticks, _settings.StoreMinBackoff.Ticks << Math.Min(_joinFailures, 20)));
        _joinFailures++;
        _room = null;
        Timers.StartSingleTimer(JoinAgain.Instance, JoinAgain.Instance, backoff);
    }

    private void WatchRoom(IActorRef room)
    {
        if (room.Equals(_room))
            return;
        if (_room is not null)
            Context.Unwatch(_room);
        _room = room;
        _roomOnOtherNode = room.Path.Address.HasGlobalScope;
        Context.Watch(room);
    }

    private void AddMember(IActorRef connection, string userId)
    {
        if (!_members.TryAdd(connection, userId))
            return;
        _settings.Metrics.Subscriptions.Inc();
        if (!_membersByUser.TryGetValue(userId, out var connections))
            _membersByUser[userId] = connections = new List<IActorRef>(1);
        connections.Add(connection);
    }

    /// <summary>Forgets <paramref name="connection"/> as a member, and tells the room to forget it too.</summary>
    private void Drop(IActorRef connection)
    {
        if (!_members.Remove(connection, out var userId))
            return;
        _settings.Metrics.Subscriptions.Dec();
        var connections = _membersByUser[userId];
        connections.Remove(connection);
        if (connections.Count == 0)
            _membersByUser.Remove(userId);
        // Straight to the room's own ref: routed, it could start a room that is not running.
        _room?.Tell(new RelayUnsubscribe(_bullPenId, connection));
    }

    private void ReportIfEmpty()
    {
        if (_members.Count == 0 && _pending.Count == 0)
            Context.Parent.Tell(new RelayEmpty(_bullPenId, _received));
    }

    private sealed record JoinAgain
    {
        public static readonly JoinAgain Instance = new();
    }
}

/// <summary>A relay has no connection left: its parent stops it if it has sent it nothing since (<paramref name="Received"/> messages).</summary>
internal sealed record RelayEmpty(string BullPenId, long Received);
