using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Akka.Actor;
using Microsoft.Extensions.DependencyInjection;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Integration;

/// <summary>
/// On the real server, what happens when a connection or a relay ends, now that nobody watches a connection: a client
/// that drops without unsubscribing leaves its room (the room's subscribers, <c>traderoom_subscriptions</c>) and the
/// connection count, a user at the per-user limit gets in again once one of its sockets drops, and a relay that stops
/// tells its clients <c>room_unavailable</c>.
/// </summary>
public class ConnectionEndTests
{
    private const string Subscriptions = "traderoom_subscriptions";

    private static async Task<JsonElement> RoomDetailsAsync(TestServer server, string room)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/api/rooms/" + Uri.EscapeDataString(room));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", server.ServiceToken());
        var response = await ApiResponse.ReadAsync(server.Http.SendAsync(request));
        Assert.Equal(HttpStatusCode.OK, response.Status);
        return response.Json;
    }

    /// <summary>Polls the room until it counts <paramref name="subscribers"/>; fails with the last answer at the deadline.</summary>
    private static async Task<JsonElement> WaitForSubscribersAsync(TestServer server, string room, int subscribers)
    {
        var deadline = DateTime.UtcNow + E2E.PollTimeout;
        while (true)
        {
            var details = await RoomDetailsAsync(server, room);
            if (details.GetProperty("subscribers").GetInt32() == subscribers)
                return details;
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"room {room} kept {details.GetProperty("subscribers").GetInt32()} subscribers, expected {subscribers}");
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task Client_that_drops_its_socket_without_unsubscribing_leaves_its_room_and_the_subscriptions_gauge()
    {
        await using var server = await TestServer.StartAsync();
        var room = E2E.Room("dropped");
        var before = await server.HealthAsync();
        await using var staying = await server.ConnectAndSubscribeAsync("stayer", room);
        var dropping = await server.ConnectAndSubscribeAsync("dropper", room);
        await server.WaitForMetricAsync(Subscriptions, 2);
        Assert.Equal(["dropper", "stayer"], (await WaitForSubscribersAsync(server, room, 2)).GetProperty("users").EnumerateArray().Select(u => u.GetString()));

        dropping.Socket.Abort(); // no close handshake, no unsubscribe: the TCP connection just ends
        await dropping.DisposeAsync();

        await server.WaitForMetricAsync(Subscriptions, 1);
        var details = await WaitForSubscribersAsync(server, room, 1);
        Assert.Equal(["stayer"], details.GetProperty("users").EnumerateArray().Select(u => u.GetString()));
        await server.WaitForHealthAsync(h => h.Connections == before.Connections + 1, "the dropped connection to be counted out");
        var seq = await server.PublishAsync(room, "leaderboard_update", new { entries = Array.Empty<object>() });
        Assert.Equal(seq, (await staying.ReceiveTypeAsync("leaderboard_update")).Seq);
    }

    [Fact]
    public async Task User_at_max_connections_per_user_gets_in_again_once_one_of_its_sockets_drops()
    {
        await using var server = await TestServer.StartAsync("traderoom.limits.max-connections-per-user = 1");
        var first = await server.ConnectAndSubscribeAsync("single", E2E.Room("single"));
        await using (var refused = await server.ConnectRawAsync(server.UserToken("single")))
        {
            var reply = await refused.ReceiveAsync();
            Assert.Equal(("auth_error", "too_many_connections"), (reply.Type, reply.Code));
            Assert.Equal(4009, await refused.ReceiveCloseAsync());
        }

        first.Socket.Abort();
        await first.DisposeAsync();

        var deadline = DateTime.UtcNow + E2E.PollTimeout;
        while (true)
        {
            await using var next = await server.ConnectRawAsync(server.UserToken("single"));
            var reply = await next.ReceiveAsync();
            if (reply.Type == "auth_success")
                break;
            Assert.Equal(("auth_error", "too_many_connections"), (reply.Type, reply.Code));
            if (DateTime.UtcNow > deadline)
                Assert.Fail("the user was not admitted again after its connection dropped");
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task Relay_that_stops_tells_its_clients_room_unavailable_naming_the_room_and_the_socket_stays_open()
    {
        await using var server = await TestServer.StartAsync();
        var room = E2E.Room("relay-stop");
        await using var client = await server.ConnectAndSubscribeAsync("follower", room);
        var system = server.App.Services.GetRequiredService<ActorSystem>();
        var relays = Assert.IsAssignableFrom<ActorRefWithCell>(await system.ActorSelection("/user/relays").ResolveOne(TimeSpan.FromSeconds(5)));
        var relay = Assert.Single(relays.Children); // the room's relay on this node: the only room followed here

        relay.Tell(PoisonPill.Instance);

        var error = await client.ReceiveTypeAsync("error");
        Assert.Equal("room_unavailable", error.Code);
        Assert.Equal(room, error.Data.GetProperty("bullPenId").GetString());
        Assert.Empty(await client.BarrierAsync()); // still open, and nothing else came
    }
}
