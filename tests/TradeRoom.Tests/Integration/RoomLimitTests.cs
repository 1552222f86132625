using System.Net;
using System.Net.Http.Headers;
using TradeRoom.Actors.Integration;
using TradeRoom.Contracts;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Integration;

/// <summary>
/// The bounds on what clients can make the server hold, end to end: connections per user, the server's room cap
/// and each connection's budget of rooms it may start. Regression for "one user with 10,000 connections created
/// 815,217 rooms": every subscribe to a new id used to start a room, without limit.
/// </summary>
public class RoomLimitTests
{
    private static Task<ApiResponse> GetAsServiceAsync(TestServer server, string path)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", server.ServiceToken());
        return ApiResponse.ReadAsync(server.Http.SendAsync(request));
    }

    [Fact]
    public async Task By_default_a_user_holds_at_most_20_connections_and_the_21st_gets_too_many_connections_and_4009()
    {
        await using var server = await TestServer.StartAsync();
        var held = new List<WsClient>();
        try
        {
            for (var i = 0; i < 20; i++)
                held.Add(await server.ConnectAsync("many-tabs"));

            await using var extra = await WsClient.ConnectAsync(server.WsUri);
            await extra.SendAsync(new { type = "auth", data = new { token = server.UserToken("many-tabs") } });

            var refused = await extra.ReceiveAsync();
            Assert.Equal(("auth_error", "too_many_connections"), (refused.Type, refused.Data.GetProperty("code").GetString()));
            Assert.Equal(4009, await extra.ReceiveCloseAsync());
            await using var otherUser = await server.ConnectAsync("someone-else");
        }
        finally
        {
            foreach (var client in held)
                await client.DisposeAsync();
        }
    }

    [Fact]
    public async Task At_the_room_cap_a_publish_to_a_new_room_is_503_room_limit_and_a_subscribe_gets_error_room_limit_on_an_open_connection()
    {
        await using var server = await TestServer.StartAsync("traderoom.rooms.max-rooms = 2");
        await server.PublishAsync("cap-a", "room_started", new { });
        await server.PublishAsync("cap-b", "room_started", new { });

        using var response = await server.PostAsync("/api/rooms/cap-c/events", """{"type":"room_started","data":{}}""");
        var answer = await ApiResponse.ReadAsync(Task.FromResult(response));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, answer.Status);
        Assert.Equal("room_limit", answer.ErrorCode);

        await using var client = await server.ConnectAsync("capped");
        await client.SubscribeAsync("cap-c");
        var error = await client.ReceiveAsync();
        Assert.Equal(("error", "room_limit", "cap-c"),
            (error.Type, error.Data.GetProperty("code").GetString(), error.Data.GetProperty("bullPenId").GetString()));

        // The connection stays open and a running room is still there to follow.
        await client.SubscribeAsync("cap-a");
        Assert.Equal("cap-a", (await client.ReceiveTypeAsync("subscribed")).Data.GetProperty("bullPenId").GetString());
        Assert.Equal(2, (await server.HealthAsync()).Rooms);
    }

    /// <summary>
    /// The attack, scaled down: one user at its 20 connections subscribes to made-up ids as fast as the rate limit
    /// lets it. Rooms stay within 20 connections x the budget, and a normal client keeps getting every event.
    /// </summary>
    [Fact]
    public async Task A_user_subscribing_to_made_up_rooms_from_all_its_connections_starts_at_most_its_budget_and_others_are_still_served()
    {
        const int budget = 5;
        await using var server = await TestServer.StartAsync($"traderoom.limits.new-rooms-per-minute = {budget}");
        await using var normal = await server.ConnectAndSubscribeAsync("normal-trader", "normal-room");
        var attackers = new List<WsClient>();
        for (var i = 0; i < 20; i++)
            attackers.Add(await server.ConnectAsync("attacker"));

        var refusals = 0;
        var published = 0;
        for (var round = 0; round < 30; round++)
        {
            // One subscribe per connection per round: well within the message rate, so only the room budget says no.
            for (var c = 0; c < attackers.Count; c++)
                await attackers[c].SubscribeAsync($"made-up-{c}-{round}");
            await server.PublishAsync("normal-room", "ranking_changed", new { userId = "normal-trader", rank = round });
            published++;
            var e = await normal.ReceiveAsync();
            Assert.Equal(("ranking_changed", (long)published), (e.Type, e.Seq));
        }
        foreach (var attacker in attackers)
        {
            // Every subscribe gets one answer, subscribed or refused. The refusal comes from the rooms' side, so a
            // ping would not order it: count the answers instead.
            for (var answers = 0; answers < 30;)
            {
                var frame = await attacker.ReceiveAsync();
                if (frame.Type == "error")
                {
                    Assert.Equal("room_limit", frame.Data.GetProperty("code").GetString());
                    refusals++;
                }
                if (frame.Type is "error" or "subscribed")
                    answers++;
            }
        }

        var rooms = (await server.HealthAsync()).Rooms;
        Assert.Equal(20 * budget + 1, rooms);
        Assert.Equal(20 * (30 - budget), refusals);
        foreach (var attacker in attackers)
            await attacker.DisposeAsync();
    }

    [Fact]
    public async Task Listing_50000_rooms_a_page_at_a_time_answers_every_page_and_gives_each_room_once()
    {
        // Listing is what is tested, not starting 50,000 rooms from a database: the memory provider starts them
        // quicker, and they are started a few thousand at a time, so none waits longer than the publish timeout.
        await using var server = await TestServer.StartAsync("traderoom.persistence.provider = memory");
        var integration = (TradeRoomIntegration)server.App.Services.GetService(typeof(TradeRoomIntegration))!;
        const int count = 50_000;
        for (var first = 0; first < count; first += 2_500)
        {
            var publishes = Enumerable.Range(first, 2_500).Select(i => integration.OnRoomStarted($"listed-{i:D5}", new { }));
            Assert.All(await Task.WhenAll(publishes), r => Assert.IsType<EventPublished>(r));
        }

        var seen = new List<string>(count);
        string? after = null;
        do
        {
            var path = "/api/rooms" + (after is null ? "" : "?after=" + Uri.EscapeDataString(after));
            var page = await GetAsServiceAsync(server, path);
            Assert.Equal(HttpStatusCode.OK, page.Status);
            var rooms = page.Json.GetProperty("rooms").EnumerateArray().Select(r => r.GetProperty("bullPenId").GetString()!).ToArray();
            Assert.InRange(rooms.Length, 1, 1000);
            seen.AddRange(rooms);
            after = page.Json.GetProperty("next").GetString();
        }
        while (after is not null);

        Assert.Equal(Enumerable.Range(0, count).Select(i => $"listed-{i:D5}"), seen);
        var small = await GetAsServiceAsync(server, "/api/rooms?limit=3&after=listed-00009");
        Assert.Equal(["listed-00010", "listed-00011", "listed-00012"],
            small.Json.GetProperty("rooms").EnumerateArray().Select(r => r.GetProperty("bullPenId").GetString()));
        Assert.Equal("listed-00012", small.Json.GetProperty("next").GetString());
        var bad = await GetAsServiceAsync(server, "/api/rooms?limit=0");
        Assert.Equal((HttpStatusCode.BadRequest, "invalid_request"), (bad.Status, bad.ErrorCode));
    }
}
