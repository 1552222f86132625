using System.Net.WebSockets;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Integration;

/// <summary>Connection and room lifecycles, read from /api/health: each test has its own server, since they count.</summary>
public class WebSocketLifecycleTests
{
    private const string FastIdleRooms = "traderoom.rooms.idle-timeout = 500ms";

    [Fact]
    public async Task Room_is_stopped_once_idle_after_its_last_subscriber_unsubscribes_and_comes_back_with_its_seq()
    {
        await using var server = await TestServer.StartAsync(FastIdleRooms);
        await using var client = await server.ConnectAndSubscribeAsync("u1", "idle-room");
        await using var other = await server.ConnectAndSubscribeAsync("u2", "idle-room");
        await server.PublishAsync("idle-room", "room_started", new { });
        await server.PublishAsync("idle-room", "member_joined", new { userId = "u2" });

        var busy = await server.HealthAsync();
        Assert.Equal(("ok", 2, 1), (busy.Status, busy.Connections, busy.Rooms));
        Assert.True(busy.UptimeSeconds >= 0);

        await other.UnsubscribeAsync("idle-room");
        await other.ReceiveTypeAsync("unsubscribed");
        await client.UnsubscribeAsync("idle-room");
        await client.ReceiveTypeAsync("unsubscribed");

        var idle = await server.WaitForHealthAsync(h => h.Rooms == 0, "the idle room to stop");
        Assert.Equal(2, idle.Connections);

        // The next use starts the room again from its store: its seq goes on (DurableRoomTests checks the rest).
        await client.SubscribeAsync("idle-room");
        var subscribed = await client.ReceiveAsync();
        Assert.Equal(("subscribed", 2L), (subscribed.Type, subscribed.Data.GetProperty("seq").GetInt64()));
        Assert.Equal(1, (await server.HealthAsync()).Rooms);

        await client.Socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
        await other.Socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
        await server.WaitForHealthAsync(h => h is { Rooms: 0, Connections: 0 }, "rooms and connections to drop to 0");
    }

    [Fact]
    public async Task Room_and_connection_are_released_after_the_subscribers_socket_is_aborted()
    {
        await using var server = await TestServer.StartAsync(FastIdleRooms);
        await using var client = await server.ConnectAndSubscribeAsync("u1", "aborted-room");
        await server.PublishAsync("aborted-room", "order_executed", new { orderId = "o1", userId = "u1" });
        Assert.Equal("order_executed", (await client.ReceiveAsync()).Type);
        var busy = await server.HealthAsync();
        Assert.Equal((1, 1), (busy.Connections, busy.Rooms));

        client.Socket.Abort();

        await server.WaitForHealthAsync(h => h is { Rooms: 0, Connections: 0 }, "rooms and connections to drop to 0 after an abort");
    }

    [Fact]
    public async Task Client_close_1000_is_answered_with_1000_and_the_connection_count_returns_to_zero()
    {
        await using var server = await TestServer.StartAsync();
        await using var client = await server.ConnectAndSubscribeAsync("u1", "closing-room");
        await using var idle = await WsClient.ConnectAsync(server.WsUri); // never authenticates
        Assert.Empty(await idle.BarrierAsync());
        Assert.Equal(2, (await server.HealthAsync()).Connections);

        using var timeout = new CancellationTokenSource(WsClient.DefaultTimeout);
        await client.Socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", timeout.Token);
        await idle.Socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", timeout.Token);

        Assert.Equal(WebSocketState.Closed, client.Socket.State);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, client.Socket.CloseStatus);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, idle.Socket.CloseStatus);
        await server.WaitForHealthAsync(h => h.Connections == 0, "the connection count to return to 0");
    }

    [Fact]
    public async Task Server_shutdown_closes_a_connected_client_with_1001()
    {
        var server = await TestServer.StartAsync();
        try
        {
            await using var client = await server.ConnectAndSubscribeAsync("u1", "shutdown-room");
            await using var unauthenticated = await WsClient.ConnectAsync(server.WsUri);
            Assert.Empty(await unauthenticated.BarrierAsync());

            var stopping = server.App.StopAsync();

            Assert.Equal(1001, await client.ReceiveCloseAsync());
            Assert.Equal(1001, await unauthenticated.ReceiveCloseAsync());

            // Complete the closing handshake so the server need not wait for its close timeout.
            await client.Socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", CancellationToken.None);
            await unauthenticated.Socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", CancellationToken.None);
            await stopping.WaitAsync(TimeSpan.FromSeconds(20));
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task Room_that_only_received_published_events_is_stopped_once_idle()
    {
        await using var server = await TestServer.StartAsync(FastIdleRooms);
        await server.PublishAsync("publish-only", "room_state_changed", new { state = "open" });
        Assert.Equal(1, (await server.HealthAsync()).Rooms);

        await server.WaitForHealthAsync(h => h.Rooms == 0, "the publish-only room to stop");
    }

    [Fact]
    public async Task Unsubscribing_from_a_room_that_does_not_exist_starts_no_room()
    {
        await using var server = await TestServer.StartAsync();
        await using var client = await server.ConnectAsync("u1");

        await client.UnsubscribeAsync("ghost-room");
        Assert.Equal("unsubscribed", (await client.ReceiveAsync()).Type);

        var health = await server.HealthAsync();
        Assert.Equal((1, 0), (health.Connections, health.Rooms));
    }

    [Fact]
    public async Task Connections_closed_by_the_server_for_protocol_violations_are_released()
    {
        await using var server = await TestServer.StartAsync();
        await using var binary = await server.ConnectAndSubscribeAsync("u1", "violations");
        await using var oversized = await server.ConnectAndSubscribeAsync("u2", "violations");
        await using var badAuth = await WsClient.ConnectAsync(server.WsUri);
        Assert.Equal(3, (await server.HealthAsync()).Connections);

        await binary.SendBytesAsync([0xFF], WebSocketMessageType.Binary);
        await oversized.SendBytesAsync(new byte[65 * 1024]);
        await badAuth.SendAuthAsync("garbage");

        Assert.Equal(1003, await binary.ReceiveCloseAsync());
        Assert.Equal(1009, await oversized.ReceiveCloseAsync());
        Assert.Equal(4001, await badAuth.ReceiveCloseAsync());
        foreach (var client in new[] { binary, oversized, badAuth })
            await client.Socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", CancellationToken.None);

        await server.WaitForHealthAsync(h => h is { Connections: 0 }, "the closed connections to be released");
    }
}
