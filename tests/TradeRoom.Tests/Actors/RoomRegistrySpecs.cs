using System.Text;
using Akka.Actor;
using Akka.TestKit;
using TradeRoom.Actors.Rooms;
using TradeRoom.Contracts;
using Xunit.Abstractions;

using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Actors;

public class RoomRegistrySpecs(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(ShippedSettings.ActorSystem, output: output)
{
    private static readonly TimeSpan LongIdle = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan ShortIdle = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan Short = TimeSpan.FromMilliseconds(200);

    private static RoomSettings Settings(TimeSpan idle) => ShippedSettings.Rooms with { IdleTimeout = idle };

    /// <summary>A public event (ranking_changed is not in the private set), so every subscriber gets it.</summary>
    private static RoutedEvent Event(string room, string json = "{}") => new(room, "ranking_changed", Encoding.UTF8.GetBytes(json), null, false);

    private int RoomCount(IActorRef registry)
    {
        registry.Tell(GetRoomCount.Instance);
        return ExpectMsg<RoomCount>().Rooms;
    }

    private long Publish(IActorRef registry, string room)
    {
        registry.Tell(Event(room));
        var published = ExpectMsg<EventPublished>();
        Assert.Equal(room, published.BullPenId);
        return published.Seq;
    }

    private TestProbe Subscribed(IActorRef registry, string room)
    {
        var probe = CreateTestProbe();
        registry.Tell(new Subscribe(room, probe.Ref, "u1"));
        Assert.Equal(room, probe.ExpectMsg<SubscribeAck>().BullPenId);
        return probe;
    }

    [Fact]
    public void A_new_registry_has_no_rooms()
    {
        var registry = RoomFronts.Registry(Sys, Settings(LongIdle));

        Assert.Equal(0, RoomCount(registry));
    }

    [Fact]
    public void First_subscribe_creates_the_room()
    {
        var registry = RoomFronts.Registry(Sys, Settings(LongIdle));
        var probe = CreateTestProbe();

        registry.Tell(new Subscribe("a", probe.Ref, "u1"));

        var ack = probe.ExpectMsg<SubscribeAck>();
        Assert.Equal(("a", 0L, false), (ack.BullPenId, ack.Seq, ack.Recovered));
        Assert.Equal(1, RoomCount(registry));
    }

    [Fact]
    public void First_event_creates_the_room_and_gets_seq_one()
    {
        var registry = RoomFronts.Registry(Sys, Settings(LongIdle));

        Assert.Equal(1, Publish(registry, "a"));
        Assert.Equal(1, RoomCount(registry));
    }

    [Fact]
    public void Rooms_count_their_seqs_independently()
    {
        var registry = RoomFronts.Registry(Sys, Settings(LongIdle));

        Assert.Equal(1, Publish(registry, "a"));
        Assert.Equal(2, Publish(registry, "a"));
        Assert.Equal(1, Publish(registry, "b"));
        Assert.Equal(3, Publish(registry, "a"));
        Assert.Equal(2, Publish(registry, "b"));
        Assert.Equal(2, RoomCount(registry));
    }

    [Fact]
    public void Events_reach_only_the_subscribers_of_their_room()
    {
        var registry = RoomFronts.Registry(Sys, Settings(LongIdle));
        var inA = Subscribed(registry, "a");
        var inB = Subscribed(registry, "b");

        Publish(registry, "a");

        Assert.Equal("a", inA.ExpectMsg<RoomEvent>().BullPenId);
        inB.ExpectNoMsg(Short);
    }

    [Theory]
    [InlineData("with space")]
    [InlineData("slash/and?query#frag")]
    [InlineData("ünïcødé-€")]
    [InlineData("$dollar")]
    [InlineData("%41")]
    [InlineData("12345")]
    public void Ids_that_are_not_plain_actor_names_still_get_their_own_room(string id)
    {
        var registry = RoomFronts.Registry(Sys, Settings(LongIdle));
        var probe = Subscribed(registry, id);

        Assert.Equal(1, Publish(registry, id));

        Assert.Equal(id, probe.ExpectMsg<RoomEvent>().BullPenId);
        Assert.Equal(1, Publish(registry, "A"));
        Assert.Equal(2, RoomCount(registry));
    }

    [Fact]
    public void Ids_that_escape_alike_are_still_different_rooms()
    {
        var registry = RoomFronts.Registry(Sys, Settings(LongIdle));

        Assert.Equal(1, Publish(registry, "a b"));
        Assert.Equal(1, Publish(registry, "a%20b"));
        Assert.Equal(2, RoomCount(registry));
    }

    [Fact]
    public void Unsubscribe_from_an_unknown_room_is_acknowledged_without_creating_it()
    {
        var registry = RoomFronts.Registry(Sys, Settings(LongIdle));
        var probe = CreateTestProbe();

        registry.Tell(new Unsubscribe("nowhere", probe.Ref));

        Assert.Equal(new UnsubscribeAck("nowhere"), probe.ExpectMsg<UnsubscribeAck>());
        Assert.Equal(0, RoomCount(registry));
    }

    [Fact]
    public void Unsubscribe_through_the_registry_stops_delivery()
    {
        var registry = RoomFronts.Registry(Sys, Settings(LongIdle));
        var probe = Subscribed(registry, "a");

        registry.Tell(new Unsubscribe("a", probe.Ref));
        probe.ExpectMsg<UnsubscribeAck>();
        Publish(registry, "a");

        probe.ExpectNoMsg(Short);
    }

    [Fact]
    public void Idle_room_without_subscribers_is_stopped_and_a_later_event_starts_it_afresh()
    {
        var registry = RoomFronts.Registry(Sys, Settings(ShortIdle));
        Assert.Equal(1, Publish(registry, "a"));
        Assert.Equal(2, Publish(registry, "a"));
        Assert.Equal(1, RoomCount(registry));

        AwaitAssert(() => Assert.Equal(0, RoomCount(registry)), TimeSpan.FromSeconds(3), TimeSpan.FromMilliseconds(100));

        Assert.Equal(1, Publish(registry, "a"));
        Assert.Equal(1, RoomCount(registry));
    }

    [Fact]
    public void Room_restarted_after_idling_has_a_new_epoch_so_an_old_position_is_not_recovered()
    {
        var registry = RoomFronts.Registry(Sys, Settings(ShortIdle));
        var first = CreateTestProbe();
        registry.Tell(new Subscribe("a", first.Ref, "u1"));
        var before = first.ExpectMsg<SubscribeAck>();
        Assert.Equal(1, Publish(registry, "a"));
        first.ExpectMsg<RoomEvent>();
        registry.Tell(new Unsubscribe("a", first.Ref));
        first.ExpectMsg<UnsubscribeAck>();
        AwaitAssert(() => Assert.Equal(0, RoomCount(registry)), TimeSpan.FromSeconds(5), TimeSpan.FromMilliseconds(100));

        var resumed = CreateTestProbe();
        registry.Tell(new Subscribe("a", resumed.Ref, "u1", SinceSeq: 1, Epoch: before.Epoch));

        var after = resumed.ExpectMsg<SubscribeAck>();
        Assert.NotEqual(before.Epoch, after.Epoch);
        Assert.False(after.Recovered);
        Assert.Equal(0, after.Seq);
        resumed.ExpectNoMsg(Short);
    }

    [Fact]
    public void Idle_room_with_a_subscriber_keeps_running()
    {
        var registry = RoomFronts.Registry(Sys, Settings(ShortIdle));
        var probe = Subscribed(registry, "a");

        ExpectNoMsg(TimeSpan.FromMilliseconds(1200));

        Assert.Equal(1, RoomCount(registry));
        Assert.Equal(1, Publish(registry, "a"));
        Assert.Equal(1, probe.ExpectMsg<RoomEvent>().Seq);
    }

    [Fact]
    public void Room_whose_only_subscriber_died_is_stopped_after_the_idle_time()
    {
        var registry = RoomFronts.Registry(Sys, Settings(ShortIdle));
        var connection = LiveConnection.Subscribed(this, registry, "a", "u1");

        connection.Close(this); // without unsubscribing

        AwaitAssert(() => Assert.Equal(0, RoomCount(registry)), TimeSpan.FromSeconds(3), TimeSpan.FromMilliseconds(100));
    }

    [Fact]
    public void Room_that_throws_is_resumed_with_its_subscribers_and_seq()
    {
        // A RoutedEvent without data (never built by IntegrationActor, which validates first) makes the room throw
        // (ArgumentException from Utf8JsonWriter.WriteRawValue) while building the frame; RoomRegistry's strategy
        // resumes it rather than restarting it, so subscribers and seq survive.
        var registry = RoomFronts.Registry(Sys, Settings(LongIdle));
        var probe = Subscribed(registry, "a");
        Assert.Equal(1, Publish(registry, "a"));
        probe.ExpectMsg<RoomEvent>();

        EventFilter.Exception<ArgumentException>().ExpectOne(() => registry.Tell(new RoutedEvent("a", "ranking_changed", null!, null, false)));
        ExpectNoMsg(Short);

        var seq = Publish(registry, "a");
        Assert.True(seq > 1, $"seq went back to {seq}: the room was restarted instead of resumed");
        Assert.Equal(seq, probe.ExpectMsg<RoomEvent>().Seq);
        Assert.Equal(1, RoomCount(registry));
    }

    [Fact]
    public void Event_that_makes_the_room_throw_uses_no_seq()
    {
        var registry = RoomFronts.Registry(Sys, Settings(LongIdle));
        Assert.Equal(1, Publish(registry, "a"));

        EventFilter.Exception<ArgumentException>().ExpectOne(() => registry.Tell(new RoutedEvent("a", "ranking_changed", null!, null, false)));

        Assert.Equal(2, Publish(registry, "a"));
    }

    [Fact]
    public void Supervisor_strategy_resumes_a_failed_room()
    {
        var registry = ActorOfAsTestActorRef<RoomRegistry>(RoomRegistry.Props(Settings(LongIdle)));
        var strategy = (SupervisorStrategy)typeof(RoomRegistry)
            .GetMethod("SupervisorStrategy", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic)!
            .Invoke(registry.UnderlyingActor, null)!;

        Assert.IsType<OneForOneStrategy>(strategy);
        Assert.Equal(Directive.Resume, strategy.Decider.Decide(new InvalidOperationException("boom")));
        Assert.Equal(Directive.Resume, strategy.Decider.Decide(new NullReferenceException()));
    }
}
