using Akka.Actor;
using Akka.Event;
using TradeRoom.Actors.Connections;
using TradeRoom.Actors.Rooms;
using TradeRoom.Contracts;
using TradeRoom.Protocol;
using TradeRoom.Tests.Support;
using Xunit.Abstractions;

namespace TradeRoom.Tests.Actors;

/// <summary>
/// Nobody watches a connection and a connection watches nobody: what each side does when it stops is what tells the
/// other. A relay that stops (its parent failed) tells its connections, which tell their clients <c>room_unavailable</c>;
/// a connection that stops before the room answered its subscribe is not left in the room; one that fails gives
/// its place under the per-user limit back. Real connection actors, relays and rooms.
/// </summary>
public class ConnectionEndSpecs(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(ShippedSettings.ActorSystem, output: output)
{
    private const string Room = "bp-end";
    private static readonly TimeSpan Short = TimeSpan.FromMilliseconds(200);

    /// <summary>Restarts its one child on any failure, as the user guardian restarts <c>/user/relays</c> after an exception.</summary>
    private sealed class RestartingParent : ReceiveActor
    {
        public RestartingParent(Props child, IActorRef reportTo)
        {
            reportTo.Tell(Context.ActorOf(child, "relays"));
            ReceiveAny(_ => { });
        }

        protected override SupervisorStrategy SupervisorStrategy() => new OneForOneStrategy(_ => Directive.Restart);
    }

    private long Publish(IActorRef room)
    {
        room.Tell(new RoutedEvent(Room, "leaderboard_update", "{}"u8.ToArray(), null, false));
        return ExpectMsg<EventPublished>().Seq;
    }

    [Fact]
    public void Relays_restarted_after_a_failure_tell_their_connections_room_unavailable_and_a_resubscribe_resumes()
    {
        var room = CreateTestProbe().ChildActorOf(RoomActor.Props(Room, ShippedSettings.Rooms));
        var report = CreateTestProbe();
        Sys.ActorOf(Props.Create(() => new RestartingParent(RoomRelays.Props(room, ShippedSettings.Rooms), report.Ref)));
        var relays = report.ExpectMsg<IActorRef>();
        var connection = LiveConnection.Subscribed(this, relays, Room, "u1");
        var first = Publish(room);
        Assert.Equal(first, connection.Socket.NextFrame("leaderboard_update").Seq);
        var epoch = connection.Socket.Sent.Select(FakeClientSocket.Parse).Single(f => f.Type == "subscribed").Data.GetProperty("epoch").GetString();

        relays.Tell(Kill.Instance); // its parent restarts it, which stops every relay under it

        var error = connection.Socket.NextFrame("error");
        Assert.Equal(ErrorCodes.RoomUnavailable, error.Code);
        Assert.Equal(Room, error.Data.GetProperty("bullPenId").GetString());

        // The room is no longer followed, and the client resumes without a gap by subscribing again.
        var missed = Publish(room);
        connection.Actor.Tell(new SubscribeRoomMessage(Room, first, epoch));
        var subscribed = connection.Socket.NextFrame("subscribed");
        Assert.True(subscribed.Data.GetProperty("recovered").GetBoolean());
        Assert.Equal(missed, connection.Socket.NextFrame("leaderboard_update").Seq);
        var live = Publish(room);
        Assert.Equal(live, connection.Socket.NextFrame("leaderboard_update").Seq);
        connection.Socket.ExpectNoFrame(Short);
    }

    [Fact]
    public void Connection_that_stops_before_the_room_answers_its_subscribe_is_taken_out_of_the_room_and_gets_nothing()
    {
        var room = CreateTestProbe();
        var relays = Sys.ActorOf(RoomRelays.Props(room.Ref, ShippedSettings.Rooms));
        var ack = new SubscribeAck(Room, 0, "e0", false, "{}"u8.ToArray());
        // One connection that stays, so the relay stays too.
        var staying = LiveConnection.Authenticated(this, relays, "u1");
        staying.Actor.Tell(new SubscribeRoomMessage(Room));
        var asked = room.ExpectMsg<RelaySubscribe>();
        asked.Relay.Tell(new RelaySubscribed(staying.Actor, ack, []), room.Ref);
        staying.Socket.NextFrame("subscribed");
        var leaving = LiveConnection.Authenticated(this, relays, "u2");
        leaving.Actor.Tell(new SubscribeRoomMessage(Room));
        var unanswered = room.ExpectMsg<RelaySubscribe>();
        Assert.Equal(leaving.Actor, unanswered.Connection);

        leaving.Close(this);
        // Everything the connection told the relays before it stopped has reached the relay once this is answered.
        var barrier = CreateTestProbe();
        relays.Tell(new Unsubscribe(Room, barrier.Ref));
        barrier.ExpectMsg<UnsubscribeAck>();
        var deadLetters = CreateTestProbe();
        Sys.EventStream.Subscribe(deadLetters.Ref, typeof(DeadLetter));
        // The room answers the subscribe it had taken (it added the connection): the relay tells it to forget it.
        unanswered.Relay.Tell(new RelaySubscribed(leaving.Actor, ack, []), room.Ref);

        Assert.Equal(new RelayUnsubscribe(Room, leaving.Actor), room.ExpectMsg<RelayUnsubscribe>());
        deadLetters.ExpectNoMsg(Short); // nothing was handed to the stopped connection
    }

    [Fact]
    public void Connection_that_fails_gives_its_place_under_the_per_user_limit_back()
    {
        var manager = Sys.ActorOf(ConnectionManager.Props(CreateTestProbe().Ref, ShippedSettings.Connections, maxConnectionsPerUser: 1));
        var socket = new FakeClientSocket();
        manager.Tell(new OpenConnection(socket));
        var failing = ExpectMsg<IActorRef>();
        manager.Tell(new OpenConnection(new FakeClientSocket()));
        var waiting = ExpectMsg<IActorRef>();
        manager.Tell(new AdmitUser("u1", failing));
        Assert.True(ExpectMsg<UserAdmission>().Admitted);
        manager.Tell(new AdmitUser("u1", waiting));
        Assert.False(ExpectMsg<UserAdmission>().Admitted);

        socket.ThrowOnSend = new InvalidOperationException("socket exploded");
        Watch(failing);
        failing.Tell(new PingMessage(null)); // its answer throws: the manager stops it
        ExpectTerminated(failing);
        Assert.Equal(CloseCodes.InternalError, socket.AwaitClose().Code);

        AwaitAssert(() =>
        {
            manager.Tell(new AdmitUser("u1", waiting));
            Assert.True(ExpectMsg<UserAdmission>().Admitted);
        }, TimeSpan.FromSeconds(3), TimeSpan.FromMilliseconds(20));
        manager.Tell(GetConnectionCount.Instance);
        Assert.Equal(1, ExpectMsg<ConnectionCount>().Connections);
    }
}
