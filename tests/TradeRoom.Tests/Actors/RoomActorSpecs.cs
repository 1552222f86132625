using System.Text;
using System.Text.Json;
using Akka.Actor;
using Akka.TestKit;
using TradeRoom.Actors.Rooms;
using TradeRoom.Contracts;
using Xunit.Abstractions;

using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Actors;

public class RoomActorSpecs(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(ShippedSettings.ActorSystem, output: output)
{
    private const string Room = "bp-1";
    private static readonly TimeSpan LongIdle = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan ShortIdle = TimeSpan.FromMilliseconds(300);
    private static readonly TimeSpan Short = TimeSpan.FromMilliseconds(200);
    /// <summary>Generous: the idle timer is 300 ms, but a loaded machine (parallel test classes) can delay it.</summary>
    private static readonly TimeSpan PassivateWithin = TimeSpan.FromSeconds(5);

    private static byte[] Data(string json) => Encoding.UTF8.GetBytes(json);

    /// <summary>An event every subscriber may see (leaderboard_update is not in the private set).</summary>
    private static RoutedEvent Public(string json = "{}", string type = "leaderboard_update") => new(Room, type, Data(json), null, false);

    /// <summary>A room whose parent is <paramref name="parent"/>, so RoomIdle / PassivationCancelled land there.</summary>
    private IActorRef RoomUnder(TestProbe parent, TimeSpan idle)
    {
        parent.IgnoreMessages<RoomReady>(); // the registry's cue that the room has recovered: no registry here
        return RoomFronts.For(Sys, parent.ChildActorOf(RoomActor.Props(Room, ShippedSettings.Rooms with { IdleTimeout = idle })));
    }

    private IActorRef NewRoom(TimeSpan? idle = null) => RoomUnder(CreateTestProbe(), idle ?? LongIdle);

    private TestProbe Subscribed(IActorRef room, string userId = "u1")
    {
        var probe = CreateTestProbe();
        room.Tell(new Subscribe(Room, probe.Ref, userId));
        probe.ExpectMsg<SubscribeAck>();
        return probe;
    }

    [Fact]
    public void Subscribe_is_acknowledged_with_seq_zero_in_a_new_room()
    {
        var room = NewRoom();
        var probe = CreateTestProbe();

        room.Tell(new Subscribe(Room, probe.Ref, "u1"));

        var ack = probe.ExpectMsg<SubscribeAck>();
        Assert.Equal(Room, ack.BullPenId);
        Assert.Equal(0, ack.Seq);
        Assert.False(ack.Recovered);
        Assert.False(string.IsNullOrEmpty(ack.Epoch));
        Assert.Equal("""{"leaderboard":null,"room":null,"members":[]}""", Encoding.UTF8.GetString(ack.State));
    }

    [Fact]
    public void Subscribe_is_acknowledged_with_the_seq_of_the_last_event()
    {
        var room = NewRoom();
        for (var i = 0; i < 3; i++)
        {
            room.Tell(Public());
            ExpectMsg<EventPublished>();
        }
        var probe = CreateTestProbe();

        room.Tell(new Subscribe(Room, probe.Ref, "u1"));

        Assert.Equal(3, probe.ExpectMsg<SubscribeAck>().Seq);
    }

    [Fact]
    public void Events_get_consecutive_seqs_and_the_publisher_is_told_each_one()
    {
        var room = NewRoom();

        for (var expected = 1; expected <= 3; expected++)
        {
            room.Tell(Public($$"""{"n":{{expected}}}"""));
            Assert.Equal(new EventPublished(Room, expected), ExpectMsg<EventPublished>());
        }
    }

    [Fact]
    public void Subscribing_twice_delivers_each_event_once()
    {
        var room = NewRoom();
        var probe = Subscribed(room);
        room.Tell(new Subscribe(Room, probe.Ref, "u1"));
        Assert.Equal(0, probe.ExpectMsg<SubscribeAck>().Seq);

        room.Tell(Public());

        Assert.Equal(1, probe.ExpectMsg<RoomEvent>().Seq);
        probe.ExpectNoMsg(Short);
    }

    [Fact]
    public void Every_subscriber_receives_the_same_event_instance_and_bytes()
    {
        var room = NewRoom();
        var first = Subscribed(room, "u1");
        var second = Subscribed(room, "u2");

        room.Tell(Public("""{"rank":1}"""));

        var a = first.ExpectMsg<RoomEvent>();
        var b = second.ExpectMsg<RoomEvent>();
        Assert.Same(a, b);
        Assert.Same(a.Frame, b.Frame);
        Assert.Equal(new RoomEvent(Room, 1, "leaderboard_update", null, a.Frame, a.PublishedAt), a);
    }

    [Fact]
    public void Event_frame_is_type_bullPenId_seq_and_the_published_data()
    {
        var room = NewRoom();
        var probe = Subscribed(room, "u1");
        const string data = """{"orderId":"o-1","userId":"u1","qty":3,"nested":{"ok":true,"list":[1,"two",null]}}""";

        room.Tell(new RoutedEvent(Room, "order_executed", Data(data), "u1", IsPrivate: true));

        var e = probe.ExpectMsg<RoomEvent>();
        Assert.Equal("u1", e.VisibleTo);
        var frame = e.Frame;
        using var document = JsonDocument.Parse(frame);
        var root = document.RootElement;
        Assert.Equal(["type", "bullPenId", "seq", "data"], root.EnumerateObject().Select(p => p.Name));
        Assert.Equal("order_executed", root.GetProperty("type").GetString());
        Assert.Equal(Room, root.GetProperty("bullPenId").GetString());
        Assert.Equal(1, root.GetProperty("seq").GetInt64());
        Assert.Equal(data, root.GetProperty("data").GetRawText());
    }

    [Fact]
    public void Unsubscribe_stops_delivery_and_is_acknowledged()
    {
        var room = NewRoom();
        var leaving = Subscribed(room, "u1");
        var staying = Subscribed(room, "u2");

        room.Tell(new Unsubscribe(Room, leaving.Ref));
        Assert.Equal(new UnsubscribeAck(Room), leaving.ExpectMsg<UnsubscribeAck>());
        room.Tell(Public());

        staying.ExpectMsg<RoomEvent>();
        leaving.ExpectNoMsg(Short);
    }

    [Fact]
    public void Unsubscribe_of_a_stranger_is_still_acknowledged()
    {
        var room = NewRoom();
        var stranger = CreateTestProbe();

        room.Tell(new Unsubscribe(Room, stranger.Ref));

        stranger.ExpectMsg<UnsubscribeAck>();
    }

    [Fact]
    public void Idle_room_without_subscribers_asks_its_parent_to_passivate()
    {
        var parent = CreateTestProbe();
        RoomUnder(parent, ShortIdle);

        Assert.Equal(Room, parent.ExpectMsg<RoomIdle>(PassivateWithin).BullPenId);
    }

    [Fact]
    public void Idle_room_asks_to_passivate_only_once_while_nothing_happens()
    {
        var parent = CreateTestProbe();
        RoomUnder(parent, ShortIdle);
        parent.ExpectMsg<RoomIdle>(PassivateWithin);

        parent.ExpectNoMsg(TimeSpan.FromMilliseconds(700));
    }

    [Fact]
    public void Idle_room_with_a_subscriber_does_not_passivate()
    {
        var parent = CreateTestProbe();
        var room = RoomUnder(parent, ShortIdle);
        Subscribed(room);

        parent.ExpectNoMsg(TimeSpan.FromMilliseconds(800));
    }

    [Fact]
    public void Dead_subscriber_is_dropped_so_the_room_can_passivate()
    {
        var parent = CreateTestProbe();
        var room = RoomUnder(parent, ShortIdle);
        var subscriber = LiveConnection.Subscribed(this, room, Room, "u1");
        parent.ExpectNoMsg(TimeSpan.FromMilliseconds(500));

        subscriber.Close(this); // without unsubscribing

        Assert.Equal(Room, parent.ExpectMsg<RoomIdle>(PassivateWithin).BullPenId);
    }

    [Fact]
    public void Dead_subscriber_gets_no_more_events()
    {
        var room = NewRoom();
        var dead = LiveConnection.Subscribed(this, room, Room, "u1");
        var alive = Subscribed(room, "u2");
        dead.Close(this);
        var deadLetters = CreateTestProbe();
        Sys.EventStream.Subscribe(deadLetters.Ref, typeof(Akka.Event.DeadLetter));

        // The relay may hear of it a moment after the test sees it stop; once it has, nothing goes to the dead subscriber.
        AwaitAssert(() =>
        {
            room.Tell(Public());
            alive.ExpectMsg<RoomEvent>();
            ExpectMsg<EventPublished>();
            deadLetters.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
        }, TimeSpan.FromSeconds(2), TimeSpan.FromMilliseconds(50));
    }

    [Fact]
    public void StopIfIdle_stops_a_room_that_stayed_idle()
    {
        var parent = CreateTestProbe();
        var room = RoomUnder(parent, ShortIdle);
        parent.ExpectMsg<RoomIdle>(PassivateWithin);
        Watch(room);

        room.Tell(StopIfIdle.Instance, parent.Ref);

        ExpectTerminated(room);
        parent.ExpectNoMsg(Short);
    }

    [Fact]
    public void StopIfIdle_is_cancelled_when_a_subscriber_arrived_after_the_passivate()
    {
        var parent = CreateTestProbe();
        var room = RoomUnder(parent, ShortIdle);
        parent.ExpectMsg<RoomIdle>(PassivateWithin);
        var subscriber = Subscribed(room);
        Watch(room);

        room.Tell(StopIfIdle.Instance, parent.Ref);

        Assert.Equal(new PassivationCancelled(Room), parent.ExpectMsg<PassivationCancelled>());
        ExpectNoMsg(Short);
        room.Tell(Public());
        Assert.Equal(1, subscriber.ExpectMsg<RoomEvent>().Seq);
    }

    [Fact]
    public void StopIfIdle_is_cancelled_when_an_event_arrived_after_the_passivate()
    {
        var parent = CreateTestProbe();
        var room = RoomUnder(parent, ShortIdle);
        parent.ExpectMsg<RoomIdle>(PassivateWithin);
        room.Tell(Public());
        ExpectMsg<EventPublished>();
        Watch(room);

        room.Tell(StopIfIdle.Instance, parent.Ref);

        parent.ExpectMsg<PassivationCancelled>();
        ExpectNoMsg(Short);
    }

    [Fact]
    public void Room_asks_to_passivate_again_after_a_cancelled_passivation_goes_idle()
    {
        var parent = CreateTestProbe();
        var room = RoomUnder(parent, ShortIdle);
        parent.ExpectMsg<RoomIdle>(PassivateWithin);
        room.Tell(Public());
        ExpectMsg<EventPublished>();
        room.Tell(StopIfIdle.Instance, parent.Ref);
        parent.ExpectMsg<PassivationCancelled>();

        parent.ExpectMsg<RoomIdle>(PassivateWithin);
    }
}
