using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Akka.Actor;
using Akka.TestKit;
using TradeRoom.Actors.Integration;
using TradeRoom.Actors.Rooms;
using TradeRoom.Contracts;
using TradeRoom.Protocol;
using Xunit.Abstractions;

using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Actors;

public class TradeRoomIntegrationSpecs : Akka.TestKit.Xunit2.TestKit
{
    private static readonly TimeSpan Short = TimeSpan.FromMilliseconds(200);
    private static readonly IReadOnlySet<string> PrivateTypes = ShippedSettings.Rooms.PrivateEventTypes;
    private const string U1 = """{"userId":"u1"}""";

    private readonly IActorRef _registry;
    private readonly TradeRoomIntegration _facade;

    public TradeRoomIntegrationSpecs(ITestOutputHelper output) : base(output: output)
    {
        _registry = RoomFronts.Registry(Sys, ShippedSettings.Rooms);
        _facade = new TradeRoomIntegration(Sys.ActorOf(IntegrationActor.Props(_registry, PrivateTypes)), PrivateTypes, TimeSpan.FromSeconds(3));
    }

    private TestProbe Subscribed(string room)
    {
        var probe = CreateTestProbe();
        _registry.Tell(new Subscribe(room, probe.Ref, "u1"));
        probe.ExpectMsg<SubscribeAck>();
        return probe;
    }

    private static JsonElement DataOf(RoomEvent e)
    {
        using var document = JsonDocument.Parse(e.Frame);
        return document.RootElement.GetProperty("data").Clone();
    }

    [Fact]
    public async Task Each_On_method_publishes_its_own_event_type()
    {
        var probe = Subscribed("r1");
        var calls = new (string Type, Func<TradeRoomIntegration, Task<PublishResult>> Call)[]
        {
            ("order_executed", f => f.OnOrderExecuted("r1", new { n = 1, userId = "u1" })),
            ("order_failed", f => f.OnOrderFailed("r1", new { n = 2, userId = "u1" })),
            ("order_cancelled", f => f.OnOrderCancelled("r1", new { n = 3, userId = "u1" })),
            ("leaderboard_update", f => f.OnLeaderboardUpdated("r1", new { n = 4, userId = "u1" })),
            ("ranking_changed", f => f.OnRankingChanged("r1", new { n = 5, userId = "u1" })),
            ("snapshot_created", f => f.OnSnapshotCreated("r1", new { n = 6, userId = "u1" })),
            ("position_update", f => f.OnPositionUpdated("r1", new { n = 7, userId = "u1" })),
            ("position_closed", f => f.OnPositionClosed("r1", new { n = 8, userId = "u1" })),
            ("portfolio_update", f => f.OnPortfolioUpdated("r1", new { n = 9, userId = "u1" })),
            ("room_state_changed", f => f.OnRoomStateChanged("r1", new { n = 10, userId = "u1" })),
            ("room_started", f => f.OnRoomStarted("r1", new { n = 11, userId = "u1" })),
            ("room_ended", f => f.OnRoomEnded("r1", new { n = 12, userId = "u1" })),
            ("member_joined", f => f.OnMemberJoined("r1", new { n = 13, userId = "u1" })),
            ("member_left", f => f.OnMemberLeft("r1", new { n = 14, userId = "u1" })),
        };

        for (var i = 0; i < calls.Length; i++)
        {
            var result = await calls[i].Call(_facade);

            Assert.Equal(new EventPublished("r1", i + 1), result);
            var e = probe.ExpectMsg<RoomEvent>();
            Assert.Equal(calls[i].Type, e.Type);
            Assert.Equal(i + 1, e.Seq);
            Assert.Equal(i + 1, DataOf(e).GetProperty("n").GetInt32());
        }
        Assert.Equal(EventTypes.All, calls.Select(c => c.Type));
    }

    [Fact]
    public async Task PublishAsync_serializes_an_object_in_camelCase()
    {
        var probe = Subscribed("r1");

        var result = await _facade.PublishAsync("r1", "position_update", new { PositionId = "p-1", UnrealizedPnl = 12.5m, Symbol = "AAPL", UserId = "u1" });

        Assert.True(result.Accepted);
        var data = DataOf(probe.ExpectMsg<RoomEvent>());
        Assert.Equal(["positionId", "unrealizedPnl", "symbol", "userId"], data.EnumerateObject().Select(p => p.Name));
        Assert.Equal("u1", data.GetProperty("userId").GetString());
        Assert.Equal("p-1", data.GetProperty("positionId").GetString());
        Assert.Equal(12.5m, data.GetProperty("unrealizedPnl").GetDecimal());
    }

    [Fact]
    public async Task PublishAsync_takes_a_JsonNode_or_JsonElement_as_is()
    {
        var probe = Subscribed("r1");

        await _facade.PublishAsync("r1", "room_started", new JsonObject { ["Keep_Case"] = 1 });
        await _facade.PublishAsync("r1", "room_ended", JsonDocument.Parse("""{"Also_Kept":[1,2]}""").RootElement);

        Assert.Equal("""{"Keep_Case":1}""", DataOf(probe.ExpectMsg<RoomEvent>()).GetRawText());
        Assert.Equal("""{"Also_Kept":[1,2]}""", DataOf(probe.ExpectMsg<RoomEvent>()).GetRawText());
    }

    [Theory]
    [InlineData(42)]
    [InlineData("x")]
    [InlineData(true)]
    public async Task PublishAsync_rejects_data_that_is_not_an_object(object data)
    {
        var probe = Subscribed("r1");

        var result = await _facade.PublishAsync("r1", "order_executed", data);

        Assert.Equal(ErrorCodes.InvalidMessage, Assert.IsType<PublishRejected>(result).Code);
        probe.ExpectNoMsg(Short);
    }

    [Fact]
    public async Task PublishAsync_rejects_an_array_and_null()
    {
        var probe = Subscribed("r1");

        var array = await _facade.PublishAsync("r1", "order_executed", new[] { 1, 2 });
        var nothing = await _facade.PublishAsync("r1", "order_executed", null!);

        Assert.Equal(ErrorCodes.InvalidMessage, Assert.IsType<PublishRejected>(array).Code);
        Assert.Equal(ErrorCodes.InvalidMessage, Assert.IsType<PublishRejected>(nothing).Code);
        probe.ExpectNoMsg(Short);
    }

    [Fact]
    public async Task PublishAsync_rejects_an_unknown_type()
    {
        var result = await _facade.PublishAsync("r1", "order_exploded", new { });

        Assert.Equal(ErrorCodes.UnknownType, Assert.IsType<PublishRejected>(result).Code);
    }

    [Fact]
    public async Task PublishAsync_answers_timeout_when_nobody_answers()
    {
        var facade = new TradeRoomIntegration(CreateTestProbe().Ref, PrivateTypes, TimeSpan.FromMilliseconds(200));

        var result = await facade.PublishAsync("r1", "order_executed", new { });

        Assert.Equal(ErrorCodes.Timeout, Assert.IsType<PublishRejected>(result).Code);
    }

    [Fact]
    public async Task Batch_with_one_invalid_event_publishes_nothing()
    {
        var probe = Subscribed("r1");
        var batch = new[]
        {
            new PublishEvent("r1", "order_executed", Encoding.UTF8.GetBytes(U1)),
            new PublishEvent("r1", "order_failed", Encoding.UTF8.GetBytes(U1)),
            new PublishEvent("r1", "order_executed", Encoding.UTF8.GetBytes("[1]")),
            new PublishEvent("r1", "order_cancelled", Encoding.UTF8.GetBytes(U1)),
        };

        var result = await _facade.PublishBatchAsync(batch);

        Assert.False(result.Accepted);
        Assert.Equal(2, result.RejectedIndex);
        Assert.Equal(ErrorCodes.InvalidMessage, result.Rejection!.Code);
        Assert.Empty(result.Seqs);
        probe.ExpectNoMsg(Short);
        Assert.Equal(new EventPublished("r1", 1), await _facade.OnOrderExecuted("r1", new { userId = "u1" }));
    }

    [Fact]
    public async Task Batch_of_valid_events_is_published_in_order()
    {
        var probe = Subscribed("r1");
        await _facade.OnMemberJoined("r1", new { });
        probe.ExpectMsg<RoomEvent>();
        var types = new[] { "order_executed", "order_failed", "order_cancelled", "leaderboard_update", "ranking_changed" };

        var result = await _facade.PublishBatchAsync(types.Select(t => new PublishEvent("r1", t, Encoding.UTF8.GetBytes(U1))).ToArray());

        Assert.True(result.Accepted);
        Assert.Equal(-1, result.RejectedIndex);
        Assert.Equal([2L, 3L, 4L, 5L, 6L], result.Seqs);
        foreach (var (type, seq) in types.Zip(result.Seqs))
        {
            var e = probe.ExpectMsg<RoomEvent>();
            Assert.Equal(type, e.Type);
            Assert.Equal(seq, e.Seq);
        }
    }

    [Fact]
    public async Task Batch_reports_the_first_invalid_event_across_rooms()
    {
        var batch = new[]
        {
            new PublishEvent("r1", "order_executed", Encoding.UTF8.GetBytes(U1)),
            new PublishEvent("", "order_executed", Encoding.UTF8.GetBytes(U1)),
            new PublishEvent("r2", "bogus", Encoding.UTF8.GetBytes(U1)),
        };

        var result = await _facade.PublishBatchAsync(batch);

        Assert.Equal(1, result.RejectedIndex);
        Assert.Equal(ErrorCodes.InvalidRoom, result.Rejection!.Code);
        _registry.Tell(GetRoomCount.Instance);
        Assert.Equal(0, ExpectMsg<RoomCount>().Rooms);
    }

    [Fact]
    public async Task On_method_for_a_private_type_without_userId_is_rejected_with_missing_user()
    {
        var probe = Subscribed("r1");

        var result = await _facade.OnOrderExecuted("r1", new { orderId = "o-1" });

        Assert.Equal(ErrorCodes.MissingUser, Assert.IsType<PublishRejected>(result).Code);
        probe.ExpectNoMsg(Short);
    }

    [Fact]
    public async Task Batch_with_a_private_event_without_userId_publishes_nothing()
    {
        var probe = Subscribed("r1");
        var batch = new[]
        {
            new PublishEvent("r1", "leaderboard_update", Encoding.UTF8.GetBytes("{}")),
            new PublishEvent("r1", "portfolio_update", Encoding.UTF8.GetBytes("""{"userId":7}""")),
        };

        var result = await _facade.PublishBatchAsync(batch);

        Assert.Equal(1, result.RejectedIndex);
        Assert.Equal(ErrorCodes.MissingUser, result.Rejection!.Code);
        probe.ExpectNoMsg(Short);
    }
}
