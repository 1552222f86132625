using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using TradeRoom.Actors.Auth;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Integration;

/// <summary>
/// Issue 11: rooms survive the server process dying. The real server binary with a real database: clients follow a
/// room while 500 events are published, the process is killed (SIGKILL) or stopped (SIGTERM), a new one starts on
/// the same database, and each client resumes from its own position with its epoch: recovered, exactly the events it
/// missed (private ones only to their owner), the same state as before, and new events numbered on from 500.
/// </summary>
[Collection(ProcessEnvironmentCollection.Name)]
public sealed class CrashRecoveryTests(PostgresServer postgres) : IClassFixture<PostgresServer>, IDisposable
{
    private const string Secret = "crash-recovery-secret-0123456789-abcdef";
    private const string Room = "season-final";
    private const int Events = 500;

    private readonly string _scratch = TestDatabase.NewSqliteFolder();
    private readonly TokenIssuer _tokens = new(Secret);

    public void Dispose() => TestDatabase.Delete(_scratch);

    [Theory]
    [InlineData("KILL")]
    [InlineData("TERM")]
    public async Task Sqlite_rooms_come_back_after_the_process_dies_and_clients_resume_without_gap_or_duplicate(string signal) =>
        await RoomsSurviveAsync(signal, new Dictionary<string, string>
        {
            ["TRADEROOM_PERSISTENCE"] = "sqlite",
            ["TRADEROOM_DB_FILE"] = Path.Combine(_scratch, "traderoom.db"),
        });

    [Theory]
    [InlineData("KILL")]
    [InlineData("TERM")]
    public async Task Postgresql_rooms_come_back_after_the_process_dies_and_clients_resume_without_gap_or_duplicate(string signal) =>
        await RoomsSurviveAsync(signal, new Dictionary<string, string>
        {
            ["TRADEROOM_PERSISTENCE"] = "postgresql",
            ["TRADEROOM_DB"] = await postgres.CreateDatabaseAsync(),
        });

    private async Task RoomsSurviveAsync(string signal, Dictionary<string, string> storage)
    {
        // The positions the clients resume from: everything seen, mid-stream, nothing seen.
        var users = new (string User, long ResumeFrom)[] { ("alice", Events), ("bob", 137), ("carol", 0) };
        Dictionary<string, List<string>> seen = [];
        string epoch, stateBefore;

        using (var first = await StartAsync(storage))
        {
            var clients = new List<WsClient>();
            foreach (var (user, _) in users)
            {
                var client = await ConnectAsync(first, user);
                await client.SendAsync(new { type = "subscribe_room", data = new { bullPenId = Room } });
                Assert.Equal(0, (await client.ReceiveTypeAsync("subscribed")).Data.GetProperty("seq").GetInt64());
                clients.Add(client);
            }

            for (var i = 1; i <= Events; i++)
                await PublishAsync(first, EventNumber(i));

            // Every client reads the whole stream it may see: the reference for what a resume must replay.
            for (var c = 0; c < users.Length; c++)
                seen[users[c].User] = await ReadUntilAsync(clients[c], Events);

            await using var viewer = await ConnectAsync(first, "viewer");
            await viewer.SendAsync(new { type = "subscribe_room", data = new { bullPenId = Room } });
            var subscribed = await viewer.ReceiveTypeAsync("subscribed");
            Assert.Equal(Events, subscribed.Data.GetProperty("seq").GetInt64());
            epoch = subscribed.Data.GetProperty("epoch").GetString()!;
            stateBefore = subscribed.Data.GetProperty("state").GetRawText();

            await StopAsync(first, signal);
            foreach (var client in clients)
                await client.DisposeAsync();
        }

        using var second = await StartAsync(storage);
        var resumed = new List<WsClient>();
        foreach (var (user, from) in users)
        {
            var client = await ConnectAsync(second, user);
            resumed.Add(client);
            await client.SendAsync(new { type = "subscribe_room", data = new { bullPenId = Room, sinceSeq = from, epoch } });
            var subscribed = await client.ReceiveTypeAsync("subscribed");
            Assert.True(subscribed.Data.GetProperty("recovered").GetBoolean(), $"{user} not recovered: {subscribed.Raw}");
            Assert.Equal(epoch, subscribed.Data.GetProperty("epoch").GetString());
            Assert.Equal(Events, subscribed.Data.GetProperty("seq").GetInt64());
            Assert.Equal(stateBefore, subscribed.Data.GetProperty("state").GetRawText());

            var missed = seen[user].Where(raw => SeqOf(raw) > from).ToList();
            var replayed = missed.Count == 0 ? [] : await ReadUntilAsync(client, SeqOf(missed[^1]));
            Assert.Equal(missed, replayed);
        }

        // New events go on from where the room left off, to everyone.
        var next = await PublishAsync(second, new { type = "ranking_changed", data = new { after = "restart" } });
        Assert.Equal(Events + 1, next);
        foreach (var client in resumed)
        {
            var live = await client.ReceiveTypeAsync("ranking_changed");
            Assert.Equal(Events + 1, live.Seq);
            await client.DisposeAsync();
        }
    }

    /// <summary>Event i of the stream: state events, public events, and private orders for alice.</summary>
    private static object EventNumber(int i) => (i % 5) switch
    {
        _ when i == 1 => new { type = "room_started", data = new { name = "Season final", round = 1 } },
        _ when i <= 4 => new { type = "member_joined", data = new { userId = i switch { 2 => "alice", 3 => "bob", _ => "carol" } } },
        0 => new { type = "leaderboard_update", data = new { version = i, entries = new[] { new { userId = "alice", rank = 1 + i % 3 } } } },
        1 => new { type = "order_executed", data = new { userId = "alice", orderId = $"o-{i}", qty = i } },
        _ => new { type = "ranking_changed", data = new { i, note = "x\u00e9\u4e2d" } },
    };

    private static long SeqOf(string raw) => JsonDocument.Parse(raw).RootElement.GetProperty("seq").GetInt64();

    /// <summary>The raw event frames the client receives until one with <paramref name="lastSeq"/> or past it.</summary>
    private static async Task<List<string>> ReadUntilAsync(WsClient client, long lastSeq)
    {
        var frames = new List<string>();
        while (true)
        {
            var frame = await client.ReceiveAsync();
            if (!frame.Root.TryGetProperty("seq", out _))
                continue;
            frames.Add(frame.Raw);
            if (frame.Seq >= lastSeq)
                return frames;
        }
    }

    private sealed record Running(ServerProcess Process, int WsPort, HttpClient Http) : IDisposable
    {
        public void Dispose()
        {
            Http.Dispose();
            Process.Dispose();
        }
    }

    private static async Task<Running> StartAsync(Dictionary<string, string> storage)
    {
        var wsPort = ServerProcess.FreePort();
        var apiPort = ServerProcess.FreePort();
        var environment = new Dictionary<string, string>(storage)
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["JWT_SECRET"] = Secret,
            ["WS_PORT"] = wsPort.ToString(CultureInfo.InvariantCulture),
            ["API_PORT"] = apiPort.ToString(CultureInfo.InvariantCulture),
            ["BIND_ADDRESS"] = "127.0.0.1",
        };
        var process = ServerProcess.Start(environment);
        var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{apiPort}") };
        var running = new Running(process, wsPort, http);
        await Eventually.MatchAsync(async () =>
        {
            if (process.Process.HasExited)
                throw new InvalidOperationException($"the server exited with {process.Process.ExitCode}:\n{process.Stderr}\n{process.Stdout}");
            try
            {
                using var health = await http.GetAsync("/api/health");
                return health.StatusCode == HttpStatusCode.OK;
            }
            catch (HttpRequestException)
            {
                return false;
            }
        }, up => up, "server answering /api/health", TimeSpan.FromSeconds(30));
        return running;
    }

    private static async Task StopAsync(Running server, string signal)
    {
        if (signal == "KILL")
            server.Process.Process.Kill();
        else
            await server.Process.TerminateAsync();
        Assert.True(await server.Process.WaitForExitAsync(TimeSpan.FromSeconds(20)), "the server did not exit");
    }

    private async Task<WsClient> ConnectAsync(Running server, string user)
    {
        var client = await WsClient.ConnectAsync(new Uri($"ws://127.0.0.1:{server.WsPort}/ws"));
        await client.SendAsync(new { type = "auth", data = new { token = _tokens.UserToken(user, TimeSpan.FromMinutes(10)) } });
        Assert.Equal("auth_success", (await client.ReceiveAsync()).Type);
        return client;
    }

    private async Task<long> PublishAsync(Running server, object e)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/rooms/{Room}/events")
        {
            Content = new StringContent(JsonSerializer.Serialize(e), Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _tokens.ServiceToken("crash-test", TimeSpan.FromMinutes(10)));
        using var response = await server.Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"publish: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.GetProperty("seq").GetInt64();
    }
}
