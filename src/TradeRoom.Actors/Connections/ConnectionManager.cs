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
    // The admitted connections' users, and how many each user has: a count, not a set per user (most users have one
    // connection, and a set would cost each of them two objects), since _users already says whether one is admitted.
    private readonly Dictionary<IActorRef, string> _users = new();
    private readonly Dictionary<string, int> _perUser = new(StringComparer.Ordinal);
    private int _connections;

    /// <param name="maxConnectionsPerUser">0: no limit.</param>
    public ConnectionManager(IActorRef rooms, ConnectionSettings settings, int maxConnectionsPerUser)
    {
        Receive<OpenConnection>(open =>
        {
            var connection = Context.ActorOf(ConnectionActor.Props(open.Socket, rooms, settings).WithMailbox(LeanMailbox.ConfigPath));
            _connections++;
            Sender.Tell(connection);
        });
        Receive<AdmitUser>(admit =>
        {
            if (_users.ContainsKey(admit.Connection))
            {
                // Admitted already: a refresh takes no second place. A token for another user gets user_mismatch from
                // the connection, which stays who it is, so it takes none of the other user's places either.
                Sender.Tell(new UserAdmission(true));
                return;
            }
            var held = _perUser.GetValueOrDefault(admit.UserId);
            var admitted = maxConnectionsPerUser <= 0 || held < maxConnectionsPerUser;
            if (admitted)
            {
                _users[admit.Connection] = admit.UserId;
                _perUser[admit.UserId] = held + 1;
            }
            Sender.Tell(new UserAdmission(admitted));
        });
        Receive<ConnectionStopped>(_ =>
        {
            _connections--;
            if (!_users.Remove(Sender, out var userId))
                return;
            var held = _perUser[userId] - 1;
            if (held == 0)
                _perUser.Remove(userId);
            else
                _perUser[userId] = held;
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
