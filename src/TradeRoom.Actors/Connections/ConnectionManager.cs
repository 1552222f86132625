using Akka.Actor;
using Akka.Event;

namespace TradeRoom.Actors.Connections;

/// <summary>
/// Parent of every <see cref="ConnectionActor"/>, and keeper of the optional per-user connection limit.
/// A connection actor that throws is stopped (its PostStop closes the socket with 1011, and tells its relays and this
/// manager that it is gone): a connection has nothing worth keeping through a fault, and the client can reconnect and resume.
/// The manager does not watch its connections (a watch costs each one a set of its watchers): it learns that one ended
/// from the <see cref="ConnectionStopped"/> the connection tells it from its PostStop.
/// </summary>
public sealed class ConnectionManager : ReceiveActor
{
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<string, HashSet<IActorRef>> _byUser = new(StringComparer.Ordinal);
    private readonly Dictionary<IActorRef, string> _users = new();
    private int _connections;

    /// <param name="maxConnectionsPerUser">0: no limit.</param>
    public ConnectionManager(IActorRef rooms, ConnectionSettings settings, int maxConnectionsPerUser)
    {
        Context.System.Settings.InjectTopLevelFallback(LeanMailbox.Definition);
        Receive<OpenConnection>(open =>
        {
            var connection = Context.ActorOf(ConnectionActor.Props(open.Socket, rooms, settings).WithMailbox(LeanMailbox.ConfigPath));
            _connections++;
            Sender.Tell(connection);
        });
        Receive<AdmitUser>(admit =>
        {
            if (_users.TryGetValue(admit.Connection, out var current) && current != admit.UserId)
            {
                // A token for another user on an admitted connection: the connection answers user_mismatch and
                // stays who it is, so it takes none of the other user's places.
                Sender.Tell(new UserAdmission(true));
                return;
            }
            if (!_byUser.TryGetValue(admit.UserId, out var connections))
                _byUser[admit.UserId] = connections = [];
            var admitted = connections.Contains(admit.Connection)
                           || maxConnectionsPerUser <= 0
                           || connections.Count < maxConnectionsPerUser;
            if (admitted && connections.Add(admit.Connection))
                _users[admit.Connection] = admit.UserId;
            if (connections.Count == 0)
                _byUser.Remove(admit.UserId);
            Sender.Tell(new UserAdmission(admitted));
        });
        Receive<ConnectionStopped>(_ =>
        {
            _connections--;
            if (_users.Remove(Sender, out var userId) && _byUser.TryGetValue(userId, out var connections)
                && connections.Remove(Sender) && connections.Count == 0)
                _byUser.Remove(userId);
        });
        Receive<GetConnectionCount>(_ => Sender.Tell(new ConnectionCount(_connections)));
    }

    public static Props Props(IActorRef rooms, ConnectionSettings settings, int maxConnectionsPerUser = 0) =>
        Akka.Actor.Props.Create(() => new ConnectionManager(rooms, settings, maxConnectionsPerUser));

    protected override SupervisorStrategy SupervisorStrategy() =>
        new OneForOneStrategy(e =>
        {
            _log.Error(e, "A connection failed; it is stopped and its socket closed");
            return Directive.Stop;
        });
}
