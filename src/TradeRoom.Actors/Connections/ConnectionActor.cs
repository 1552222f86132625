using Akka.Actor;
using TradeRoom.Actors.Protocol;
using TradeRoom.Actors.Rooms;

namespace TradeRoom.Actors.Connections;

/// <summary>
/// One client socket. The socket's receive loop parses frames (and checks tokens) and tells this actor; the actor
/// keeps the connection's state (who it is, which rooms it follows) and writes every answer and event to the
/// socket's outbound queue. It never waits on the socket.
/// </summary>
public sealed class ConnectionActor : ReceiveActor
{
    private readonly IClientSocket _socket;
    private readonly IActorRef _rooms;
    private readonly HashSet<string> _subscriptions = new(StringComparer.Ordinal);
    private string? _userId;

    public ConnectionActor(IClientSocket socket, IActorRef rooms)
    {
        _socket = socket;
        _rooms = rooms;

        Receive<RoomEvent>(e =>
        {
            // Events still in flight after an unsubscribe are dropped here. Rooms send private events only to
            // their owner's connections; checking again costs little and keeps a routing slip from leaking.
            if (_subscriptions.Contains(e.BullPenId) && e.IsVisibleTo(_userId!))
                _socket.Send(e.Frame);
        });
        Receive<AuthSucceeded>(OnAuthSucceeded);
        Receive<AuthFailed>(f =>
        {
            _socket.Send(ServerFrames.AuthError(f.Code, f.Message));
            _socket.Close(CloseCodes.AuthenticationFailed, f.Message);
        });
        Receive<ClientMessage>(OnClientMessage);
        Receive<SubscribeAck>(a => _socket.Send(ServerFrames.Subscribed(a.BullPenId, a.Seq, a.Epoch, a.Recovered, a.State)));
        Receive<UnsubscribeAck>(a => _socket.Send(ServerFrames.Unsubscribed(a.BullPenId)));
        Receive<SocketClosed>(_ => Context.Stop(Self));
    }

    public static Props Props(IClientSocket socket, IActorRef rooms) =>
        Akka.Actor.Props.Create(() => new ConnectionActor(socket, rooms));

    protected override void PostStop()
    {
        // A no-op when the socket closed first; otherwise (the actor failed) the client learns why.
        _socket.Close(CloseCodes.InternalError, "internal error");
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
        _socket.Send(ServerFrames.AuthSuccess(auth.UserId));
    }

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
                _subscriptions.Add(subscribe.BullPenId);
                _rooms.Tell(new Subscribe(subscribe.BullPenId, Self, _userId!, subscribe.SinceSeq, subscribe.Epoch));
                break;
            case UnsubscribeRoomMessage unsubscribe:
                _subscriptions.Remove(unsubscribe.BullPenId);
                _rooms.Tell(new Unsubscribe(unsubscribe.BullPenId, Self));
                break;
            case RejectedMessage rejected:
                _socket.Send(ServerFrames.Error(rejected.Code, rejected.Message));
                break;
            case AuthenticateMessage:
                // Tokens are checked by the socket's receive loop, which sends AuthSucceeded / AuthFailed instead.
                Unhandled(message);
                break;
        }
    }
}
