using System.Text;
using Akka.Actor;
using TradeRoom.Actors.Rooms;
using TradeRoom.Contracts;
using TradeRoom.Protocol;
using Xunit.Abstractions;

using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Actors;

/// <summary>How the registry bounds rooms: the server-wide cap and each connection's budget of rooms it may start by subscribing.</summary>
public class RoomLimitSpecs(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(output: output)
{
    private static RoomSettings Settings(int maxRooms = 0, int newRoomsPerMinute = 0) =>
        ShippedSettings.Rooms with { MaxRooms = maxRooms, NewRoomsPerMinute = newRoomsPerMinute };

    private static RoutedEvent Event(string room) => new(room, "ranking_changed", Encoding.UTF8.GetBytes("{}"), null, false);

    private int RoomCount(IActorRef registry)
    {
        registry.Tell(GetRoomCount.Instance);
        return ExpectMsg<RoomCount>().Rooms;
    }

    [Fact]
    public void At_the_cap_a_publish_to_a_new_room_is_rejected_with_room_limit_and_running_rooms_still_take_events()
    {
        var registry = RoomFronts.Registry(Sys, Settings(maxRooms: 2));
        registry.Tell(Event("a"));
        ExpectMsg<EventPublished>();
        registry.Tell(Event("b"));
        ExpectMsg<EventPublished>();

        registry.Tell(Event("c"));
        var rejected = ExpectMsg<PublishRejected>();

        Assert.Equal(("c", ErrorCodes.RoomLimit), (rejected.BullPenId, rejected.Code));
        Assert.Contains("max-rooms", rejected.Message, StringComparison.Ordinal);
        registry.Tell(Event("a"));
        Assert.Equal(2, ExpectMsg<EventPublished>().Seq);
        Assert.Equal(2, RoomCount(registry));
    }

    [Fact]
    public void At_the_cap_a_subscribe_to_a_new_room_is_refused_with_room_limit_naming_the_room()
    {
        var registry = RoomFronts.Registry(Sys, Settings(maxRooms: 1));
        var connection = CreateTestProbe();
        registry.Tell(new Subscribe("a", connection.Ref, "u1"));
        connection.ExpectMsg<SubscribeAck>();

        registry.Tell(new Subscribe("b", connection.Ref, "u1"));

        var refused = connection.ExpectMsg<SubscribeRefused>();
        Assert.Equal(("b", ErrorCodes.RoomLimit), (refused.BullPenId, refused.Code));
        Assert.Equal(1, RoomCount(registry));
    }

    [Fact]
    public void A_connection_starts_at_most_its_budget_of_rooms_by_subscribing_while_running_rooms_cost_nothing()
    {
        var registry = RoomFronts.Registry(Sys, Settings(newRoomsPerMinute: 3));
        registry.Tell(Event("running"));
        ExpectMsg<EventPublished>();
        var attacker = CreateTestProbe();

        for (var i = 0; i < 3; i++)
        {
            registry.Tell(new Subscribe($"new-{i}", attacker.Ref, "u1"));
            attacker.ExpectMsg<SubscribeAck>();
        }
        registry.Tell(new Subscribe("new-3", attacker.Ref, "u1"));
        var refused = attacker.ExpectMsg<SubscribeRefused>();
        Assert.Equal(("new-3", ErrorCodes.RoomLimit), (refused.BullPenId, refused.Code));
        Assert.Contains("new-rooms-per-minute", refused.Message, StringComparison.Ordinal);

        // A room that runs costs nothing, and another connection has a budget of its own.
        registry.Tell(new Subscribe("running", attacker.Ref, "u1"));
        Assert.Equal("running", attacker.ExpectMsg<SubscribeAck>().BullPenId);
        var other = CreateTestProbe();
        registry.Tell(new Subscribe("new-3", other.Ref, "u2"));
        Assert.Equal("new-3", other.ExpectMsg<SubscribeAck>().BullPenId);
        Assert.Equal(5, RoomCount(registry));
    }

    [Fact]
    public void Publishers_are_not_bound_by_the_connection_budget()
    {
        var registry = RoomFronts.Registry(Sys, Settings(newRoomsPerMinute: 1));

        for (var i = 0; i < 20; i++)
        {
            registry.Tell(Event($"r{i}"));
            ExpectMsg<EventPublished>();
        }

        Assert.Equal(20, RoomCount(registry));
    }

    [Fact]
    public void A_room_no_event_reached_stops_after_the_empty_room_timeout_once_nobody_follows_it()
    {
        var settings = ShippedSettings.Rooms with { EmptyRoomTimeout = TimeSpan.FromMilliseconds(300) };
        var registry = RoomFronts.Registry(Sys, settings);
        var connection = CreateTestProbe();
        registry.Tell(new Subscribe("made-up", connection.Ref, "u1"));
        connection.ExpectMsg<SubscribeAck>();
        registry.Tell(Event("used"));
        ExpectMsg<EventPublished>();

        registry.Tell(new Unsubscribe("made-up", connection.Ref));
        connection.ExpectMsg<UnsubscribeAck>();

        // The empty room goes; the room that took an event keeps the (long) idle timeout.
        AwaitAssert(() => Assert.Equal(1, RoomCount(registry)), TimeSpan.FromSeconds(5), TimeSpan.FromMilliseconds(100));
        registry.Tell(Event("used"));
        Assert.Equal(2, ExpectMsg<EventPublished>().Seq);
    }

    [Fact]
    public void Rooms_are_listed_a_page_at_a_time_in_id_order_each_exactly_once()
    {
        var registry = RoomFronts.Registry(Sys, Settings());
        var ids = Enumerable.Range(0, 25).Select(i => $"room-{i:D3}").ToArray();
        foreach (var id in ids.Reverse())
        {
            registry.Tell(Event(id));
            ExpectMsg<EventPublished>();
        }

        var seen = new List<string>();
        string? after = null;
        var pages = 0;
        do
        {
            registry.Tell(new GetRooms(10, after));
            var page = ExpectMsg<RoomList>();
            seen.AddRange(page.Rooms.Select(r => r.BullPenId));
            after = page.Next;
            pages++;
        }
        while (after is not null);

        Assert.Equal(3, pages);
        Assert.Equal(ids, seen);
    }
}
