using System.Text;
using System.Text.Json;
using TradeRoom.Actors.Integration;
using TradeRoom.Actors.Rooms;
using TradeRoom.Contracts;
using TradeRoom.Protocol;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Rooms;

public class RoomStateTests
{
    private static readonly RoomSettings Settings = ShippedSettings.Rooms with { HistorySize = 5, HistoryTtl = TimeSpan.FromSeconds(10) };

    private static RoutedEvent Event(string type, object data)
    {
        var e = new PublishEvent("r1", type, Encoding.UTF8.GetBytes(JsonSerializer.Serialize(data)));
        Assert.Null(EventValidator.Validate(e, ShippedSettings.Rooms.PrivateEventTypes, out var routed));
        return routed;
    }

    private static JsonElement State(RoomState room) => JsonDocument.Parse(room.StateJson()).RootElement;

    [Fact]
    public void A_new_room_has_an_empty_snapshot()
    {
        var room = new RoomState("r1", Settings);
        var state = State(room);
        Assert.Equal(JsonValueKind.Null, state.GetProperty("leaderboard").ValueKind);
        Assert.Equal(JsonValueKind.Null, state.GetProperty("room").ValueKind);
        Assert.Equal(0, state.GetProperty("members").GetArrayLength());
        Assert.Equal(0, room.Seq);
    }

    [Theory]
    [InlineData(EventTypes.LeaderboardUpdate)]
    [InlineData(EventTypes.SnapshotCreated)]
    public void Leaderboard_is_the_latest_leaderboard_update_or_snapshot(string lastType)
    {
        var room = new RoomState("r1", Settings);
        room.Apply(Event(EventTypes.SnapshotCreated, new { version = 1 }), 0);
        room.Apply(Event(EventTypes.LeaderboardUpdate, new { version = 2 }), 0);
        room.Apply(Event(lastType, new { version = 3 }), 0);
        room.Apply(Event(EventTypes.RankingChanged, new { version = 4 }), 0);
        Assert.Equal(3, State(room).GetProperty("leaderboard").GetProperty("version").GetInt32());
    }

    [Fact]
    public void Room_is_the_latest_room_event_with_status_set_by_start_and_end()
    {
        var room = new RoomState("r1", Settings);
        room.Apply(Event(EventTypes.RoomStateChanged, new { status = "waiting", name = "Cup" }), 0);
        Assert.Equal("waiting", State(room).GetProperty("room").GetProperty("status").GetString());

        room.Apply(Event(EventTypes.RoomStarted, new { name = "Cup", startsAt = "t0" }), 0);
        var started = State(room).GetProperty("room");
        Assert.Equal("active", started.GetProperty("status").GetString());
        Assert.Equal("t0", started.GetProperty("startsAt").GetString());

        room.Apply(Event(EventTypes.RoomEnded, new { name = "Cup", status = "finished" }), 0);
        Assert.Equal("ended", State(room).GetProperty("room").GetProperty("status").GetString());

        room.Apply(Event(EventTypes.RoomStateChanged, new { status = "archived" }), 0);
        Assert.Equal("archived", State(room).GetProperty("room").GetProperty("status").GetString());
    }

    [Fact]
    public void Members_are_joins_minus_leaves_in_join_order()
    {
        var room = new RoomState("r1", Settings);
        room.Apply(Event(EventTypes.MemberJoined, new { userId = "u1" }), 0);
        room.Apply(Event(EventTypes.MemberJoined, new { userId = "u2" }), 0);
        room.Apply(Event(EventTypes.MemberJoined, new { userId = "u1" }), 0);
        room.Apply(Event(EventTypes.MemberJoined, new { userId = "u3" }), 0);
        room.Apply(Event(EventTypes.MemberLeft, new { userId = "u2" }), 0);
        room.Apply(Event(EventTypes.MemberLeft, new { userId = "nobody" }), 0);
        var members = State(room).GetProperty("members").EnumerateArray().Select(m => m.GetString()!).ToArray();
        Assert.Equal(["u1", "u3"], members);
    }

    [Fact]
    public void Events_are_numbered_and_private_ones_name_their_owner()
    {
        var room = new RoomState("r1", Settings);
        var first = room.Apply(Event(EventTypes.LeaderboardUpdate, new { a = 1 }), 0);
        var second = room.Apply(Event(EventTypes.OrderExecuted, new { userId = "u7", qty = 3 }), 0);
        Assert.Equal((1, null), (first.Seq, first.VisibleTo));
        Assert.Equal((2, "u7"), (second.Seq, second.VisibleTo));
        var frame = JsonDocument.Parse(second.Frame).RootElement;
        Assert.Equal("order_executed", frame.GetProperty("type").GetString());
        Assert.Equal(2, frame.GetProperty("seq").GetInt64());
        Assert.Equal(3, frame.GetProperty("data").GetProperty("qty").GetInt32());
    }

    [Fact]
    public void Replay_returns_exactly_the_events_after_the_position()
    {
        var room = new RoomState("r1", Settings);
        for (var i = 0; i < 4; i++)
            room.Apply(Event(EventTypes.RankingChanged, new { i }), 0);
        Assert.Equal([3L, 4L], room.TryReplay(2, room.Epoch, 0)!.Select(e => e.Seq));
        Assert.Empty(room.TryReplay(4, room.Epoch, 0)!);
    }

    [Fact]
    public void Replay_is_refused_for_another_epoch_a_future_seq_or_a_position_past_history()
    {
        var room = new RoomState("r1", Settings);
        for (var i = 0; i < 8; i++)
            room.Apply(Event(EventTypes.RankingChanged, new { i }), 0);
        // History keeps 5: seqs 4..8, so a client at 3 can resume and one at 2 cannot.
        Assert.NotNull(room.TryReplay(3, room.Epoch, 0));
        Assert.Null(room.TryReplay(2, room.Epoch, 0));
        Assert.Null(room.TryReplay(5, "another-epoch", 0));
        Assert.Null(room.TryReplay(5, null, 0));
        Assert.Null(room.TryReplay(9, room.Epoch, 0));
        Assert.NotEqual(room.Epoch, new RoomState("r1", Settings).Epoch);
    }

    [Fact]
    public void History_forgets_events_older_than_its_ttl()
    {
        var room = new RoomState("r1", Settings);
        room.Apply(Event(EventTypes.RankingChanged, new { i = 1 }), 0);
        room.Apply(Event(EventTypes.RankingChanged, new { i = 2 }), 9_000);
        Assert.NotNull(room.TryReplay(0, room.Epoch, 9_500));
        // At 10.5 s the first event is past the 10 s ttl: resuming from 0 is no longer possible, from 1 still is.
        Assert.Null(room.TryReplay(0, room.Epoch, 10_500));
        Assert.Equal([2L], room.TryReplay(1, room.Epoch, 10_500)!.Select(e => e.Seq));
        Assert.Equal(1, room.HistoryCount);
    }
}
