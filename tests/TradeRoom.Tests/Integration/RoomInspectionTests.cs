using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Integration;

/// <summary><c>GET /api/rooms</c> and <c>GET /api/rooms/{bullPenId}</c> on the real server, behind a service token.</summary>
public class RoomInspectionTests(SharedServerFixture fixture) : IClassFixture<SharedServerFixture>
{
    private TestServer Server => fixture.Server;

    private static Task<ApiResponse> GetAsync(TestServer server, string path, string? token)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (token is not null)
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return ApiResponse.ReadAsync(server.Http.SendAsync(request));
    }

    private static Task<ApiResponse> GetAsServiceAsync(TestServer server, string path) => GetAsync(server, path, server.ServiceToken());

    private static string RoomPath(string room) => "/api/rooms/" + Uri.EscapeDataString(room);

    [Fact]
    public async Task Listing_shows_every_running_room_with_its_subscribers_seq_and_epoch()
    {
        await using var server = await TestServer.StartAsync();
        await using var a1 = await server.ConnectAsync("lister-1");
        await using var a2 = await server.ConnectAsync("lister-2");
        await a1.SubscribeAsync("room-a");
        var epochA = (await a1.ReceiveTypeAsync("subscribed")).Data.GetProperty("epoch").GetString();
        await a2.SubscribeAsync("room-a");
        await a2.ReceiveTypeAsync("subscribed");
        await server.PublishAsync("room-a", "ranking_changed", new { userId = "lister-1", rank = 1 });
        await server.PublishAsync("room-a", "ranking_changed", new { userId = "lister-2", rank = 2 });
        await server.PublishAsync("room-b", "room_started", new { startsAt = "2026-11-25T18:00:00Z" });

        var response = await GetAsServiceAsync(server, "/api/rooms");

        Assert.Equal(HttpStatusCode.OK, response.Status);
        var rooms = response.Json.GetProperty("rooms").EnumerateArray().ToArray();
        Assert.Equal(["room-a", "room-b"], rooms.Select(r => r.GetProperty("bullPenId").GetString()));
        Assert.Equal((2, 2L, epochA), (rooms[0].GetProperty("subscribers").GetInt32(), rooms[0].GetProperty("seq").GetInt64(),
            rooms[0].GetProperty("epoch").GetString()));
        Assert.Equal((0, 1L), (rooms[1].GetProperty("subscribers").GetInt32(), rooms[1].GetProperty("seq").GetInt64()));
        Assert.Equal(16, rooms[1].GetProperty("epoch").GetString()!.Length);
    }

    [Fact]
    public async Task Listing_a_server_with_no_rooms_is_an_empty_list()
    {
        await using var server = await TestServer.StartAsync();
        var response = await GetAsServiceAsync(server, "/api/rooms");
        Assert.Equal(HttpStatusCode.OK, response.Status);
        Assert.Equal("""{"rooms":[],"next":null}""", response.Text);
    }

    [Fact]
    public async Task One_room_shows_the_subscribed_snapshot_and_the_distinct_users_subscribed()
    {
        var room = E2E.Room("inspect");
        await using var zed = await Server.ConnectAndSubscribeAsync("zed", room);
        await using var amy1 = await Server.ConnectAndSubscribeAsync("amy", room);
        await using var amy2 = await Server.ConnectAndSubscribeAsync("amy", room);
        await Server.PublishAsync(room, "leaderboard_update", new { entries = new[] { new { userId = "amy", rank = 1 } } });
        await Server.PublishAsync(room, "member_joined", new { userId = "zed" });
        await using var late = await Server.ConnectAsync("late");
        await late.SubscribeAsync(room);
        var subscribed = (await late.ReceiveTypeAsync("subscribed")).Data;
        await late.UnsubscribeAsync(room);
        await late.ReceiveTypeAsync("unsubscribed");

        var response = await GetAsServiceAsync(Server, RoomPath(room));

        Assert.Equal(HttpStatusCode.OK, response.Status);
        var json = response.Json;
        Assert.Equal(room, json.GetProperty("bullPenId").GetString());
        Assert.Equal(3, json.GetProperty("subscribers").GetInt32());
        Assert.Equal(2, json.GetProperty("seq").GetInt64());
        Assert.Equal(subscribed.GetProperty("epoch").GetString(), json.GetProperty("epoch").GetString());
        Assert.Equal(subscribed.GetProperty("state").GetRawText(), json.GetProperty("state").GetRawText());
        Assert.Equal(1, json.GetProperty("state").GetProperty("leaderboard").GetProperty("entries").GetArrayLength());
        Assert.Equal(["amy", "zed"], json.GetProperty("users").EnumerateArray().Select(u => u.GetString()));
    }

    [Fact]
    public async Task A_room_whose_id_contains_a_slash_is_found_by_its_escaped_id()
    {
        var room = "desk/" + Guid.NewGuid().ToString("N");
        await using var client = await Server.ConnectAndSubscribeAsync("slash-user", room);

        var response = await GetAsServiceAsync(Server, RoomPath(room));

        Assert.Equal(HttpStatusCode.OK, response.Status);
        Assert.Equal(room, response.Json.GetProperty("bullPenId").GetString());
        Assert.Equal(["slash-user"], response.Json.GetProperty("users").EnumerateArray().Select(u => u.GetString()));
    }

    [Fact]
    public async Task A_room_that_is_not_running_is_404_room_not_found_and_looking_does_not_start_it()
    {
        await using var server = await TestServer.StartAsync();

        var response = await GetAsServiceAsync(server, RoomPath("nobody-here"));

        Assert.Equal(HttpStatusCode.NotFound, response.Status);
        Assert.Equal("room_not_found", response.ErrorCode);
        Assert.Contains("nobody-here", response.ErrorMessage);
        Assert.Equal(0, (await server.HealthAsync()).Rooms);
        Assert.Equal("""{"rooms":[],"next":null}""", (await GetAsServiceAsync(server, "/api/rooms")).Text);
    }

    [Fact]
    public async Task Looking_at_an_idle_room_does_not_keep_it_from_stopping()
    {
        await using var server = await TestServer.StartAsync("traderoom.rooms.idle-timeout = 300ms");
        var room = E2E.Room("idle");
        await server.PublishAsync(room, "room_started", new { startsAt = "2026-11-25T18:00:00Z" });

        // Polled far more often than the idle timeout: a look that counted as activity would keep the room forever.
        var gone = await Eventually.MatchAsync(async () =>
            {
                await GetAsServiceAsync(server, "/api/rooms");
                return await GetAsServiceAsync(server, RoomPath(room));
            },
            r => r.Status == HttpStatusCode.NotFound, "the idle room to stop");

        Assert.Equal("room_not_found", gone.ErrorCode);
        await server.WaitForHealthAsync(h => h.Rooms == 0, "no rooms");
    }

    [Fact]
    public async Task An_invalid_room_id_is_400_invalid_room()
    {
        var response = await GetAsServiceAsync(Server, RoomPath(new string('x', 300)));
        Assert.Equal(HttpStatusCode.BadRequest, response.Status);
        Assert.Equal("invalid_room", response.ErrorCode);
    }

    [Theory]
    [InlineData("/api/rooms")]
    [InlineData("/api/rooms/some-room")]
    public async Task Without_a_valid_token_it_is_401_and_with_a_user_token_403(string path)
    {
        var none = await GetAsync(Server, path, null);
        Assert.Equal((HttpStatusCode.Unauthorized, "unauthorized"), (none.Status, none.ErrorCode));
        Assert.Equal("Bearer", none.Headers.WwwAuthenticate.Single().Scheme);

        var forged = await GetAsync(Server, path, new TradeRoom.Actors.Auth.TokenIssuer("another-secret-0123456789-0123456789-abc").ServiceToken("x", TimeSpan.FromMinutes(1)));
        Assert.Equal((HttpStatusCode.Unauthorized, "unauthorized"), (forged.Status, forged.ErrorCode));

        var user = await GetAsync(Server, path, Server.UserToken("curious-trader"));
        Assert.Equal((HttpStatusCode.Forbidden, "forbidden"), (user.Status, user.ErrorCode));
        Assert.Contains("service", user.ErrorMessage);
    }
}
