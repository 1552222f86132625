using System.Text.Json;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Integration;

/// <summary>State on subscribe, private events and resume, over real sockets against the real server.</summary>
public class DeliveryGuaranteesTests
{
    private static async Task<Frame> SubscribeAsync(WsClient client, string bullPenId, long? sinceSeq = null, string? epoch = null)
    {
        await client.SendAsync(new { type = "subscribe_room", data = new { bullPenId, sinceSeq, epoch } });
        return await client.ReceiveTypeAsync("subscribed");
    }

    /// <summary>Pings and waits for the pong: every frame the server queued before it has been read.</summary>
    private static async Task<List<Frame>> DrainAsync(WsClient client)
    {
        var frames = new List<Frame>();
        await client.SendAsync(new { type = "ping", data = new { barrier = true } });
        while (true)
        {
            var frame = await client.ReceiveAsync();
            if (frame.Type == "pong")
                return frames;
            frames.Add(frame);
        }
    }

    [Fact]
    public async Task Subscribed_carries_the_state_snapshot_after_every_kind_of_state_event()
    {
        await using var server = await TestServer.StartAsync();
        await server.PublishAsync("r1", "room_state_changed", new { status = "waiting", name = "Cup" });
        await server.PublishAsync("r1", "leaderboard_update", new { entries = new[] { new { userId = "u1", rank = 1 } } });
        await server.PublishAsync("r1", "member_joined", new { userId = "u1" });
        await server.PublishAsync("r1", "member_joined", new { userId = "u2" });
        await server.PublishAsync("r1", "member_left", new { userId = "u1" });
        await server.PublishAsync("r1", "room_started", new { name = "Cup" });

        await using var client = await server.ConnectAsync("viewer");
        var subscribed = await SubscribeAsync(client, "r1");
        var data = subscribed.Data;
        Assert.Equal(6, data.GetProperty("seq").GetInt64());
        Assert.False(data.GetProperty("recovered").GetBoolean());
        Assert.False(string.IsNullOrEmpty(data.GetProperty("epoch").GetString()));
        var state = data.GetProperty("state");
        Assert.Equal(1, state.GetProperty("leaderboard").GetProperty("entries")[0].GetProperty("rank").GetInt32());
        Assert.Equal("active", state.GetProperty("room").GetProperty("status").GetString());
        Assert.Equal("Cup", state.GetProperty("room").GetProperty("name").GetString());
        Assert.Equal(["u2"], state.GetProperty("members").EnumerateArray().Select(m => m.GetString()!));

        await server.PublishAsync("r1", "snapshot_created", new { version = 9 });
        await server.PublishAsync("r1", "room_ended", new { name = "Cup" });
        await using var late = await server.ConnectAsync("late");
        var lateState = (await SubscribeAsync(late, "r1")).Data.GetProperty("state");
        Assert.Equal(9, lateState.GetProperty("leaderboard").GetProperty("version").GetInt32());
        Assert.Equal("ended", lateState.GetProperty("room").GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_new_room_snapshot_is_empty()
    {
        await using var server = await TestServer.StartAsync();
        await using var client = await server.ConnectAsync("u1");
        var state = (await SubscribeAsync(client, "fresh")).Data.GetProperty("state");
        Assert.Equal(JsonValueKind.Null, state.GetProperty("leaderboard").ValueKind);
        Assert.Equal(JsonValueKind.Null, state.GetProperty("room").ValueKind);
        Assert.Equal(0, state.GetProperty("members").GetArrayLength());
    }

    [Fact]
    public async Task Private_event_reaches_only_its_owner_on_every_connection_of_the_owner()
    {
        await using var server = await TestServer.StartAsync();
        await using var ownerPhone = await server.ConnectAndSubscribeAsync("alice", "r1");
        await using var ownerLaptop = await server.ConnectAndSubscribeAsync("alice", "r1");
        await using var other = await server.ConnectAndSubscribeAsync("bob", "r1");

        foreach (var type in new[] { "order_executed", "order_failed", "order_cancelled", "position_update", "position_closed", "portfolio_update" })
            await server.PublishAsync("r1", type, new { userId = "alice", detail = type });
        var publicSeq = await server.PublishAsync("r1", "ranking_changed", new { top = "alice" });

        foreach (var owner in new[] { ownerPhone, ownerLaptop })
        {
            var frames = await DrainAsync(owner);
            Assert.Equal(["order_executed", "order_failed", "order_cancelled", "position_update", "position_closed", "portfolio_update", "ranking_changed"],
                frames.Select(f => f.Type));
            Assert.Equal(Enumerable.Range(1, 7).Select(i => (long)i), frames.Select(f => f.Seq));
        }
        var seen = await DrainAsync(other);
        Assert.Equal(publicSeq, Assert.Single(seen).Seq);
    }

    [Fact]
    public async Task Public_event_reaches_everyone()
    {
        await using var server = await TestServer.StartAsync();
        var clients = new List<WsClient>();
        for (var i = 0; i < 5; i++)
            clients.Add(await server.ConnectAndSubscribeAsync($"u{i}", "r1"));
        var seq = await server.PublishAsync("r1", "member_joined", new { userId = "u9" });
        foreach (var client in clients)
        {
            Assert.Equal(seq, (await client.ReceiveAsync()).Seq);
            await client.DisposeAsync();
        }
    }

    [Fact]
    public async Task Private_event_without_a_user_is_rejected_over_http()
    {
        await using var server = await TestServer.StartAsync();
        using var response = await server.PostAsync("/api/rooms/r1/events", """{"type":"order_executed","data":{"userId":7}}""");
        Assert.Equal(400, (int)response.StatusCode);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("missing_user", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task Private_types_are_a_setting()
    {
        await using var server = await TestServer.StartAsync("traderoom.rooms.private-event-types = [portfolio_update]");
        await using var other = await server.ConnectAndSubscribeAsync("bob", "r1");
        var seq = await server.PublishAsync("r1", "order_executed", new { userId = "alice", symbol = "AAPL" });
        await server.PublishAsync("r1", "portfolio_update", new { userId = "alice" });
        Assert.Equal(seq, Assert.Single(await DrainAsync(other)).Seq);
    }

    [Fact]
    public async Task Resume_with_a_matching_epoch_replays_exactly_the_missed_events_the_user_may_see()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAndSubscribeAsync("alice", "r1");
        await server.PublishAsync("r1", "ranking_changed", new { n = 1 });
        var first = await client.ReceiveAsync();
        await client.DisposeAsync();
        await using var probe = await server.ConnectAsync("probe");
        var epoch = (await SubscribeAsync(probe, "r1")).Data.GetProperty("epoch").GetString();

        // Missed while away: public, alice's private, bob's private, public.
        await server.PublishAsync("r1", "leaderboard_update", new { n = 2 });
        await server.PublishAsync("r1", "order_executed", new { userId = "alice", n = 3 });
        await server.PublishAsync("r1", "order_executed", new { userId = "bob", n = 4 });
        await server.PublishAsync("r1", "member_joined", new { userId = "carol", n = 5 });

        await using var resumed = await server.ConnectAsync("alice");
        var subscribed = await SubscribeAsync(resumed, "r1", first.Seq, epoch);
        Assert.True(subscribed.Data.GetProperty("recovered").GetBoolean());
        Assert.Equal(5, subscribed.Data.GetProperty("seq").GetInt64());

        var live = await server.PublishAsync("r1", "ranking_changed", new { n = 6 });
        var frames = await DrainAsync(resumed);
        Assert.Equal([2L, 3L, 5L, live], frames.Select(f => f.Seq));
    }

    [Fact]
    public async Task Resume_from_a_seq_past_history_is_not_recovered_and_gives_the_snapshot()
    {
        await using var server = await TestServer.StartAsync("traderoom.rooms.history-size = 3");
        await using var probe = await server.ConnectAsync("probe");
        var epoch = (await SubscribeAsync(probe, "r1")).Data.GetProperty("epoch").GetString();
        for (var i = 1; i <= 6; i++)
            await server.PublishAsync("r1", "leaderboard_update", new { version = i });

        await using var client = await server.ConnectAsync("alice");
        var subscribed = await SubscribeAsync(client, "r1", sinceSeq: 2, epoch);
        Assert.False(subscribed.Data.GetProperty("recovered").GetBoolean());
        Assert.Equal(6, subscribed.Data.GetProperty("seq").GetInt64());
        Assert.Equal(6, subscribed.Data.GetProperty("state").GetProperty("leaderboard").GetProperty("version").GetInt32());
        Assert.Empty(await DrainAsync(client));

        // From 3 on, everything is still kept.
        await using var near = await server.ConnectAsync("bob");
        Assert.True((await SubscribeAsync(near, "r1", sinceSeq: 3, epoch)).Data.GetProperty("recovered").GetBoolean());
        Assert.Equal([4L, 5L, 6L], (await DrainAsync(near)).Select(f => f.Seq));
    }

    [Fact]
    public async Task Resume_with_a_wrong_epoch_is_not_recovered()
    {
        await using var server = await TestServer.StartAsync();
        await server.PublishAsync("r1", "leaderboard_update", new { version = 1 });
        await server.PublishAsync("r1", "leaderboard_update", new { version = 2 });
        await using var client = await server.ConnectAsync("alice");
        var subscribed = await SubscribeAsync(client, "r1", sinceSeq: 1, epoch: "not-this-room");
        Assert.False(subscribed.Data.GetProperty("recovered").GetBoolean());
        Assert.Equal(2, subscribed.Data.GetProperty("seq").GetInt64());
        Assert.Empty(await DrainAsync(client));
    }

    [Fact]
    public async Task With_the_memory_provider_a_room_restarted_after_idling_has_a_new_epoch()
    {
        await using var server = await TestServer.StartAsync("traderoom { rooms.idle-timeout = 300ms, persistence.provider = memory }");
        await server.PublishAsync("r1", "leaderboard_update", new { version = 1 });
        string? firstEpoch;
        await using (var client = await server.ConnectAsync("alice"))
        {
            firstEpoch = (await SubscribeAsync(client, "r1")).Data.GetProperty("epoch").GetString();
        }
        await HealthPoller.WaitForAsync(server, rooms: 0);

        await using var again = await server.ConnectAsync("alice");
        var subscribed = await SubscribeAsync(again, "r1", sinceSeq: 1, firstEpoch);
        Assert.False(subscribed.Data.GetProperty("recovered").GetBoolean());
        Assert.NotEqual(firstEpoch, subscribed.Data.GetProperty("epoch").GetString());
        Assert.Equal(0, subscribed.Data.GetProperty("seq").GetInt64());
    }

    [Fact]
    public async Task Invalid_resume_fields_are_an_error()
    {
        await using var server = await TestServer.StartAsync();
        await using var client = await server.ConnectAsync("alice");
        await client.SendAsync(new { type = "subscribe_room", data = new { bullPenId = "r1", sinceSeq = "ten" } });
        await AssertRefusedAsync(client, "r1");
        await client.SendAsync(new { type = "subscribe_room", data = new { bullPenId = 7, sinceSeq = -1 } });
        await AssertRefusedAsync(client, "7");
        await client.SendAsync(new { type = "subscribe_room", data = new { bullPenId = "r1", sinceSeq = 0, epoch = 5 } });
        await AssertRefusedAsync(client, "r1");

        // The error names the room it refused, so a client with several subscribes in flight knows which one failed.
        static async Task AssertRefusedAsync(WsClient client, string bullPenId)
        {
            var error = await client.ReceiveAsync();
            Assert.Equal(("error", "invalid_message", bullPenId), (error.Type, error.Code, error.Data.GetProperty("bullPenId").GetString()));
        }
    }
}

/// <summary>Polls /api/health until it shows the expected counts, or fails after a deadline.</summary>
public static class HealthPoller
{
    public static async Task WaitForAsync(TestServer server, int? rooms = null, int? connections = null, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        string last = "";
        while (DateTime.UtcNow < deadline)
        {
            last = await server.Http.GetStringAsync("/api/health");
            var health = JsonDocument.Parse(last).RootElement;
            if ((rooms is null || health.GetProperty("rooms").GetInt32() == rooms)
                && (connections is null || health.GetProperty("connections").GetInt32() == connections))
                return;
            await Task.Delay(50);
        }
        throw new TimeoutException($"health never showed rooms={rooms} connections={connections}; last: {last}");
    }
}
