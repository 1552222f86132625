using Akka.Actor;
using TradeRoom.Actors.Connections;
using TradeRoom.Actors.Rooms;
using TradeRoom.Protocol;
using TradeRoom.Tests.Support;
using Xunit.Abstractions;

namespace TradeRoom.Tests.Actors;

public class ConnectionManagerSpecs(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(ShippedSettings.ActorSystem, output: output)
{
    private int ConnectionCount(IActorRef manager)
    {
        manager.Tell(GetConnectionCount.Instance);
        return ExpectMsg<ConnectionCount>().Connections;
    }

    private IActorRef Open(IActorRef manager, FakeClientSocket socket)
    {
        manager.Tell(new OpenConnection(socket));
        return ExpectMsg<IActorRef>();
    }

    [Fact]
    public void OpenConnection_replies_with_a_child_connection_actor_for_the_socket()
    {
        var manager = Sys.ActorOf(ConnectionManager.Props(CreateTestProbe().Ref, ShippedSettings.Connections));
        var socket = new FakeClientSocket();

        var connection = Open(manager, socket);

        Assert.Equal(manager.Path, connection.Path.Parent);
        connection.Tell(ClientMessageParser.Parse("""{"type":"ping"}"""u8.ToArray()));
        Assert.Equal("pong", socket.NextFrame().Type);
    }

    [Fact]
    public void Connections_use_the_given_room_registry()
    {
        var rooms = CreateTestProbe();
        var manager = Sys.ActorOf(ConnectionManager.Props(rooms.Ref, ShippedSettings.Connections));
        var connection = Open(manager, new FakeClientSocket());

        connection.Tell(new AuthSucceeded("u1", null));
        connection.Tell(new SubscribeRoomMessage("r1"));

        Assert.Equal(new Subscribe("r1", connection, "u1"), rooms.ExpectMsg<Subscribe>());
    }

    [Fact]
    public void Count_follows_opened_and_stopped_connections()
    {
        var manager = Sys.ActorOf(ConnectionManager.Props(CreateTestProbe().Ref, ShippedSettings.Connections));
        Assert.Equal(0, ConnectionCount(manager));
        var first = Open(manager, new FakeClientSocket());
        Open(manager, new FakeClientSocket());
        Assert.Equal(2, ConnectionCount(manager));
        Watch(first);

        first.Tell(SocketClosed.Instance);

        ExpectTerminated(first);
        AwaitAssert(() => Assert.Equal(1, ConnectionCount(manager)), TimeSpan.FromSeconds(2), TimeSpan.FromMilliseconds(50));
    }

    [Fact]
    public void Connection_that_throws_is_stopped_and_its_socket_closed_with_1011()
    {
        var manager = Sys.ActorOf(ConnectionManager.Props(CreateTestProbe().Ref, ShippedSettings.Connections));
        var socket = new FakeClientSocket { ThrowOnSend = new InvalidOperationException("socket exploded") };
        var connection = Open(manager, socket);
        Watch(connection);

        connection.Tell(ClientMessageParser.Parse("""{"type":"ping"}"""u8.ToArray()));

        ExpectTerminated(connection);
        Assert.Equal(CloseCodes.InternalError, socket.AwaitClose().Code);
        AwaitAssert(() => Assert.Equal(0, ConnectionCount(manager)), TimeSpan.FromSeconds(2), TimeSpan.FromMilliseconds(50));
    }

    [Fact]
    public void Supervisor_strategy_stops_a_failed_connection()
    {
        var manager = ActorOfAsTestActorRef<ConnectionManager>(ConnectionManager.Props(CreateTestProbe().Ref, ShippedSettings.Connections));
        var strategy = (SupervisorStrategy)typeof(ConnectionManager)
            .GetMethod("SupervisorStrategy", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic)!
            .Invoke(manager.UnderlyingActor, null)!;

        Assert.IsType<OneForOneStrategy>(strategy);
        Assert.Equal(Directive.Stop, strategy.Decider.Decide(new InvalidOperationException("boom")));
        Assert.Equal(Directive.Stop, strategy.Decider.Decide(new Exception()));
    }
}
