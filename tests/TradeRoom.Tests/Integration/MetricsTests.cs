using System.Net;
using System.Net.Sockets;
using System.Text;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Integration;

/// <summary><c>GET /metrics</c> on the real server: every metric is there, and each moves when what it counts happens.</summary>
public class MetricsTests
{
    private const string Open = "traderoom_connections_open";
    private const string Authenticated = "traderoom_connections_authenticated";
    private const string Rooms = "traderoom_rooms";
    private const string Subscriptions = "traderoom_subscriptions";
    private const string Frames = "traderoom_frames_delivered_total";
    private const string Bytes = "traderoom_bytes_sent_total";
    private const string LatencyCount = "traderoom_delivery_latency_seconds_count";

    private static string Events(string type) => $"traderoom_events_published_total{{type=\"{type}\"}}";
    private static string AuthFailures(string reason) => $"traderoom_auth_failures_total{{reason=\"{reason}\"}}";
    private static string Closes(int code, string reason) => $"traderoom_connections_closed_total{{code=\"{code}\",reason=\"{reason}\"}}";
    private static string Resumes(string outcome) => $"traderoom_resume_attempts_total{{outcome=\"{outcome}\"}}";

    [Fact]
    public async Task Metrics_are_exposed_in_prometheus_text_format_with_every_series_at_zero_on_a_fresh_server()
    {
        await using var server = await TestServer.StartAsync();
        using var response = await server.Http.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        var scrape = MetricsScrape.Parse(await response.Content.ReadAsStringAsync());

        foreach (var (name, type) in new[]
                 {
                     (Open, "gauge"), (Authenticated, "gauge"), (Rooms, "gauge"), (Subscriptions, "gauge"),
                     ("traderoom_events_published_total", "counter"), (Frames, "counter"), (Bytes, "counter"),
                     ("traderoom_auth_failures_total", "counter"), ("traderoom_connections_closed_total", "counter"),
                     ("traderoom_resume_attempts_total", "counter"), ("traderoom_delivery_latency_seconds", "histogram"),
                 })
            Assert.Contains($"# TYPE {name} {type}\n", scrape.Text);

        foreach (var series in new[]
                 {
                     Open, Authenticated, Rooms, Subscriptions, Frames, Bytes, LatencyCount,
                     Events("leaderboard_update"), Events("member_left"), AuthFailures("invalid_token"), AuthFailures("timeout"),
                     AuthFailures("token_expired"), AuthFailures("too_many_connections"), Closes(1000, "normal"),
                     Closes(4008, "slow_consumer"), Closes(4000, "heartbeat_timeout"), Closes(1008, "rate_limit"),
                     Resumes("recovered"), Resumes("not_recovered"),
                 })
            Assert.Equal(0, scrape[series]);
    }

    [Fact]
    public async Task Connecting_authenticating_and_subscribing_move_the_gauges_and_a_client_close_moves_them_back()
    {
        await using var server = await TestServer.StartAsync();
        var room = E2E.Room("gauges");

        await using (var anonymous = await WsClient.ConnectAsync(server.WsUri))
        {
            await server.WaitForMetricAsync(Open, 1);
            Assert.Equal(0, (await server.ScrapeAsync())[Authenticated]);

            await using var trader = await server.ConnectAndSubscribeAsync("gauge-user", room);
            var scrape = await server.WaitForMetricAsync(Open, 2);
            Assert.Equal(1, scrape[Authenticated]);
            Assert.Equal(1, scrape[Rooms]);
            Assert.Equal(1, scrape[Subscriptions]);
        }

        // Both clients closed with 1000.
        var after = await server.WaitForMetricAsync(Open, 0);
        Assert.Equal(0, after[Authenticated]);
        await server.WaitForMetricAsync(Subscriptions, 0);
        await server.WaitForMetricAsync(Closes(1000, "normal"), 2);
    }

    [Fact]
    public async Task Publishing_counts_events_by_type_and_every_frame_and_byte_the_clients_received()
    {
        await using var server = await TestServer.StartAsync();
        var room = E2E.Room("fanout");
        var clients = new[] { await server.ConnectAsync("u1"), await server.ConnectAsync("u2"), await server.ConnectAsync("u2") };
        var received = new List<Frame>();
        try
        {
            foreach (var client in clients)
            {
                await client.SubscribeAsync(room);
                received.Add(await client.ReceiveTypeAsync("subscribed"));
            }

            await server.PublishAsync(room, "leaderboard_update", new { entries = Array.Empty<object>() });
            await server.PublishAsync(room, "leaderboard_update", new { entries = Array.Empty<object>() });
            await server.PublishAsync(room, "order_executed", new { userId = "u2", symbol = "AAPL", qty = 1 });
            // 2 public events to 3 connections, 1 private event to the 2 connections of its user.
            foreach (var (client, count) in clients.Zip([2, 3, 3]))
            {
                for (var i = 0; i < count; i++)
                    received.Add(await client.ReceiveAsync());
            }
            Assert.Equal(8, received.Count(f => f.Type is "leaderboard_update" or "order_executed"));
            var scrape = await server.WaitForMetricAsync(Frames, 8);
            Assert.Equal(2, scrape[Events("leaderboard_update")]);
            Assert.Equal(1, scrape[Events("order_executed")]);
            Assert.Equal(0, scrape[Events("ranking_changed")]);
            Assert.Equal(8, scrape[LatencyCount]);
            Assert.True(scrape["traderoom_delivery_latency_seconds_sum"] > 0);

            // Bytes: every frame the clients received, as sent: the auth_success frames ConnectAsync read (user ids of
            // two characters each, and the node), then subscribed and the events.
            var authSuccess = $"{{\"type\":\"auth_success\",\"data\":{{\"userId\":\"u1\",\"node\":\"127.0.0.1:{server.WsPort}\"}}}}";
            var expectedBytes = received.Sum(f => Encoding.UTF8.GetByteCount(f.Raw)) + clients.Length * Encoding.UTF8.GetByteCount(authSuccess);
            Assert.Equal(expectedBytes, (await server.WaitForMetricAsync(Bytes, expectedBytes))[Bytes]);

            var health = System.Text.Json.JsonDocument.Parse(await server.Http.GetStringAsync("/api/health")).RootElement;
            Assert.Equal(3, health.GetProperty("eventsPublished").GetInt64());
            Assert.Equal(8, health.GetProperty("framesDelivered").GetInt64());
        }
        finally
        {
            foreach (var client in clients)
                await client.DisposeAsync();
        }
    }

    [Fact]
    public async Task Refused_tokens_an_auth_timeout_and_a_user_over_its_connection_limit_count_auth_failures_by_reason()
    {
        await using var server = await TestServer.StartAsync("""
            traderoom.websocket { auth-timeout = 300ms, close-timeout = 300ms }
            traderoom.limits.max-connections-per-user = 1
            """);

        await using var badToken = await WsClient.ConnectAsync(server.WsUri);
        await badToken.SendAuthAsync("not-a-jwt");
        Assert.Equal(4001, await badToken.ReceiveCloseAsync());

        await using var expired = await WsClient.ConnectAsync(server.WsUri);
        await expired.SendAuthAsync(server.Tokens.UserToken("late-user", TimeSpan.FromSeconds(-60)));
        Assert.Equal(4001, await expired.ReceiveCloseAsync());

        await using var silent = await WsClient.ConnectAsync(server.WsUri);
        Assert.Equal(4001, await silent.ReceiveCloseAsync());

        await using var admitted = await server.ConnectAsync("busy-user");
        await using var oneTooMany = await WsClient.ConnectAsync(server.WsUri);
        await oneTooMany.SendAuthAsync(server.UserToken("busy-user"));
        Assert.Equal(4009, await oneTooMany.ReceiveCloseAsync());

        var scrape = await server.WaitForMetricAsync(Closes(4001, "auth_failed"), 3);
        Assert.Equal(1, scrape[AuthFailures("invalid_token")]);
        Assert.Equal(1, scrape[AuthFailures("token_expired")]);
        Assert.Equal(1, scrape[AuthFailures("timeout")]);
        Assert.Equal(1, scrape[AuthFailures("too_many_connections")]);
        Assert.Equal(1, scrape[Authenticated]);
        await server.WaitForMetricAsync(Closes(4009, "too_many_connections"), 1);
    }

    [Fact]
    public async Task A_rate_limit_close_and_a_heartbeat_close_are_counted_by_code()
    {
        // The WebSocket's own pong timeout (heartbeat + ping interval after a ping) is a backstop that would abort
        // the silent socket (1006); a ping interval of 500 ms leaves the heartbeat close (4000) a full second ahead.
        await using var server = await TestServer.StartAsync("""
            traderoom.websocket { ping-interval = 500ms, heartbeat-timeout = 1s, slow-consumer-grace = 200ms, close-timeout = 300ms }
            traderoom.limits { messages-per-second = 1, message-burst = 1, flood-close-after = 2 }
            """);

        await using var flooder = await WsClient.ConnectAsync(server.WsUri);
        for (var i = 0; i < 4; i++)
            await flooder.SendAsync(new { type = "ping", data = new { n = i } });
        Assert.Equal(1008, await flooder.ReceiveCloseAsync());
        await server.WaitForMetricAsync(Closes(1008, "rate_limit"), 1);

        // A socket that never answers the server's pings.
        using var silent = new TcpClient();
        await silent.ConnectAsync(IPAddress.Loopback, server.WsPort);
        await silent.GetStream().WriteAsync(Encoding.ASCII.GetBytes(E2E.UpgradeRequest()));
        var scrape = await server.WaitForMetricAsync(Closes(4000, "heartbeat_timeout"), 1);
        Assert.Equal(0, scrape[Closes(4008, "slow_consumer")]);
    }

    [Fact]
    public async Task Resumes_are_counted_as_recovered_or_not_recovered()
    {
        await using var server = await TestServer.StartAsync();
        var room = E2E.Room("resume");
        await using var first = await server.ConnectAsync("resumer");
        await first.SubscribeAsync(room);
        var epoch = (await first.ReceiveTypeAsync("subscribed")).Data.GetProperty("epoch").GetString();
        await server.PublishAsync(room, "ranking_changed", new { userId = "resumer", rank = 1 });

        await using var second = await server.ConnectAsync("resumer");
        await second.SendAsync(new { type = "subscribe_room", data = new { bullPenId = room, sinceSeq = 0, epoch } });
        Assert.True((await second.ReceiveTypeAsync("subscribed")).Data.GetProperty("recovered").GetBoolean());
        await second.SendAsync(new { type = "subscribe_room", data = new { bullPenId = room, sinceSeq = 0, epoch = "another-epoch" } });
        Assert.False((await second.ReceiveTypeAsync("subscribed")).Data.GetProperty("recovered").GetBoolean());
        await second.SendAsync(new { type = "subscribe_room", data = new { bullPenId = room } }); // not a resume

        await second.BarrierAsync();
        var scrape = await server.ScrapeAsync();
        Assert.Equal(1, scrape[Resumes("recovered")]);
        Assert.Equal(1, scrape[Resumes("not_recovered")]);
    }

    [Fact]
    public async Task Servers_in_one_process_keep_their_own_counts()
    {
        await using var busy = await TestServer.StartAsync();
        await using var quiet = await TestServer.StartAsync();

        await busy.PublishAsync(E2E.Room("own-counts"), "room_started", new { startsAt = "2026-11-25T18:00:00Z" });

        Assert.Equal(1, (await busy.ScrapeAsync())[Events("room_started")]);
        Assert.Equal(0, (await quiet.ScrapeAsync())[Events("room_started")]);
    }
}
