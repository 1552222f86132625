using System.Text.Json;
using Akka.Actor;
using Akka.Event;
using Akka.TestKit;
using TradeRoom.Actors.Integration;
using TradeRoom.Actors.Rooms;
using TradeRoom.Contracts;
using TradeRoom.Protocol;
using Xunit.Abstractions;

using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Actors;

/// <summary>
/// The room's delivery guarantees, with TestProbes as subscribers: the state snapshot and epoch on subscribe,
/// private events delivered only to their owner's subscriptions, and resume from the bounded history.
/// The test actor is the publisher, so <see cref="EventPublished"/> answers come to it.
/// </summary>
public class RoomDeliverySpecs(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(ShippedSettings.ActorSystem, output: output)
{
    private const string Room = "bp-delivery";
    private static readonly TimeSpan Short = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan ShortIdle = TimeSpan.FromMilliseconds(300);

    private IActorRef NewRoom(RoomSettings? settings = null) =>
        RoomFronts.For(Sys, CreateTestProbe().ChildActorOf(RoomActor.Props(Room, settings ?? ShippedSettings.Rooms)));

    /// <summary>The event exactly as <see cref="IntegrationActor"/> would route it (validated with the default private types).</summary>
    private static RoutedEvent Routed(string type, object data)
    {
        var e = new PublishEvent(Room, type, JsonSerializer.SerializeToUtf8Bytes(data));
        Assert.Null(EventValidator.Validate(e, ShippedSettings.Rooms.PrivateEventTypes, out var routed));
        return routed;
    }

    private long Publish(IActorRef room, string type, object data)
    {
        room.Tell(Routed(type, data));
        var published = ExpectMsg<EventPublished>();
        Assert.Equal(Room, published.BullPenId);
        return published.Seq;
    }

    /// <summary>An order for <paramref name="userId"/>: private to that user.</summary>
    private long PublishPrivate(IActorRef room, string userId, int n = 0) =>
        Publish(room, "order_executed", new { userId, orderId = $"o-{n}" });

    private long PublishPublic(IActorRef room, int n = 0) => Publish(room, "ranking_changed", new { n });

    private static SubscribeAck Subscribe(IActorRef room, TestProbe probe, string userId, long? sinceSeq = null, string? epoch = null)
    {
        room.Tell(new Subscribe(Room, probe.Ref, userId, sinceSeq, epoch));
        var ack = probe.ExpectMsg<SubscribeAck>();
        Assert.Equal(Room, ack.BullPenId);
        return ack;
    }

    private TestProbe Subscriber(IActorRef room, string userId, out SubscribeAck ack)
    {
        var probe = CreateTestProbe();
        ack = Subscribe(room, probe, userId);
        return probe;
    }

    private TestProbe Subscriber(IActorRef room, string userId) => Subscriber(room, userId, out _);

    private static JsonElement StateOf(SubscribeAck ack)
    {
        using var document = JsonDocument.Parse(ack.State);
        return document.RootElement.Clone();
    }

    private static JsonElement Json(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }

    private static void AssertEvent(RoomEvent e, long seq, string type, string? visibleTo = null)
    {
        Assert.Equal((Room, seq, type, visibleTo), (e.BullPenId, e.Seq, e.Type, e.VisibleTo));
        using var frame = JsonDocument.Parse(e.Frame);
        Assert.Equal(seq, frame.RootElement.GetProperty("seq").GetInt64());
        Assert.Equal(type, frame.RootElement.GetProperty("type").GetString());
    }

    private static long[] Seqs(TestProbe probe, int count) =>
        Enumerable.Range(0, count).Select(_ => probe.ExpectMsg<RoomEvent>().Seq).ToArray();

    // ---------------------------------------------------------------- SubscribeAck: epoch, recovered, state

    [Fact]
    public void Ack_of_a_new_room_has_an_epoch_is_not_recovered_and_has_an_empty_state()
    {
        var room = NewRoom();

        Subscriber(room, "alice", out var ack);

        Assert.Equal(0, ack.Seq);
        Assert.False(ack.Recovered);
        Assert.Matches("^[0-9a-f]{16}$", ack.Epoch);
        var state = StateOf(ack);
        Assert.Equal(["leaderboard", "room", "members"], state.EnumerateObject().Select(p => p.Name));
        Assert.Equal(JsonValueKind.Null, state.GetProperty("leaderboard").ValueKind);
        Assert.Equal(JsonValueKind.Null, state.GetProperty("room").ValueKind);
        Assert.Equal(0, state.GetProperty("members").GetArrayLength());
    }

    [Fact]
    public void Ack_state_reflects_the_latest_leaderboard_the_room_status_and_the_members_after_events()
    {
        var room = NewRoom();
        Publish(room, "leaderboard_update", new { version = 1, top = new[] { "bob" } });
        Publish(room, "room_started", new { name = "Cup", status = "waiting" });
        Publish(room, "member_joined", new { userId = "alice" });
        Publish(room, "member_joined", new { userId = "bob" });
        Publish(room, "member_joined", new { userId = "carol" });
        Publish(room, "member_left", new { userId = "bob" });
        Publish(room, "snapshot_created", new { version = 2, top = new[] { "carol", "alice" } });
        PublishPrivate(room, "alice");
        Publish(room, "ranking_changed", new { version = 3 });

        Subscriber(room, "dave", out var ack);

        Assert.Equal(9, ack.Seq);
        Assert.False(ack.Recovered);
        var state = StateOf(ack);
        Assert.True(JsonElement.DeepEquals(Json("""{"version":2,"top":["carol","alice"]}"""), state.GetProperty("leaderboard")), state.ToString());
        Assert.True(JsonElement.DeepEquals(Json("""{"name":"Cup","status":"active"}"""), state.GetProperty("room")), state.ToString());
        Assert.Equal(["alice", "carol"], state.GetProperty("members").EnumerateArray().Select(m => m.GetString()));
    }

    [Fact]
    public void Ack_state_follows_room_ended_and_every_subscriber_of_one_incarnation_gets_the_same_epoch()
    {
        var room = NewRoom();
        Subscriber(room, "alice", out var first);
        Publish(room, "room_started", new { name = "Cup" });
        Publish(room, "room_ended", new { name = "Cup", status = "running", winner = "alice" });

        Subscriber(room, "bob", out var second);

        Assert.Equal(first.Epoch, second.Epoch);
        Assert.True(JsonElement.DeepEquals(Json("""{"name":"Cup","status":"ended","winner":"alice"}"""), StateOf(second).GetProperty("room")));
        Assert.Equal(JsonValueKind.Null, StateOf(first).GetProperty("room").ValueKind);
    }

    [Fact]
    public void A_new_room_incarnation_has_a_new_epoch()
    {
        Subscriber(NewRoom(), "alice", out var first);
        Subscriber(NewRoom(), "alice", out var second);

        Assert.NotEqual(first.Epoch, second.Epoch);
    }

    // ---------------------------------------------------------------- private and public events

    [Fact]
    public void Private_event_reaches_every_subscription_of_its_user_and_no_one_else()
    {
        var room = NewRoom();
        var alice1 = Subscriber(room, "alice");
        var alice2 = Subscriber(room, "alice");
        var bob = Subscriber(room, "bob");

        var privateSeq = PublishPrivate(room, "alice");
        var barrier = PublishPublic(room);

        foreach (var alice in new[] { alice1, alice2 })
        {
            AssertEvent(alice.ExpectMsg<RoomEvent>(), privateSeq, "order_executed", visibleTo: "alice");
            AssertEvent(alice.ExpectMsg<RoomEvent>(), barrier, "ranking_changed");
        }
        // Events from the room arrive in order, so bob's first event being the barrier means he never got the private one.
        AssertEvent(bob.ExpectMsg<RoomEvent>(), barrier, "ranking_changed");
        bob.ExpectNoMsg(Short);
        alice1.ExpectNoMsg(TimeSpan.Zero);
        alice2.ExpectNoMsg(TimeSpan.Zero);
    }

    [Fact]
    public void Private_event_for_a_user_with_no_subscription_is_numbered_but_goes_to_no_one()
    {
        var room = NewRoom();
        var alice = Subscriber(room, "alice");
        var bob = Subscriber(room, "bob");

        Assert.Equal(1, PublishPrivate(room, "zed"));
        Assert.Equal(2, PublishPublic(room));

        AssertEvent(alice.ExpectMsg<RoomEvent>(), 2, "ranking_changed");
        AssertEvent(bob.ExpectMsg<RoomEvent>(), 2, "ranking_changed");
        alice.ExpectNoMsg(Short);
        bob.ExpectNoMsg(TimeSpan.Zero);
    }

    [Fact]
    public void Public_event_reaches_every_subscriber_whatever_its_user()
    {
        var room = NewRoom();
        var probes = new[] { Subscriber(room, "alice"), Subscriber(room, "alice"), Subscriber(room, "bob"), Subscriber(room, "carol") };

        var seq = Publish(room, "member_joined", new { userId = "alice" });

        var received = probes.Select(p => p.ExpectMsg<RoomEvent>()).ToArray();
        Assert.All(received, e => AssertEvent(e, seq, "member_joined"));
        Assert.All(received, e => Assert.Same(received[0], e));
    }

    [Fact]
    public void Unsubscribed_user_no_longer_gets_its_private_events()
    {
        var room = NewRoom();
        var alice = Subscriber(room, "alice");
        var bob = Subscriber(room, "bob");
        room.Tell(new Unsubscribe(Room, alice.Ref));
        alice.ExpectMsg<UnsubscribeAck>();

        PublishPrivate(room, "alice");
        var barrier = PublishPublic(room);

        AssertEvent(bob.ExpectMsg<RoomEvent>(), barrier, "ranking_changed");
        alice.ExpectNoMsg(Short);
    }

    // ---------------------------------------------------------------- resume

    [Fact]
    public void Resume_with_matching_epoch_replays_exactly_the_missed_events_the_user_may_see_in_order_then_live_events()
    {
        var room = NewRoom();
        var before = Subscriber(room, "alice", out var first);
        var s1 = PublishPublic(room, 1);
        var s2 = PublishPrivate(room, "alice", 2);
        var s3 = PublishPrivate(room, "bob", 3);
        var s4 = PublishPublic(room, 4);
        var s5 = PublishPrivate(room, "alice", 5);
        var seen = Enumerable.Range(0, 4).Select(_ => before.ExpectMsg<RoomEvent>()).ToArray();
        Assert.Equal([s1, s2, s4, s5], seen.Select(e => e.Seq));
        room.Tell(new Unsubscribe(Room, before.Ref));
        before.ExpectMsg<UnsubscribeAck>();

        // Reconnected after seeing seq 1: the replay is what alice missed, skipping bob's order.
        var resumed = CreateTestProbe();
        var ack = Subscribe(room, resumed, "alice", sinceSeq: s1, epoch: first.Epoch);

        Assert.True(ack.Recovered);
        Assert.Equal(s5, ack.Seq);
        Assert.Equal(first.Epoch, ack.Epoch);
        var replayed = Enumerable.Range(0, 3).Select(_ => resumed.ExpectMsg<RoomEvent>()).ToArray();
        Assert.Equal([s2, s4, s5], replayed.Select(e => e.Seq));
        Assert.Equal(seen.Skip(1).Select(e => e.Frame), replayed.Select(e => e.Frame));
        Assert.All(replayed, e => Assert.True(e.IsVisibleTo("alice")));

        var live = PublishPublic(room, 6);
        AssertEvent(resumed.ExpectMsg<RoomEvent>(), live, "ranking_changed");
        resumed.ExpectNoMsg(Short);
    }

    [Fact]
    public void Resume_replays_another_users_private_events_only_to_that_user()
    {
        var room = NewRoom();
        Subscriber(room, "observer", out var first);
        PublishPrivate(room, "alice");
        var bobsOrder = PublishPrivate(room, "bob");
        var shared = PublishPublic(room);

        var bob = CreateTestProbe();
        Assert.True(Subscribe(room, bob, "bob", sinceSeq: 0, epoch: first.Epoch).Recovered);

        Assert.Equal([bobsOrder, shared], Seqs(bob, 2));
        bob.ExpectNoMsg(Short);
    }

    [Fact]
    public void Ack_and_replay_come_in_one_turn_so_an_event_published_right_after_the_subscribe_follows_the_replay()
    {
        var room = NewRoom();
        Subscriber(room, "observer", out var first);
        PublishPublic(room, 1);
        PublishPublic(room, 2);
        PublishPublic(room, 3);
        var resumed = CreateTestProbe();

        room.Tell(new Subscribe(Room, resumed.Ref, "alice", 1, first.Epoch));
        room.Tell(Routed("leaderboard_update", new { n = 4 }));

        // The subscribe goes through this node's relay, so the publish may reach the room first: either way the
        // replay and the live events after the ack are exactly 2, 3, 4.
        var ack = resumed.ExpectMsg<SubscribeAck>();
        Assert.True(ack.Recovered);
        Assert.InRange(ack.Seq, 3, 4);
        Assert.Equal([2L, 3L, 4L], Seqs(resumed, 3));
        resumed.ExpectNoMsg(Short);
    }

    [Fact]
    public void Resume_from_the_head_is_recovered_with_nothing_to_replay()
    {
        var room = NewRoom();
        Subscriber(room, "observer", out var first);
        var head = PublishPublic(room);
        var resumed = CreateTestProbe();

        var ack = Subscribe(room, resumed, "alice", sinceSeq: head, epoch: first.Epoch);

        Assert.True(ack.Recovered);
        Assert.Equal(head, ack.Seq);
        var live = PublishPublic(room);
        Assert.Equal(live, resumed.ExpectMsg<RoomEvent>().Seq);
    }

    [Fact]
    public void Resume_from_before_the_oldest_kept_event_is_not_recovered_and_replays_nothing()
    {
        var room = NewRoom(ShippedSettings.Rooms with { HistorySize = 3 });
        Subscriber(room, "observer", out var first);
        for (var n = 1; n <= 5; n++)
            PublishPublic(room, n);
        var resumed = CreateTestProbe();

        // History holds 3, 4 and 5: event 2, the one after seq 1, is gone.
        var ack = Subscribe(room, resumed, "alice", sinceSeq: 1, epoch: first.Epoch);

        Assert.False(ack.Recovered);
        Assert.Equal(5, ack.Seq);
        Assert.Equal(first.Epoch, ack.Epoch);
        var live = PublishPublic(room, 6);
        Assert.Equal(live, resumed.ExpectMsg<RoomEvent>().Seq);
        resumed.ExpectNoMsg(Short);
    }

    [Fact]
    public void Resume_right_after_the_oldest_kept_event_is_still_recovered()
    {
        var room = NewRoom(ShippedSettings.Rooms with { HistorySize = 3 });
        Subscriber(room, "observer", out var first);
        for (var n = 1; n <= 5; n++)
            PublishPublic(room, n);
        var resumed = CreateTestProbe();

        var ack = Subscribe(room, resumed, "alice", sinceSeq: 2, epoch: first.Epoch);

        Assert.True(ack.Recovered);
        Assert.Equal([3L, 4L, 5L], Seqs(resumed, 3));
        resumed.ExpectNoMsg(Short);
    }

    [Fact]
    public void Resume_from_a_seq_after_the_head_is_not_recovered()
    {
        var room = NewRoom();
        Subscriber(room, "observer", out var first);
        PublishPublic(room);
        var resumed = CreateTestProbe();

        var ack = Subscribe(room, resumed, "alice", sinceSeq: 7, epoch: first.Epoch);

        Assert.False(ack.Recovered);
        Assert.Equal(1, ack.Seq);
        resumed.ExpectNoMsg(Short);
    }

    [Theory]
    [InlineData("0000000000000000")]
    [InlineData("")]
    [InlineData(null)]
    public void Resume_with_another_or_no_epoch_is_not_recovered_and_replays_nothing(string? epoch)
    {
        var room = NewRoom();
        Subscriber(room, "observer", out var first);
        Assert.NotEqual(epoch, first.Epoch);
        PublishPublic(room, 1);
        PublishPublic(room, 2);
        var resumed = CreateTestProbe();

        var ack = Subscribe(room, resumed, "alice", sinceSeq: 0, epoch: epoch);

        Assert.False(ack.Recovered);
        Assert.Equal(2, ack.Seq);
        Assert.Equal(first.Epoch, ack.Epoch);
        var live = PublishPublic(room, 3);
        Assert.Equal(live, resumed.ExpectMsg<RoomEvent>().Seq);
        resumed.ExpectNoMsg(Short);
    }

    [Fact]
    public void Resubscribing_with_sinceSeq_replays_and_does_not_double_later_live_events()
    {
        var room = NewRoom();
        var alice = Subscriber(room, "alice", out var first);
        PublishPublic(room, 1);
        PublishPrivate(room, "alice", 2);
        PublishPublic(room, 3);
        Assert.Equal([1L, 2L, 3L], Seqs(alice, 3));

        var ack = Subscribe(room, alice, "alice", sinceSeq: 1, epoch: first.Epoch);

        Assert.True(ack.Recovered);
        Assert.Equal(3, ack.Seq);
        Assert.Equal([2L, 3L], Seqs(alice, 2));
        var livePublic = PublishPublic(room, 4);
        var livePrivate = PublishPrivate(room, "alice", 5);
        Assert.Equal([livePublic, livePrivate], Seqs(alice, 2));
        alice.ExpectNoMsg(Short);
    }

    // ---------------------------------------------------------------- dead subscribers

    [Fact]
    public void Dead_subscriber_leaves_the_per_user_index_so_its_private_events_go_nowhere_and_the_room_can_passivate()
    {
        var parent = CreateTestProbe();
        parent.IgnoreMessages<RoomReady>();
        var room = RoomFronts.For(Sys, parent.ChildActorOf(RoomActor.Props(Room, ShippedSettings.Rooms with { IdleTimeout = ShortIdle })));
        var alice = LiveConnection.Subscribed(this, room, Room, "alice");
        alice.Close(this);
        var deadLetters = CreateTestProbe();
        Sys.EventStream.Subscribe(deadLetters.Ref, typeof(DeadLetter));

        // The relay may hear of it a moment after the test sees it stop; from then on alice's orders are sent to no one.
        AwaitAssert(() =>
        {
            PublishPrivate(room, "alice");
            deadLetters.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
        }, TimeSpan.FromSeconds(3), TimeSpan.FromMilliseconds(50));

        Assert.Equal(Room, parent.ExpectMsg<RoomIdle>(TimeSpan.FromSeconds(5)).BullPenId);
    }

    [Fact]
    public void After_one_connection_of_a_user_dies_the_other_still_gets_each_private_event_once()
    {
        var room = NewRoom();
        var dying = LiveConnection.Subscribed(this, room, Room, "alice");
        var surviving = Subscriber(room, "alice");
        dying.Close(this);
        var deadLetters = CreateTestProbe();
        Sys.EventStream.Subscribe(deadLetters.Ref, typeof(DeadLetter));

        AwaitAssert(() =>
        {
            var seq = PublishPrivate(room, "alice");
            Assert.Equal(seq, surviving.ExpectMsg<RoomEvent>().Seq);
            deadLetters.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
        }, TimeSpan.FromSeconds(3), TimeSpan.FromMilliseconds(50));

        var last = PublishPrivate(room, "alice");
        Assert.Equal(last, surviving.ExpectMsg<RoomEvent>().Seq);
        surviving.ExpectNoMsg(Short);
    }

    // ---------------------------------------------------------------- state events the room cannot fold

    [Fact]
    public void Room_started_with_a_duplicate_key_is_either_rejected_or_published_and_delivered()
    {
        var registry = RoomFronts.Registry(Sys, ShippedSettings.Rooms);
        var integration = Sys.ActorOf(IntegrationActor.Props(registry, ShippedSettings.Rooms.PrivateEventTypes));
        var subscriber = CreateTestProbe();
        registry.Tell(new Subscribe(Room, subscriber.Ref, "alice"));
        var ack = subscriber.ExpectMsg<SubscribeAck>();

        integration.Tell(new PublishEvent(Room, "room_started", """{"name":"Cup","name":"Cup 2"}"""u8.ToArray()));

        var result = ExpectMsg<PublishResult>();
        if (result is EventPublished published)
        {
            Assert.Equal(published.Seq, subscriber.ExpectMsg<RoomEvent>().Seq);
        }
        else
        {
            Assert.Equal(ErrorCodes.InvalidMessage, Assert.IsType<PublishRejected>(result).Code);
            // Nothing was numbered: the next event is seq 1 and a resume from 0 replays only it.
            integration.Tell(new PublishEvent(Room, "ranking_changed", "{}"u8.ToArray()));
            Assert.Equal(1, ExpectMsg<EventPublished>().Seq);
            var resumed = CreateTestProbe();
            Assert.True(Subscribe(registry, resumed, "alice", 0, ack.Epoch).Recovered);
            Assert.Equal([1L], Seqs(resumed, 1));
            resumed.ExpectNoMsg(Short);
        }
    }
}
