using System.Text;
using System.Text.Json;
using Akka.Actor;
using Akka.TestKit;
using TradeRoom.Actors.Integration;
using TradeRoom.Actors.Rooms;
using TradeRoom.Contracts;
using Xunit.Abstractions;

using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Actors;

/// <summary>
/// A room that throws while handling a message (an event that bypassed validation and reaches the room through a
/// real <see cref="RoomRegistry"/>) keeps its subscribers, its seq, its history and its state: the registry's
/// supervisor resumes it. The test actor is the publisher, so <see cref="EventPublished"/> answers come to it.
/// </summary>
public class RoomFaultSpecs(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(output: output)
{
    private const string Room = "bp-fault";
    private static readonly TimeSpan Short = TimeSpan.FromMilliseconds(300);

    private IActorRef NewRegistry() => RoomFronts.Registry(Sys, ShippedSettings.Rooms);

    /// <summary>A valid event, as <see cref="IntegrationActor"/> would route it.</summary>
    private static RoutedEvent Routed(string type, object data)
    {
        var e = new PublishEvent(Room, type, JsonSerializer.SerializeToUtf8Bytes(data));
        Assert.Null(EventValidator.Validate(e, ShippedSettings.Rooms.PrivateEventTypes, out var routed));
        return routed;
    }

    private long Publish(IActorRef registry, string type, object data)
    {
        registry.Tell(Routed(type, data));
        var published = ExpectMsg<EventPublished>();
        Assert.Equal(Room, published.BullPenId);
        return published.Seq;
    }

    private static SubscribeAck Subscribe(IActorRef registry, TestProbe probe, string userId, long? sinceSeq = null, string? epoch = null)
    {
        registry.Tell(new Subscribe(Room, probe.Ref, userId, sinceSeq, epoch));
        var ack = probe.ExpectMsg<SubscribeAck>();
        Assert.Equal(Room, ack.BullPenId);
        return ack;
    }

    private static string StateText(SubscribeAck ack) => Encoding.UTF8.GetString(ack.State);

    /// <summary>Events the room has published so far (seqs 1..4): leaderboard, room status, a member and a ranking.</summary>
    private (TestProbe Subscriber, SubscribeAck Before) RoomWithHistory(IActorRef registry)
    {
        var subscriber = CreateTestProbe();
        Subscribe(registry, subscriber, "alice");
        Assert.Equal(1, Publish(registry, "leaderboard_update", new { version = 1 }));
        Assert.Equal(2, Publish(registry, "room_state_changed", new { status = "waiting" }));
        Assert.Equal(3, Publish(registry, "member_joined", new { userId = "alice" }));
        Assert.Equal(4, Publish(registry, "ranking_changed", new { n = 4 }));
        Assert.Equal([1L, 2L, 3L, 4L], Enumerable.Range(0, 4).Select(_ => subscriber.ExpectMsg<RoomEvent>().Seq));

        var before = Subscribe(registry, CreateTestProbe(), "observer");
        Assert.Equal(4, before.Seq);
        return (subscriber, before);
    }

    /// <summary>After the fault: the same epoch and state, the next event gets seq 5, the old subscriber gets it, and a resume from 1 replays 2..5.</summary>
    private void AssertRoomIntact(IActorRef registry, TestProbe subscriber, SubscribeAck before)
    {
        // The faulting message got no answer and no seq, and the subscriber saw nothing of it.
        ExpectNoMsg(Short);
        subscriber.ExpectNoMsg(TimeSpan.Zero);

        var after = Subscribe(registry, CreateTestProbe(), "observer");
        Assert.Equal(before.Epoch, after.Epoch);
        Assert.Equal(4, after.Seq);
        Assert.Equal(StateText(before), StateText(after));

        Assert.Equal(5, Publish(registry, "ranking_changed", new { n = 5 }));
        var live = subscriber.ExpectMsg<RoomEvent>();
        Assert.Equal((5L, "ranking_changed"), (live.Seq, live.Type));

        var resumer = CreateTestProbe();
        var resumed = Subscribe(registry, resumer, "bob", sinceSeq: 1, epoch: before.Epoch);
        Assert.True(resumed.Recovered);
        Assert.Equal(4, resumed.Replayed);
        Assert.Equal([2L, 3L, 4L, 5L], Enumerable.Range(0, 4).Select(_ => resumer.ExpectMsg<RoomEvent>().Seq));

        registry.Tell(GetRoomCount.Instance);
        Assert.Equal(1, ExpectMsg<RoomCount>().Rooms);
    }

    [Fact]
    public void A_room_that_throws_on_an_event_without_data_keeps_subscribers_seq_history_and_state()
    {
        var registry = NewRegistry();
        var (subscriber, before) = RoomWithHistory(registry);

        // Data = null never passes EventValidator; sent straight to the registry it makes the room throw while building the frame.
        EventFilter.Exception<ArgumentException>().ExpectOne(() =>
            registry.Tell(new RoutedEvent(Room, "leaderboard_update", null!, null, false)));

        AssertRoomIntact(registry, subscriber, before);
    }

    [Fact]
    public void A_room_that_throws_while_folding_an_event_into_its_state_keeps_the_previous_state()
    {
        var registry = NewRegistry();
        var (subscriber, before) = RoomWithHistory(registry);

        // room_started rewrites data.status, so it parses the data: invalid JSON throws after the frame was built
        // but before anything was committed.
        EventFilter.Exception<JsonException>().ExpectOne(() =>
            registry.Tell(new RoutedEvent(Room, "room_started", "{not json"u8.ToArray(), null, false)));

        AssertRoomIntact(registry, subscriber, before);
        Assert.Contains("\"waiting\"", StateText(before));
    }
}
