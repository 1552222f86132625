using System.Text;
using Akka.Actor;
using TradeRoom.Actors.Integration;
using TradeRoom.Actors.Rooms;
using TradeRoom.Contracts;
using TradeRoom.Protocol;
using Xunit.Abstractions;

using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Actors;

public class IntegrationActorSpecs(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(output: output)
{
    private static readonly TimeSpan Short = TimeSpan.FromMilliseconds(200);
    private static readonly IReadOnlySet<string> PrivateTypes = ShippedSettings.Rooms.PrivateEventTypes;

    private static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public void Valid_event_is_routed_to_the_rooms_on_behalf_of_the_original_sender()
    {
        var rooms = CreateTestProbe();
        var integration = Sys.ActorOf(IntegrationActor.Props(rooms.Ref, PrivateTypes));
        var data = Utf8("""{"orderId":"o-1"}""");

        integration.Tell(new PublishEvent("r1", "leaderboard_update", data));

        var routed = rooms.ExpectMsg<RoutedEvent>();
        Assert.Equal("r1", routed.BullPenId);
        Assert.Equal("leaderboard_update", routed.Type);
        Assert.Equal(data, routed.Data);
        Assert.Null(routed.UserId);
        Assert.False(routed.IsPrivate);
        Assert.Equal(TestActor, rooms.LastSender);
    }

    [Fact]
    public void Valid_event_through_a_real_registry_answers_EventPublished_and_reaches_subscribers()
    {
        var registry = RoomFronts.Registry(Sys, ShippedSettings.Rooms);
        var integration = Sys.ActorOf(IntegrationActor.Props(registry, PrivateTypes));
        var subscriber = CreateTestProbe();
        registry.Tell(new Subscribe("r1", subscriber.Ref, "u1"));
        subscriber.ExpectMsg<SubscribeAck>();

        integration.Tell(new PublishEvent("r1", "member_joined", Utf8("""{"userId":"u2"}""")));
        integration.Tell(new PublishEvent("r1", "member_left", Utf8("""{"userId":"u2"}""")));

        Assert.Equal(new EventPublished("r1", 1), ExpectMsg<PublishResult>());
        Assert.Equal(new EventPublished("r1", 2), ExpectMsg<PublishResult>());
        Assert.Equal("member_joined", subscriber.ExpectMsg<RoomEvent>().Type);
        Assert.Equal("member_left", subscriber.ExpectMsg<RoomEvent>().Type);
    }

    public static TheoryData<string, string, string?, string> InvalidEvents => new()
    {
        { "r1", "bogus", "{}", ErrorCodes.UnknownType },
        { "r1", "", "{}", ErrorCodes.UnknownType },
        { "r1", "ORDER_EXECUTED", "{}", ErrorCodes.UnknownType },
        { "", "order_executed", "{}", ErrorCodes.InvalidRoom },
        { new string('x', 129), "order_executed", "{}", ErrorCodes.InvalidRoom },
        { "r1", "order_executed", "[1]", ErrorCodes.InvalidMessage },
        { "r1", "order_executed", "\"x\"", ErrorCodes.InvalidMessage },
        { "r1", "order_executed", "null", ErrorCodes.InvalidMessage },
        { "r1", "order_executed", "42", ErrorCodes.InvalidMessage },
        { "r1", "order_executed", "{\"a\":", ErrorCodes.InvalidMessage },
        { "r1", "order_executed", "{} {}", ErrorCodes.InvalidMessage },
        { "r1", "order_executed", "{}x", ErrorCodes.InvalidMessage },
        { "r1", "order_executed", "", ErrorCodes.InvalidMessage },
        { "r1", "order_executed", null, ErrorCodes.InvalidMessage },
    };

    [Theory]
    [MemberData(nameof(InvalidEvents))]
    public void Invalid_event_is_rejected_with_its_code_and_not_routed(string bullPenId, string type, string? data, string code)
    {
        var rooms = CreateTestProbe();
        var integration = Sys.ActorOf(IntegrationActor.Props(rooms.Ref, PrivateTypes));

        integration.Tell(new PublishEvent(bullPenId, type, data is null ? null! : Utf8(data)));

        var rejected = ExpectMsg<PublishRejected>();
        Assert.Equal(code, rejected.Code);
        Assert.Equal(bullPenId, rejected.BullPenId);
        Assert.False(rejected.Accepted);
        Assert.False(string.IsNullOrEmpty(rejected.Message));
        rooms.ExpectNoMsg(Short);
    }

    [Fact]
    public void Malformed_bytes_as_data_are_rejected()
    {
        var rooms = CreateTestProbe();
        var integration = Sys.ActorOf(IntegrationActor.Props(rooms.Ref, PrivateTypes));

        integration.Tell(new PublishEvent("r1", "order_executed", [0xFF, 0xFE, 0x7B]));

        Assert.Equal(ErrorCodes.InvalidMessage, ExpectMsg<PublishRejected>().Code);
        rooms.ExpectNoMsg(Short);
    }

    [Fact]
    public void Data_with_invalid_UTF8_inside_a_string_is_rejected()
    {
        var rooms = CreateTestProbe();
        var integration = Sys.ActorOf(IntegrationActor.Props(rooms.Ref, PrivateTypes));
        byte[] data = [.. "{\"userId\":\"u1\",\"a\":\"x"u8, 0xFF, .. "\"}"u8];

        integration.Tell(new PublishEvent("r1", "order_executed", data));

        Assert.Equal(ErrorCodes.InvalidMessage, ExpectMsg<PublishRejected>().Code);
        rooms.ExpectNoMsg(Short);
    }

    [Fact]
    public void Event_with_a_null_type_is_rejected_as_unknown_type()
    {
        var rooms = CreateTestProbe();
        var integration = Sys.ActorOf(IntegrationActor.Props(rooms.Ref, PrivateTypes));

        integration.Tell(new PublishEvent("r1", null!, Utf8("{}")));

        Assert.Equal(ErrorCodes.UnknownType, ExpectMsg<PublishRejected>().Code);
        rooms.ExpectNoMsg(Short);
    }

    [Fact]
    public void Room_id_of_128_characters_is_accepted()
    {
        var rooms = CreateTestProbe();
        var integration = Sys.ActorOf(IntegrationActor.Props(rooms.Ref, PrivateTypes));
        var id = new string('x', 128);

        integration.Tell(new PublishEvent(id, "order_executed", Utf8("""{"userId":"u1"}""")));

        Assert.Equal(id, rooms.ExpectMsg<RoutedEvent>().BullPenId);
    }

    [Fact]
    public void Each_of_the_fourteen_types_is_accepted()
    {
        var rooms = CreateTestProbe();
        var integration = Sys.ActorOf(IntegrationActor.Props(rooms.Ref, PrivateTypes));

        foreach (var type in EventTypes.All)
        {
            integration.Tell(new PublishEvent("r1", type, Utf8("""{"userId":"u1"}""")));
            var routed = rooms.ExpectMsg<RoutedEvent>();
            Assert.Equal(type, routed.Type);
            Assert.Equal("u1", routed.UserId);
            Assert.Equal(PrivateTypes.Contains(type), routed.IsPrivate);
        }
        Assert.Equal(14, EventTypes.All.Distinct().Count());
        ExpectNoMsg(Short);
    }

    public static TheoryData<string, string> PrivateEventsWithoutAStringUserId()
    {
        var data = new TheoryData<string, string>();
        foreach (var type in ShippedSettings.Rooms.PrivateEventTypes.Order(StringComparer.Ordinal))
        {
            data.Add(type, "{}");
            data.Add(type, """{"userId":42}""");
        }
        data.Add("order_executed", """{"userId":null}""");
        data.Add("order_executed", """{"userId":true}""");
        data.Add("order_executed", """{"userId":["u1"]}""");
        data.Add("order_executed", """{"userId":{"id":"u1"}}""");
        data.Add("order_executed", """{"UserId":"u1"}""");
        data.Add("order_executed", """{"user":"u1"}""");
        data.Add("order_executed", """{"order":{"userId":"u1"}}""");
        return data;
    }

    [Theory]
    [MemberData(nameof(PrivateEventsWithoutAStringUserId))]
    public void Private_event_without_a_string_userId_is_rejected_with_missing_user_and_not_routed(string type, string data)
    {
        var rooms = CreateTestProbe();
        var integration = Sys.ActorOf(IntegrationActor.Props(rooms.Ref, PrivateTypes));

        integration.Tell(new PublishEvent("r1", type, Utf8(data)));

        var rejected = ExpectMsg<PublishRejected>();
        Assert.Equal(ErrorCodes.MissingUser, rejected.Code);
        Assert.Equal("r1", rejected.BullPenId);
        Assert.False(string.IsNullOrEmpty(rejected.Message));
        rooms.ExpectNoMsg(Short);
    }

    [Theory]
    [InlineData("order_executed")]
    [InlineData("order_failed")]
    [InlineData("order_cancelled")]
    [InlineData("position_update")]
    [InlineData("position_closed")]
    [InlineData("portfolio_update")]
    public void Private_event_with_a_string_userId_is_routed_as_private_to_that_user(string type)
    {
        var rooms = CreateTestProbe();
        var integration = Sys.ActorOf(IntegrationActor.Props(rooms.Ref, PrivateTypes));
        var data = Utf8("""{"orderId":"o-1","userId":"alice","qty":3}""");

        integration.Tell(new PublishEvent("r1", type, data));

        var routed = rooms.ExpectMsg<RoutedEvent>();
        Assert.Equal(("r1", type, "alice", true), (routed.BullPenId, routed.Type, routed.UserId, routed.IsPrivate));
        Assert.Equal(data, routed.Data);
        Assert.Equal(TestActor, rooms.LastSender);
        ExpectNoMsg(Short);
    }

    [Fact]
    public void The_six_private_types_are_exactly_the_orders_and_positions_groups()
    {
        Assert.Equal(
            ["order_cancelled", "order_executed", "order_failed", "portfolio_update", "position_closed", "position_update"],
            PrivateTypes.Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("""{}""")]
    [InlineData("""{"userId":42}""")]
    public void Public_event_needs_no_userId_and_is_routed_to_everyone(string data)
    {
        var rooms = CreateTestProbe();
        var integration = Sys.ActorOf(IntegrationActor.Props(rooms.Ref, PrivateTypes));

        integration.Tell(new PublishEvent("r1", "ranking_changed", Utf8(data)));

        var routed = rooms.ExpectMsg<RoutedEvent>();
        Assert.False(routed.IsPrivate);
        Assert.Null(routed.UserId);
    }

    [Fact]
    public void Private_set_is_a_setting_so_a_type_left_out_of_it_is_public()
    {
        var rooms = CreateTestProbe();
        var publicOrders = PrivateTypes.Where(t => t != "order_executed").ToHashSet(StringComparer.Ordinal);
        var integration = Sys.ActorOf(IntegrationActor.Props(rooms.Ref, publicOrders));

        integration.Tell(new PublishEvent("r1", "order_executed", Utf8("""{"orderId":"o-1"}""")));
        integration.Tell(new PublishEvent("r1", "order_failed", Utf8("""{"orderId":"o-2"}""")));

        var routed = rooms.ExpectMsg<RoutedEvent>();
        Assert.Equal(("order_executed", false), (routed.Type, routed.IsPrivate));
        Assert.Equal(ErrorCodes.MissingUser, ExpectMsg<PublishRejected>().Code);
        rooms.ExpectNoMsg(Short);
    }

    public static TheoryData<byte[]> UserIdsThatAreNotValidStrings => new()
    {
        { [.. "{\"userId\":\"x"u8, 0xFF, .. "\"}"u8] },
        { "{\"userId\":\"\\uD800\"}"u8.ToArray() },
    };

    [Theory]
    [MemberData(nameof(UserIdsThatAreNotValidStrings))]
    public void Private_event_whose_userId_cannot_be_read_as_a_string_is_rejected_not_a_crash(byte[] data)
    {
        var rooms = CreateTestProbe();
        var integration = Sys.ActorOf(IntegrationActor.Props(rooms.Ref, PrivateTypes));

        integration.Tell(new PublishEvent("r1", "order_executed", data));

        var rejected = ExpectMsg<PublishRejected>();
        Assert.Contains(rejected.Code, new[] { ErrorCodes.InvalidMessage, ErrorCodes.MissingUser });
        rooms.ExpectNoMsg(Short);
    }
}
