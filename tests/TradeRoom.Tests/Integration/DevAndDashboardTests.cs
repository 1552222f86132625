using System.Net;
using System.Text.Json;
using TradeRoom.Actors.Auth;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Integration;

/// <summary>A server in Development: the dev token endpoint is mapped there.</summary>
public sealed class DevelopmentServerFixture : IAsyncLifetime
{
    public TestServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await TestServer.StartAsync(environment: "Development");

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary><c>GET /api/dev/token</c> in Development: real tokens, signed with the server's secret, that the server accepts.</summary>
public class DevTokenEndpointTests(DevelopmentServerFixture fixture) : IClassFixture<DevelopmentServerFixture>
{
    private TestServer Server => fixture.Server;

    [Fact]
    public async Task A_user_token_is_signed_with_the_server_secret_for_24_hours_and_authenticates_a_socket()
    {
        var before = DateTimeOffset.UtcNow;
        var response = await Server.GetJsonAsync("/api/dev/token?userId=ava");

        Assert.Equal(HttpStatusCode.OK, response.Status);
        Assert.Equal("application/json", response.MediaType);
        var token = response.Json.GetProperty("token").GetString()!;
        Assert.Equal("ava", response.Json.GetProperty("userId").GetString());
        var expiresAt = response.Json.GetProperty("expiresAt").GetDateTimeOffset();
        Assert.InRange(expiresAt, before.AddHours(24).AddSeconds(-2), DateTimeOffset.UtcNow.AddHours(24).AddSeconds(1));

        var outcome = await new JwtValidator(TestServer.Secret, TimeSpan.Zero, requireExp: true).ValidateAsync(token);
        Assert.True(outcome.IsValid, outcome.ErrorMessage);
        Assert.Equal(("ava", (string?)null), (outcome.UserId, outcome.Role));
        Assert.Equal(expiresAt.ToUnixTimeSeconds(), outcome.Expires!.Value.ToUnixTimeSeconds());

        await using var client = await WsClient.ConnectAsync(Server.WsUri);
        await client.SendAsync(new { type = "auth", data = new { token } });
        var reply = await client.ReceiveAsync();
        Assert.Equal("auth_success", reply.Type);
        Assert.Equal("ava", reply.Data.GetProperty("userId").GetString());
    }

    [Fact]
    public async Task A_service_token_publishes_and_a_user_token_is_forbidden_to()
    {
        var service = (await Server.GetJsonAsync("/api/dev/token?userId=pricing&role=service")).Json.GetProperty("token").GetString()!;
        var user = (await Server.GetJsonAsync("/api/dev/token?userId=pricing")).Json.GetProperty("token").GetString()!;
        var room = "dev-" + Guid.NewGuid().ToString("N");
        const string body = """{"type":"member_joined","data":{"userId":"u1"}}""";

        var published = await Server.PostJsonAsync($"/api/rooms/{room}/events", body, service);
        var refused = await Server.PostJsonAsync($"/api/rooms/{room}/events", body, user);

        Assert.Equal(HttpStatusCode.Accepted, published.Status);
        Assert.Equal((HttpStatusCode.Forbidden, "forbidden"), (refused.Status, refused.ErrorCode));
    }

    [Theory]
    [InlineData("", "userId is missing")]
    [InlineData("?userId=", "userId is missing")]
    [InlineData("?userId=%20%20", "userId is missing")]
    [InlineData("?userId=%20ava", "surrounding spaces")]
    [InlineData("?userId=a%0Ab", "control characters")]
    [InlineData("?userId=ava&role=admin", "role may only be \"service\"")]
    public async Task A_missing_or_invalid_parameter_is_a_400_that_says_what_is_wrong(string query, string message)
    {
        var response = await Server.GetJsonAsync("/api/dev/token" + query);

        Assert.Equal((HttpStatusCode.BadRequest, "invalid_request"), (response.Status, response.ErrorCode));
        Assert.Contains(message, response.ErrorMessage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_userId_over_128_characters_is_a_400()
    {
        var response = await Server.GetJsonAsync("/api/dev/token?userId=" + new string('u', 129));

        Assert.Equal((HttpStatusCode.BadRequest, "invalid_request"), (response.Status, response.ErrorCode));
        Assert.Contains("128", response.ErrorMessage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_dashboard_config_says_Development_and_where_the_WebSocket_port_is()
    {
        var response = await Server.GetJsonAsync("/api/dashboard/config");

        Assert.Equal(HttpStatusCode.OK, response.Status);
        Assert.Equal($"ws://127.0.0.1:{Server.WsPort}/ws", response.Json.GetProperty("wsUrl").GetString());
        Assert.True(response.Json.GetProperty("development").GetBoolean());
        Assert.False(response.Json.GetProperty("demo").GetProperty("enabled").GetBoolean());
        Assert.Equal("demo", response.Json.GetProperty("demo").GetProperty("bullPenId").GetString());
    }
}

/// <summary>Outside Development (the tests' "Testing" environment) and the dashboard's static files.</summary>
public class DashboardHostingTests(SharedServerFixture fixture) : IClassFixture<SharedServerFixture>
{
    private TestServer Server => fixture.Server;

    [Fact]
    public async Task Outside_Development_the_dev_token_route_is_not_mapped_and_answers_the_JSON_404()
    {
        var response = await Server.GetJsonAsync("/api/dev/token?userId=ava");

        Assert.Equal((HttpStatusCode.NotFound, "not_found"), (response.Status, response.ErrorCode));
    }

    [Fact]
    public async Task Outside_Development_the_dashboard_config_says_so()
    {
        var response = await Server.GetJsonAsync("/api/dashboard/config");

        Assert.False(response.Json.GetProperty("development").GetBoolean());
        Assert.Equal($"ws://127.0.0.1:{Server.WsPort}/ws", response.Json.GetProperty("wsUrl").GetString());
    }

    [Theory]
    [InlineData("evil.example")]
    [InlineData("evil.example:4000")]
    [InlineData("10.66.66.66")]
    public async Task A_forged_Host_header_never_reaches_the_wsUrl(string host)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/dashboard/config");
        request.Headers.Host = host;

        var response = await ApiResponse.ReadAsync(Server.Http.SendAsync(request));

        Assert.Equal(HttpStatusCode.OK, response.Status);
        // The address the client really connected to, never the header's.
        Assert.Equal($"ws://127.0.0.1:{Server.WsPort}/ws", response.Json.GetProperty("wsUrl").GetString());
    }

    [Theory]
    [InlineData("localhost", "localhost")]
    [InlineData("127.0.0.1", "127.0.0.1")]
    [InlineData("[::1]", "[::1]")]
    public async Task A_local_Host_header_is_kept(string host, string expected)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/dashboard/config");
        request.Headers.Host = host;

        var response = await ApiResponse.ReadAsync(Server.Http.SendAsync(request));

        Assert.Equal($"ws://{expected}:{Server.WsPort}/ws", response.Json.GetProperty("wsUrl").GetString());
    }

    [Fact]
    public async Task The_root_serves_the_dashboard_page()
    {
        var response = await ApiResponse.ReadAsync(Server.Http.GetAsync("/"));

        Assert.Equal(HttpStatusCode.OK, response.Status);
        Assert.Equal("text/html", response.MediaType);
        Assert.Contains("<title>TradeRoom · live dashboard</title>", response.Text, StringComparison.Ordinal);
        Assert.Contains("src=\"dashboard.js\"", response.Text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/dashboard.js", "text/javascript", "from \"./traderoom-client.js\"")]
    [InlineData("/dashboard.css", "text/css", "#leaderboard")]
    public async Task The_dashboard_assets_are_served_with_their_types(string path, string mediaType, string content)
    {
        var response = await ApiResponse.ReadAsync(Server.Http.GetAsync(path));

        Assert.Equal((HttpStatusCode.OK, mediaType), (response.Status, response.MediaType));
        Assert.Contains(content, response.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_JavaScript_client_is_served_from_its_one_copy_in_clients_js()
    {
        var source = await File.ReadAllTextAsync(Path.Combine(RepositoryRoot.Path, "clients", "js", "traderoom-client.js"));

        var response = await ApiResponse.ReadAsync(Server.Http.GetAsync("/traderoom-client.js"));

        Assert.Equal((HttpStatusCode.OK, "text/javascript"), (response.Status, response.MediaType));
        Assert.Equal(source, response.Text);
        Assert.Contains("export class TradeRoomClient", response.Text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("GET", "/api/unknown")]
    [InlineData("GET", "/no-such-page.html")]
    [InlineData("POST", "/")]
    public async Task Paths_that_are_neither_API_nor_dashboard_still_get_the_JSON_404(string method, string path)
    {
        var response = await ApiResponse.ReadAsync(Server.Http.SendAsync(new HttpRequestMessage(new HttpMethod(method), path)));

        Assert.Equal((HttpStatusCode.NotFound, "not_found"), (response.Status, response.ErrorCode));
    }
}

/// <summary>The top of the repository (where clients/ and tests/ are), found from the test binary's folder.</summary>
public static class RepositoryRoot
{
    public static string Path { get; } = Find();

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "TradeRoom.Actors.sln")))
                return dir.FullName;
        }
        throw new InvalidOperationException($"no TradeRoom.Actors.sln above {AppContext.BaseDirectory}");
    }
}

/// <summary>The demo trade room, end to end: published through the facade, seen by real WebSocket subscribers.</summary>
public class DemoFeedTests
{
    private const string DemoHocon = """
        traderoom.demo {
          enabled = on
          bull-pen-id = "demo-e2e"
          tick-interval = 50ms
          round-length = 10s
        }
        """;

    [Fact]
    public async Task A_subscriber_gets_leaderboard_updates_and_a_later_subscriber_a_snapshot_with_the_leaderboard()
    {
        await using var server = await TestServer.StartAsync(DemoHocon);
        await using var watcher = await server.ConnectAndSubscribeAsync("watcher", "demo-e2e");

        var updates = new List<Frame>();
        while (updates.Count < 3)
            updates.Add(await watcher.ReceiveTypeAsync("leaderboard_update", TimeSpan.FromSeconds(5)));

        Assert.True(updates[0].Seq < updates[1].Seq && updates[1].Seq < updates[2].Seq);
        var entries = updates[^1].Data.GetProperty("entries").EnumerateArray().ToList();
        Assert.True(entries.Count >= 2, updates[^1].Raw);
        Assert.Equal(Enumerable.Range(1, entries.Count), entries.Select(e => e.GetProperty("rank").GetInt32()));

        await using var late = await server.ConnectAsync("late");
        await late.SendAsync(new { type = "subscribe_room", data = new { bullPenId = "demo-e2e" } });
        var subscribed = await late.ReceiveTypeAsync("subscribed");
        var state = subscribed.Data.GetProperty("state");
        Assert.True(state.GetProperty("leaderboard").GetProperty("entries").GetArrayLength() >= 2, subscribed.Raw);
        Assert.NotEmpty(state.GetProperty("members").EnumerateArray());
        Assert.Contains(state.GetProperty("room").GetProperty("status").GetString(), new[] { "active", "ended", "waiting" });
    }

    [Fact]
    public async Task The_demo_user_receives_its_own_private_orders_and_nobody_elses()
    {
        await using var server = await TestServer.StartAsync(DemoHocon);
        await using var demoUser = await server.ConnectAndSubscribeAsync("demo-user", "demo-e2e");

        var privateTypes = new HashSet<string> { "order_executed", "order_failed", "order_cancelled", "position_update", "position_closed", "portfolio_update" };
        var seen = new List<Frame>();
        // Every trader opens with a buy at the round's start, the demo user included.
        while (!seen.Any(f => f.Type == "order_executed"))
        {
            var frame = await demoUser.ReceiveAsync(TimeSpan.FromSeconds(5));
            if (privateTypes.Contains(frame.Type))
                seen.Add(frame);
        }

        Assert.All(seen, f => Assert.Equal("demo-user", f.Data.GetProperty("userId").GetString()));
    }

    [Fact]
    public async Task Without_the_switch_no_demo_room_exists()
    {
        await using var server = await TestServer.StartAsync();

        var config = await server.GetJsonAsync("/api/dashboard/config");
        var health = await server.GetJsonAsync("/api/health");

        Assert.False(config.Json.GetProperty("demo").GetProperty("enabled").GetBoolean());
        Assert.Equal(0, health.Json.GetProperty("rooms").GetInt32());
    }
}

/// <summary>The dashboard's WebSocket URL from the settings: <c>http.public-ws-url</c> and <c>http.public-hosts</c>.</summary>
public class DashboardPublicUrlTests
{
    [Fact]
    public async Task A_configured_public_ws_url_is_what_the_page_gets_whatever_the_Host()
    {
        await using var server = await TestServer.StartAsync("traderoom.http.public-ws-url = \"wss://rooms.example.com/ws\"");
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/dashboard/config");
        request.Headers.Host = "evil.example";

        var response = await ApiResponse.ReadAsync(server.Http.SendAsync(request));

        Assert.Equal("wss://rooms.example.com/ws", response.Json.GetProperty("wsUrl").GetString());
    }

    [Fact]
    public async Task A_Host_named_in_public_hosts_is_kept_and_another_is_not()
    {
        await using var server = await TestServer.StartAsync("traderoom.http.public-hosts = [\"rooms.example.com\"]");
        using var named = new HttpRequestMessage(HttpMethod.Get, "/api/dashboard/config");
        named.Headers.Host = "ROOMS.example.com:8080";
        using var other = new HttpRequestMessage(HttpMethod.Get, "/api/dashboard/config");
        other.Headers.Host = "rooms.example.com.evil.example";

        var kept = await ApiResponse.ReadAsync(server.Http.SendAsync(named));
        var replaced = await ApiResponse.ReadAsync(server.Http.SendAsync(other));

        Assert.Equal($"ws://ROOMS.example.com:{server.WsPort}/ws", kept.Json.GetProperty("wsUrl").GetString());
        Assert.Equal($"ws://127.0.0.1:{server.WsPort}/ws", replaced.Json.GetProperty("wsUrl").GetString());
    }

    [Fact]
    public async Task A_list_of_public_ws_urls_reaches_the_page_whole_and_in_order()
    {
        await using var server = await TestServer.StartAsync(
            "traderoom.http.public-ws-url = [\"wss://node-a.example.com/ws\", \"wss://node-b.example.com/ws\"]");

        var response = await server.GetJsonAsync("/api/dashboard/config");

        Assert.Equal<string[]>(["wss://node-a.example.com/ws", "wss://node-b.example.com/ws"],
            response.Json.GetProperty("wsUrls").EnumerateArray().Select(url => url.GetString()!).ToArray());
        Assert.Equal("wss://node-a.example.com/ws", response.Json.GetProperty("wsUrl").GetString());
    }

    [Fact]
    public async Task Without_a_public_ws_url_wsUrls_holds_the_one_built_from_the_request()
    {
        await using var server = await TestServer.StartAsync();

        var response = await server.GetJsonAsync("/api/dashboard/config");

        Assert.Equal<string[]>([$"ws://127.0.0.1:{server.WsPort}/ws"],
            response.Json.GetProperty("wsUrls").EnumerateArray().Select(url => url.GetString()!).ToArray());
    }

    [Fact]
    public async Task A_public_ws_url_list_with_an_entry_that_is_not_ws_or_wss_stops_the_start()
    {
        var failure = await Assert.ThrowsAnyAsync<Exception>(() =>
            TestServer.StartAsync("traderoom.http.public-ws-url = [\"wss://node-a.example.com/ws\", \"https://node-b.example.com/ws\"]"));

        Assert.Contains("https://node-b.example.com/ws", failure.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_public_ws_url_that_is_not_ws_or_wss_stops_the_start()
    {
        var failure = await Assert.ThrowsAnyAsync<Exception>(() =>
            TestServer.StartAsync("traderoom.http.public-ws-url = \"http://rooms.example.com/ws\""));

        Assert.Contains("public-ws-url", failure.ToString(), StringComparison.Ordinal);
    }
}
