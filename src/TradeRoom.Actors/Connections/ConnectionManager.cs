using Akka.Actor;
using Akka.Event;

namespace TradeRoom.Actors.Connections;

/// <summary>
/// Parent of every <see cref="ConnectionActor"/>. A connection actor that throws is stopped (its PostStop closes the
/// socket with 1011 and rooms drop it through DeathWatch): a connection has nothing worth keeping through a fault,
/// and the client can reconnect.
/// </summary>
public sealed class ConnectionManager : ReceiveActor
{
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private int _connections;

    public ConnectionManager(IActorRef rooms)
    {
        Receive<OpenConnection>(open =>
        {
            var connection = Context.ActorOf(ConnectionActor.Props(open.Socket, rooms));
            Context.Watch(connection);
            _connections++;
            Sender.Tell(connection);
        });
        Receive<Terminated>(_ => _connections--);
        Receive<GetConnectionCount>(_ => Sender.Tell(new ConnectionCount(_connections)));
    }

    public static Props Props(IActorRef rooms) => Akka.Actor.Props.Create(() => new ConnectionManager(rooms));

    protected override SupervisorStrategy SupervisorStrategy() =>
        new OneForOneStrategy(e =>
        {
            _log.Error(e, "A connection failed; it is stopped and its socket closed");
            return Directive.Stop;
        });
}
