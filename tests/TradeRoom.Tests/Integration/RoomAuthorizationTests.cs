using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using TradeRoom.Actors.Auth;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Integration;

/// <summary>
/// Room authorization end to end (traderoom.auth.rooms): claim mode with real tokens, a refresh that revokes a room,
/// and callback mode against a real HTTP endpoint the test runs as "the platform".
/// </summary>
public class RoomAuthorizationTests
{
    private static string TokenFor(TestServer server, string userId, params string[] rooms) =>
        server.Tokens.Create(userId, null, TimeSpan.FromMinutes(10), extraClaims: new Dictionary<string, object> { ["bullPens"] = rooms });

    private static async Task<WsClient> ConnectWithAsync(TestServer server, string token)
    {
        var client = await server.ConnectRawAsync();
        await client.SendAuthAsync(token);
        Assert.Equal("auth_success", (await client.ReceiveAsync()).Type);
        return client;
    }

    private static (string Type, string? Code, string? Room) Summary(Frame f) =>
        (f.Type, f.Type == "error" ? f.Data.GetProperty("code").GetString() : null,
            f.BullPenId ?? (f.Data.ValueKind == JsonValueKind.Object && f.Data.TryGetProperty("bullPenId", out var b) ? b.GetString() : null));

    /// <summary>The next <paramref name="count"/> frames, summarised and sorted (answers from rooms and the callback may come in any order).</summary>
    private static async Task<List<(string Type, string? Code, string? Room)>> NextAsync(WsClient client, int count)
    {
        var frames = new List<(string Type, string? Code, string? Room)>();
        for (var i = 0; i < count; i++)
            frames.Add(Summary(await client.ReceiveAsync(TimeSpan.FromSeconds(10))));
        return frames.OrderBy(f => f.Type, StringComparer.Ordinal).ThenBy(f => f.Room, StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// Proof that nothing of <paramref name="refused"/> reaches the client: an event published to it, then one to
    /// <paramref name="followed"/>; the next frame must be the second (publishes are in order, and so is delivery).
    /// </summary>
    private static async Task AssertNothingOfAsync(TestServer server, WsClient client, string refused, string followed)
    {
        await server.PublishAsync(refused, "ranking_changed", new { userId = "x", rank = 1 });
        await server.PublishAsync(followed, "ranking_changed", new { userId = "x", rank = 2 });
        Assert.Equal(("ranking_changed", null, followed), Summary(await client.ReceiveAsync()));
    }

    [Fact]
    public async Task Claim_mode_allows_listed_rooms_and_prefixes_and_refuses_others_with_forbidden_sending_nothing_of_them()
    {
        await using var server = await TestServer.StartAsync("traderoom.auth.rooms = claim");
        await using var client = await ConnectWithAsync(server, TokenFor(server, "claimer", "vip-1", "league-*"));

        await client.SubscribeAsync("vip-1");
        await client.SubscribeAsync("league-east");
        await client.SubscribeAsync("private-2");
        await client.SubscribeAsync("leagu");

        Assert.Equal([("error", "forbidden", "leagu"), ("error", "forbidden", "private-2"),
            ("subscribed", null, "league-east"), ("subscribed", null, "vip-1")], await NextAsync(client, 4));
        await AssertNothingOfAsync(server, client, "private-2", "vip-1");
    }

    [Fact]
    public async Task Claim_mode_without_the_claim_refuses_every_room_and_keeps_the_connection_open()
    {
        await using var server = await TestServer.StartAsync("traderoom.auth.rooms = claim");
        await using var client = await server.ConnectAsync("no-claim");

        await client.SubscribeAsync("any-room");

        Assert.Equal([("error", "forbidden", "any-room")], await NextAsync(client, 1));
        Assert.Empty(await client.BarrierAsync());
    }

    [Fact]
    public async Task A_refreshed_token_that_no_longer_lists_a_room_leaves_it_with_forbidden_while_the_others_flow()
    {
        await using var server = await TestServer.StartAsync("traderoom.auth.rooms = claim");
        await using var client = await ConnectWithAsync(server, TokenFor(server, "refresher", "keep", "drop"));
        await client.SubscribeAsync("keep");
        await client.SubscribeAsync("drop");
        Assert.Equal([("subscribed", null, "drop"), ("subscribed", null, "keep")], await NextAsync(client, 2));

        await client.SendAuthAsync(TokenFor(server, "refresher", "keep"));

        Assert.Equal([("auth_success", null, null), ("error", "forbidden", "drop"), ("unsubscribed", null, "drop")], await NextAsync(client, 3));
        await AssertNothingOfAsync(server, client, "drop", "keep");
    }

    [Fact]
    public async Task A_service_token_cannot_open_a_trader_session_unless_allowed()
    {
        await using var server = await TestServer.StartAsync();
        await using var refused = await server.ConnectRawAsync(server.ServiceToken());

        var error = await refused.ReceiveAsync();
        Assert.Equal(("auth_error", "invalid_token"), (error.Type, error.Data.GetProperty("code").GetString()));
        Assert.Equal(4001, await refused.ReceiveCloseAsync());

        await using var allowing = await TestServer.StartAsync("traderoom.websocket.allow-service-tokens = on");
        await using var accepted = await allowing.ConnectRawAsync(allowing.ServiceToken());
        Assert.Equal("auth_success", (await accepted.ReceiveAsync()).Type);
    }

    /// <summary>"The platform": answers POST /authz from the room id's prefix, counting calls and calls in flight.</summary>
    private sealed class Platform : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private int _inFlight;
        private int _calls;
        private int _maxInFlight;

        private Platform(WebApplication app) => _app = app;

        public string Url { get; private set; } = "";
        public int Calls => Volatile.Read(ref _calls);
        public int MaxInFlight => Volatile.Read(ref _maxInFlight);
        public List<string> BadTokens { get; } = [];

        public static async Task<Platform> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            var app = builder.Build();
            var platform = new Platform(app);
            var validator = new JwtValidator(TestServer.Secret, TimeSpan.Zero, requireExp: true);
            app.MapPost("/authz", async (HttpContext http) =>
            {
                var auth = http.Request.Headers.Authorization.ToString();
                var outcome = await validator.ValidateAsync(auth.StartsWith("Bearer ", StringComparison.Ordinal) ? auth[7..] : "");
                if (!outcome.IsService)
                {
                    lock (platform.BadTokens)
                        platform.BadTokens.Add(auth);
                    return Results.StatusCode(401);
                }
                var body = await JsonSerializer.DeserializeAsync<JsonElement>(http.Request.Body);
                var room = body.GetProperty("bullPenId").GetString()!;
                var user = body.GetProperty("userId").GetString()!;
                Interlocked.Increment(ref platform._calls);
                var now = Interlocked.Increment(ref platform._inFlight);
                lock (platform)
                    platform._maxInFlight = Math.Max(platform._maxInFlight, now);
                try
                {
                    if (room.StartsWith("held-", StringComparison.Ordinal))
                        await Task.Delay(200);
                    if (room.StartsWith("slow-", StringComparison.Ordinal))
                        await Task.Delay(TimeSpan.FromSeconds(10), http.RequestAborted);
                    if (room.StartsWith("boom-", StringComparison.Ordinal))
                        return Results.StatusCode(500);
                    if (room.StartsWith("forbid-", StringComparison.Ordinal))
                        return Results.StatusCode(403);
                    return Results.Json(new { allow = !room.StartsWith("no-", StringComparison.Ordinal) && user != "banned" });
                }
                finally
                {
                    Interlocked.Decrement(ref platform._inFlight);
                }
            });
            await app.StartAsync();
            platform.Url = app.Urls.First() + "/authz";
            return platform;
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }

    private static Task<TestServer> StartWithCallbackAsync(Platform platform, string timeout = "2s", int concurrency = 32) =>
        TestServer.StartAsync($$"""
            traderoom.auth {
              rooms = callback
              callback { url = "{{platform.Url}}", timeout = {{timeout}}, max-concurrency = {{concurrency}} }
            }
            """);

    [Fact]
    public async Task Callback_mode_asks_the_platform_with_a_service_token_caches_its_answers_and_refuses_with_forbidden()
    {
        await using var platform = await Platform.StartAsync();
        await using var server = await StartWithCallbackAsync(platform);
        await using var client = await server.ConnectAsync("caller");

        await client.SubscribeAsync("ok-room");
        await client.SubscribeAsync("no-room");
        await client.SubscribeAsync("forbid-room");
        Assert.Equal([("error", "forbidden", "forbid-room"), ("error", "forbidden", "no-room"), ("subscribed", null, "ok-room")],
            await NextAsync(client, 3));
        Assert.Equal(3, platform.Calls);
        Assert.Empty(platform.BadTokens);
        await AssertNothingOfAsync(server, client, "no-room", "ok-room");

        // The same user again, on another connection: answered from the cache (allow and deny alike).
        await using var again = await server.ConnectAsync("caller");
        await again.SubscribeAsync("ok-room");
        await again.SubscribeAsync("no-room");
        Assert.Equal([("error", "forbidden", "no-room"), ("subscribed", null, "ok-room")], await NextAsync(again, 2));
        Assert.Equal(3, platform.Calls);

        // Another user is asked about on its own.
        await using var banned = await server.ConnectAsync("banned");
        await banned.SubscribeAsync("ok-room");
        Assert.Equal([("error", "forbidden", "ok-room")], await NextAsync(banned, 1));
        Assert.Equal(4, platform.Calls);
    }

    [Fact]
    public async Task Callback_that_times_out_or_fails_fails_closed_with_authorization_unavailable_and_nothing_of_the_room()
    {
        await using var platform = await Platform.StartAsync();
        await using var server = await StartWithCallbackAsync(platform, timeout: "500ms");
        await using var client = await server.ConnectAsync("unlucky");
        await server.PublishAsync("slow-room", "ranking_changed", new { userId = "x", rank = 1 });

        await client.SubscribeAsync("slow-room");
        await client.SubscribeAsync("boom-room");
        await client.SubscribeAsync("ok-room");

        Assert.Equal([("error", "authorization_unavailable", "boom-room"), ("error", "authorization_unavailable", "slow-room"),
            ("subscribed", null, "ok-room")], await NextAsync(client, 3));
        await AssertNothingOfAsync(server, client, "slow-room", "ok-room");

        // Not cached: asked again next time.
        var calls = platform.Calls;
        await client.SubscribeAsync("boom-room");
        Assert.Equal([("error", "authorization_unavailable", "boom-room")], await NextAsync(client, 1));
        Assert.Equal(calls + 1, platform.Calls);
    }

    [Fact]
    public async Task Callback_calls_in_flight_stay_within_max_concurrency()
    {
        await using var platform = await Platform.StartAsync();
        await using var server = await StartWithCallbackAsync(platform, timeout: "10s", concurrency: 2);
        await using var client = await server.ConnectAsync("busy");

        for (var i = 0; i < 8; i++)
            await client.SubscribeAsync($"held-{i}");
        var subscribed = new List<string>();
        while (subscribed.Count < 8)
        {
            var frame = await client.ReceiveAsync(TimeSpan.FromSeconds(10));
            Assert.Equal("subscribed", frame.Type);
            subscribed.Add(frame.Data.GetProperty("bullPenId").GetString()!);
        }

        Assert.Equal(8, platform.Calls);
        Assert.Equal(2, platform.MaxInFlight);
    }

    [Theory]
    [InlineData("Production", "open", true)]
    [InlineData("Production", "claim", false)]
    [InlineData("Development", "open", false)]
    public async Task Open_room_authorization_outside_Development_is_warned_about_at_start(string environment, string mode, bool warned)
    {
        var logs = new CapturingLoggerProvider();
        await using var server = await TestServer.StartAsync($"traderoom.auth.rooms = {mode}", environment,
            configure: builder => builder.Logging.AddProvider(logs));

        var warnings = logs.Lines.Where(l => l.Level == Microsoft.Extensions.Logging.LogLevel.Warning
            && l.Message.Contains("any authenticated user can follow any bull pen", StringComparison.Ordinal));
        Assert.Equal(warned ? 1 : 0, warnings.Count());
    }

    [Theory]
    [InlineData("callback", "", "callback.url")]
    [InlineData("secret-mode", "", "open, claim or callback")]
    [InlineData("claim, callback", "", "open, claim or callback")]
    public void Startup_refuses_an_unusable_authorization_setting(string mode, string url, string saying)
    {
        var e = Assert.Throws<TradeRoom.Server.StartupException>(() => TradeRoom.Server.TradeRoomHost.Build([],
            $$"""traderoom { jwt.secret = "{{TestServer.Secret}}", auth { rooms = "{{mode}}", callback.url = "{{url}}" } }"""));

        Assert.Contains(saying, e.Message, StringComparison.Ordinal);
    }
}
