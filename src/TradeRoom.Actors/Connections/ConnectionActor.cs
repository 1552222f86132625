using Akka.Actor;
using TradeRoom.Actors.Rooms;
using TradeRoom.Protocol;

namespace TradeRoom.Actors.Connections;

/// <summary>
/// One client socket. The socket's receive loop parses frames (and checks tokens) and tells this actor; the actor
/// keeps the connection's state (who it is, until when its token holds, which rooms it follows) and writes every
/// answer and event to the socket's outbound queue. It never waits on the socket: a replay larger than the
/// socket's window waits here, in order with the live events behind it, and is fed to the socket as it drains.
/// </summary>
public sealed class ConnectionActor : UntypedActor
{
    private readonly IClientSocket _socket;
    private readonly IActorRef _rooms;
    private readonly ConnectionSettings _settings;
    private readonly RoomSet _subscriptions = new();
    private string? _userId;
    private DateTimeOffset? _expires;
    private IReadOnlyList<string>? _claimedRooms;
    // Only while the authorization callback is asked: the latest subscribe waiting for it, per room.
    private Dictionary<string, SubscribeRoomMessage>? _authorizing;
    // Only while a room revoked before it answered has yet to answer: its subscribe answer is dropped.
    private HashSet<string>? _ackToDrop;
    // A FlushSocket is on its way to this actor: events queued meanwhile leave with it.
    private bool _flushDue;
    // Called by the socket's send loop, outside the actor: it must not touch Self or Context.
    private Action? _wakeWhenDrained;

    // Only while a replay is being fed to the socket: frames waiting, in order, and how many replayed events of
    // each room are still to come from the room.
    private Queue<RoomEvent>? _backlog;
    private long _backlogLiveBytes;
    private Dictionary<string, int>? _replaysDue;

    // Cluster mode: rooms this connection may still start by subscribing (limits.new-rooms-per-minute). Counted here,
    // from the rooms' answers, because under sharding no single actor knows which rooms run.
    private NewRoomBudget _newRooms;

    public ConnectionActor(IClientSocket socket, IActorRef rooms, ConnectionSettings settings)
    {
        _socket = socket;
        _rooms = rooms;
        _settings = settings;
        _newRooms = NewRoomBudget.Whole(settings.NewRoomsPerMinute, Environment.TickCount64);
    }

    /// <summary>Whether this connection's next subscribe may start a room that is not running (see <see cref="Subscribe.MayStart"/>).</summary>
    private bool MayStartRoom() => _settings.NewRoomsPerMinute <= 0 || _newRooms.CanTake(Environment.TickCount64, _settings.NewRoomsPerMinute);

    /// <summary>
    /// One switch rather than a ReceiveActor's handler table: with tens of thousands of connections, each
    /// handler table costs about a kilobyte per connection and a few type tests per message.
    /// </summary>
    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case RoomEvent e:
                OnRoomEvent(e);
                break;
            case FlushSocket:
                _flushDue = false;
                _socket.Flush();
                break;
            case ClientMessage clientMessage:
                OnClientMessage(clientMessage);
                break;
            case SubscribeAck ack:
                OnSubscribeAck(ack);
                break;
            case SubscribeRefused refused:
                _subscriptions.Remove(refused.BullPenId);
                _socket.Send(ServerFrames.Error(refused.Code, refused.Message, refused.BullPenId));
                break;
            case RoomAuthorized authorized:
                OnRoomAuthorized(authorized);
                break;
            case UnsubscribeAck ack:
                _socket.Send(ServerFrames.Unsubscribed(ack.BullPenId));
                break;
            case RelayStopped stopped:
                if (_subscriptions.Contains(stopped.BullPenId))
                {
                    // Never silently: the client learns that this room's events stopped, and can subscribe again to resume.
                    _subscriptions.Remove(stopped.BullPenId);
                    _socket.Send(ServerFrames.Error(ErrorCodes.RoomUnavailable,
                        "this room's delivery stopped on this server; subscribe again (with sinceSeq and epoch to resume)", stopped.BullPenId));
                }
                break;
            case AuthSucceeded auth:
                OnAuthSucceeded(auth);
                break;
            case AuthFailed failed:
                _settings.Metrics.AuthFailed(failed.Code);
                Reject(failed.Code, failed.Message, failed.CloseCode);
                break;
            case SocketDrained:
                FeedBacklog();
                break;
            case AuthTimeoutElapsed:
                if (_userId is null)
                {
                    _settings.Metrics.AuthFailed(Monitoring.TradeRoomMetrics.AuthTimeout);
                    _socket.Close(CloseCodes.AuthenticationFailed, "authentication timeout");
                }
                break;
            case TokenExpiryDue:
                if (_expires is { } expires && expires <= DateTimeOffset.UtcNow)
                {
                    _settings.Metrics.AuthFailed(ErrorCodes.TokenExpired);
                    Reject(ErrorCodes.TokenExpired, "token has expired; send a fresh auth before exp to stay connected", CloseCodes.AuthenticationFailed);
                }
                else
                {
                    ScheduleExpiry();
                }
                break;
            case CloseConnection close:
                _socket.Close(close.Code, close.Reason);
                break;
            case SocketClosed:
                Context.Stop(Self);
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    public static Props Props(IClientSocket socket, IActorRef rooms, ConnectionSettings settings) =>
        Akka.Actor.Props.Create(() => new ConnectionActor(socket, rooms, settings));

    /// <summary>
    /// The auth timeout, kept by the socket for the sweeper to call (<see cref="IClientSocket.CallAt"/>), as the token's
    /// expiry is once authenticated (<see cref="ScheduleExpiry"/> replaces it): no timer of its own per connection.
    /// </summary>
    protected override void PreStart() =>
        _socket.CallAt(Environment.TickCount64 + (long)_settings.AuthTimeout.TotalMilliseconds, TellAuthTimeout, Self);

    private static readonly Action<object> TellAuthTimeout = static self => ((IActorRef)self).Tell(AuthTimeoutElapsed.Instance);

    /// <summary>
    /// Runs however the actor stops (its socket closed, or its supervisor stopped it after a failure). Nobody watches
    /// a connection, and it watches nobody: DeathWatch would cost every idle connection a set and a dictionary. So it
    /// tells its relays and its parent itself; they are on this node, so the messages arrive.
    /// </summary>
    protected override void PostStop()
    {
        // A no-op when the socket closed first; otherwise (the actor failed) the client learns why.
        _socket.Close(CloseCodes.InternalError, "internal error");
        // Pending rooms too: a subscribe on its way to the room must not add a connection that is gone. Rooms already
        // left have had their Unsubscribe sent.
        foreach (var room in _subscriptions.ToArray())
            _rooms.Tell(new SubscriberStopped(room, Self));
        Context.Parent.Tell(ConnectionStopped.Instance, Self);
    }

    private void Reject(string code, string message, int closeCode)
    {
        _socket.Send(ServerFrames.AuthError(code, message));
        _socket.Close(closeCode, message);
    }

    private void OnAuthSucceeded(AuthSucceeded auth)
    {
        if (_userId is not null && _userId != auth.UserId)
        {
            _socket.Send(ServerFrames.Error(ErrorCodes.UserMismatch,
                $"this connection is authenticated as another user; open a new connection for \"{auth.UserId}\""));
            return;
        }
        _userId = auth.UserId;
        _expires = auth.Expires;
        _claimedRooms = auth.Rooms;
        ScheduleExpiry();
        _socket.Send(ServerFrames.AuthSuccess(auth.UserId, _settings.Node));
        // A refreshed token may list fewer rooms: those it no longer allows are left, each with forbidden.
        foreach (var room in _subscriptions.ToArray())
        {
            if (_settings.Authorizer.Decide(_userId, _claimedRooms, room) is { Allowed: false } decision)
                Revoke(room, decision);
        }
    }

    /// <summary>
    /// The user may not follow <paramref name="bullPenId"/>: leave it (if the room was asked) and say why, naming it.
    /// A room asked but not yet answered sends its answer (with its snapshot) all the same: that answer is dropped.
    /// </summary>
    private void Revoke(string bullPenId, Auth.RoomDecision decision)
    {
        if (_authorizing?.Remove(bullPenId) != true && _subscriptions.Contains(bullPenId))
        {
            if (!_subscriptions.IsActive(bullPenId))
                (_ackToDrop ??= new HashSet<string>(StringComparer.Ordinal)).Add(bullPenId);
            _rooms.Tell(new Unsubscribe(bullPenId, Self)); // its unsubscribed follows the error
        }
        Refuse(bullPenId, decision);
    }

    /// <summary>A room the rooms were never asked about: it is not followed, and the client learns why.</summary>
    private void Refuse(string bullPenId, Auth.RoomDecision decision)
    {
        _subscriptions.Remove(bullPenId);
        _socket.Send(ServerFrames.Error(decision.Code!, decision.Message!, bullPenId));
    }

    private void OnRoomAuthorized(RoomAuthorized authorized)
    {
        // Unsubscribed while the callback was asked: nothing to do.
        if (_authorizing is null || !_authorizing.Remove(authorized.BullPenId, out var subscribe))
            return;
        if (_authorizing.Count == 0)
            _authorizing = null;
        if (authorized.Decision.Allowed)
            _rooms.Tell(new Subscribe(subscribe.BullPenId, Self, _userId!, subscribe.SinceSeq, subscribe.Epoch, MayStartRoom()));
        else
            Refuse(subscribe.BullPenId, authorized.Decision);
    }

    /// <summary>
    /// Once authenticated, the token's expiry, if it has one, replaces the auth timeout in the socket's one call
    /// (<see cref="IClientSocket.CallAt"/>); without one, nothing is called.
    /// </summary>
    private void ScheduleExpiry()
    {
        if (_expires is { } expires)
            _socket.CallAt(Environment.TickCount64 + (long)Math.Ceiling(Math.Max(0, (expires - DateTimeOffset.UtcNow).TotalMilliseconds)), TellExpiryDue, Self);
        else
            _socket.CallAt(0, null, null);
    }

    private static readonly Action<object> TellExpiryDue = static self => ((IActorRef)self).Tell(TokenExpiryDue.Instance);

    private void OnClientMessage(ClientMessage message)
    {
        if (_userId is null && !message.AllowedBeforeAuth && message.Type is not null)
        {
            _socket.Send(ServerFrames.Error(ErrorCodes.NotAuthenticated, "authenticate first: send {\"type\":\"auth\",\"data\":{\"token\":\"<jwt>\"}}"));
            return;
        }

        switch (message)
        {
            case PingMessage ping:
                _socket.Send(ServerFrames.Pong(ping.Data));
                break;
            case SubscribeRoomMessage subscribe:
                if (!_subscriptions.Contains(subscribe.BullPenId) && _subscriptions.Count >= _settings.MaxSubscriptions)
                {
                    _socket.Send(ServerFrames.Error(ErrorCodes.TooManySubscriptions,
                        $"a connection may follow at most {_settings.MaxSubscriptions} rooms; unsubscribe from one first",
                        subscribe.BullPenId));
                    break;
                }
                OnSubscribe(subscribe);
                break;
            case UnsubscribeRoomMessage unsubscribe:
                _authorizing?.Remove(unsubscribe.BullPenId);
                _subscriptions.Remove(unsubscribe.BullPenId);
                _rooms.Tell(new Unsubscribe(unsubscribe.BullPenId, Self));
                break;
            case RejectedMessage rejected:
                _socket.Send(ServerFrames.Error(rejected.Code, rejected.Message, rejected.BullPenId));
                break;
            case AuthenticateMessage:
                // Tokens are checked by the socket's receive loop, which sends AuthSucceeded / AuthFailed instead.
                Unhandled(message);
                break;
        }
    }

    /// <summary>
    /// Room authorization first: refused, nothing of the room is sent; decided at once (open, claim, a cached
    /// callback answer), the room is asked straight away; else the callback is asked and the subscribe waits for it.
    /// </summary>
    private void OnSubscribe(SubscribeRoomMessage subscribe)
    {
        var room = subscribe.BullPenId;
        var decision = _settings.Authorizer.Decide(_userId!, _claimedRooms, room);
        if (decision is { Allowed: false } refused)
        {
            Revoke(room, refused);
            return;
        }
        _subscriptions.AddPending(room);
        if (decision is not null)
        {
            _rooms.Tell(new Subscribe(room, Self, _userId!, subscribe.SinceSeq, subscribe.Epoch, MayStartRoom()));
            return;
        }
        _authorizing ??= new Dictionary<string, SubscribeRoomMessage>(StringComparer.Ordinal);
        var asking = _authorizing.ContainsKey(room);
        _authorizing[room] = subscribe; // the latest request wins; one question per room at a time
        if (!asking)
            _settings.Authorizer.CheckAsync(_userId!, room).PipeTo(Self, success: d => new RoomAuthorized(room, d),
                failure: e => new RoomAuthorized(room, Auth.RoomDecision.Unavailable(e.GetType().Name)));
    }

    private void OnSubscribeAck(SubscribeAck ack)
    {
        // Counted once the room says this subscribe started it: subscribes already on their way may start a few
        // more than the budget holds, and the budget then owes them (NewRoomBudget.Charge).
        if (ack.Started && _settings.NewRoomsPerMinute > 0)
            _newRooms.Charge(Environment.TickCount64, _settings.NewRoomsPerMinute);
        if (_ackToDrop is not null && _ackToDrop.Remove(ack.BullPenId))
        {
            // Revoked before the room answered: nothing of it reaches the client (its replay, if any, is dropped too).
            if (_ackToDrop.Count == 0)
                _ackToDrop = null;
            return;
        }
        _subscriptions.Activate(ack.BullPenId);
        _socket.Send(ServerFrames.Subscribed(ack.BullPenId, ack.Seq, ack.Epoch, ack.Recovered, ack.State));
        if (ack.Replayed > 0)
        {
            _replaysDue ??= new Dictionary<string, int>(StringComparer.Ordinal);
            _replaysDue[ack.BullPenId] = ack.Replayed;
        }
    }

    private void OnRoomEvent(RoomEvent e)
    {
        var replayed = IsReplayed(e.BullPenId);
        // Events still in flight after an unsubscribe, or from before the answer to a new subscribe, are dropped
        // here. Rooms send private events only to their
        // owner's connections; checking again costs little and keeps a routing slip from leaking.
        if (!_subscriptions.IsActive(e.BullPenId) || !e.IsVisibleTo(_userId!))
            return;

        if (_backlog is null && (!replayed || FitsWindow(e)))
        {
            _socket.Queue(e);
            FlushAfterWaitingMessages();
            return;
        }

        // Behind a replay: keep the order, and count live events so that a client that stopped reading is still
        // found out (a replay alone never makes a slow consumer).
        if (_backlog is null)
        {
            _backlog = new Queue<RoomEvent>();
            _socket.NotifyWhenBelow(_settings.ReplayWindow, WakeWhenDrained());
        }
        _backlog.Enqueue(e);
        if (!replayed && (_backlogLiveBytes += e.Frame.Length) > _settings.HardLimit)
            _socket.Close(CloseCodes.SlowConsumer, "slow consumer");
    }

    /// <summary>
    /// Events are written when the messages already waiting for this actor have been handled: it tells itself to
    /// flush, once, and that message comes after them. So the events of a burst leave in one socket write, and a
    /// lone event leaves at the end of this mailbox run (the actor is running: the message costs no hop).
    /// </summary>
    private void FlushAfterWaitingMessages()
    {
        if (_flushDue)
            return;
        _flushDue = true;
        Self.Tell(FlushSocket.Instance, ActorRefs.NoSender);
    }

    /// <summary>The callback the socket's send loop calls, made once and only when a replay first has to wait.</summary>
    private Action WakeWhenDrained()
    {
        if (_wakeWhenDrained is null)
        {
            var self = Self;
            _wakeWhenDrained = () => self.Tell(SocketDrained.Instance);
        }
        return _wakeWhenDrained;
    }

    /// <summary>Whether the socket can take <paramref name="e"/> now without going past the replay window (an empty socket takes anything).</summary>
    private bool FitsWindow(RoomEvent e)
    {
        var queued = _socket.QueuedBytes;
        return queued == 0 || queued + e.Frame.Length <= _settings.ReplayWindow;
    }

    private bool IsReplayed(string bullPenId)
    {
        if (_replaysDue is null || !_replaysDue.TryGetValue(bullPenId, out var due))
            return false;
        if (due == 1)
        {
            _replaysDue.Remove(bullPenId);
            if (_replaysDue.Count == 0)
                _replaysDue = null;
        }
        else
        {
            _replaysDue[bullPenId] = due - 1;
        }
        return true;
    }

    private void FeedBacklog()
    {
        if (_backlog is null)
            return;
        while (_backlog.TryPeek(out var next) && FitsWindow(next))
            _socket.Queue(_backlog.Dequeue());
        _socket.Flush();
        if (_backlog.Count > 0)
        {
            _socket.NotifyWhenBelow(_settings.ReplayWindow, WakeWhenDrained());
            return;
        }
        _backlog = null;
        _backlogLiveBytes = 0;
    }
}
