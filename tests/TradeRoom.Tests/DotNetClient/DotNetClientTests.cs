using TradeRoom.Protocol;
using System.Text.Json;
using TradeRoom.Actors.Auth;
using TradeRoom.Client;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.DotNetClient;

/// <summary>Options for a test client: fast reconnects, so a test waits for the behaviour, not the backoff.</summary>
internal static class TestClients
{
    /// <summary>How long a test waits for a connect (a client that would retry forever must fail the test, not hang it).</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    public static TradeRoomClientOptions Options(IEnumerable<Uri> urls, string? token = null, Func<CancellationToken, ValueTask<string>>? provider = null) => new()
    {
        Urls = urls.ToList(),
        Token = token,
        TokenProvider = provider,
        Reconnect = new BackoffOptions { InitialDelay = TimeSpan.FromMilliseconds(50), MaxDelay = TimeSpan.FromMilliseconds(400) },
    };

    public static TradeRoomClientOptions Options(TestServer server, string? token = null, Func<CancellationToken, ValueTask<string>>? provider = null) =>
        Options([server.WsUri], token, provider);
}

/// <summary>
/// The .NET client (src/TradeRoom.Client) against the real server: real sockets, real JWTs, events published over
/// the HTTP API. Typed events, privacy, token refresh and the policy for refused and expiring tokens.
/// </summary>
public sealed class DotNetClientTests(SharedServerFixture fixture) : IClassFixture<SharedServerFixture>
{
    private TestServer Server => fixture.Server;

    [Fact]
    public async Task Connects_subscribes_and_hands_every_event_type_to_its_typed_handler()
    {
        const string room = "net-typed";
        await using var client = new TradeRoomClient(TestClients.Options(Server, Server.UserToken("alice")));
        var probe = new ClientProbe(client);
        OrderExecuted? order = null;
        LeaderboardUpdate? board = null;
        RoomEnded? ended = null;
        PortfolioUpdate? portfolio = null;
        MemberJoined? joined = null;
        var typed = new List<string>();
        client.Subscribe(room, r =>
        {
            probe.Follow(r);
            r.On<OrderExecuted>((o, _) => order = o);
            r.On<LeaderboardUpdate>((b, _) => board = b);
            r.On<RoomEnded>((e, _) => ended = e);
            r.On<PortfolioUpdate>((p, _) => portfolio = p);
            r.On<MemberJoined>((m, _) => joined = m);
            foreach (var type in new[] { EventTypes.OrderFailed, EventTypes.OrderCancelled, EventTypes.RankingChanged, EventTypes.SnapshotCreated,
                         EventTypes.PositionUpdate, EventTypes.PositionClosed, EventTypes.RoomStateChanged, EventTypes.RoomStarted, EventTypes.MemberLeft })
                r.On(type, e =>
                {
                    lock (typed)
                        typed.Add(e.Type);
                });
        });

        var auth = await client.ConnectAsync().WaitAsync(TestClients.Timeout);
        Assert.Equal("alice", auth.UserId);
        Assert.Equal($"127.0.0.1:{Server.WsPort}", auth.Node);
        await probe.WaitAsync(p => p.Subscribes.Count == 1, "subscribed");
        Assert.False(probe.Subscribes[0].Recovered);
        Assert.Equal(0, probe.Subscribes[0].Seq);
        Assert.Equal(ClientState.Connected, client.State);

        var published = new (string Type, object Data)[]
        {
            (EventTypes.OrderExecuted, new { userId = "alice", orderId = "o-1", symbol = "AAPL", side = "buy", qty = 10, price = 187.2, executedAt = "2026-11-27T09:00:00Z", venue = "XNAS" }),
            (EventTypes.OrderFailed, new { userId = "alice", orderId = "o-2", reason = "insufficient_cash" }),
            (EventTypes.OrderCancelled, new { userId = "alice", orderId = "o-3", reason = "cancelled_by_trader" }),
            (EventTypes.LeaderboardUpdate, new { round = 1, entries = new[] { new { rank = 1, userId = "alice", name = "Alice", pnl = 12.5 } } }),
            (EventTypes.RankingChanged, new { userId = "alice", from = 2, to = 1 }),
            (EventTypes.SnapshotCreated, new { snapshotId = "r1-final", entries = Array.Empty<object>() }),
            (EventTypes.PositionUpdate, new { userId = "alice", symbol = "AAPL", qty = 10 }),
            (EventTypes.PositionClosed, new { userId = "alice", symbol = "AAPL", realizedPnl = 3.4 }),
            (EventTypes.PortfolioUpdate, new { userId = "alice", cash = 98128.0, equity = 100012.5, positions = 1 }),
            (EventTypes.RoomStateChanged, new { status = "waiting", round = 2 }),
            (EventTypes.RoomStarted, new { round = 2, name = "Final", symbols = new[] { "AAPL", "MSFT" } }),
            (EventTypes.RoomEnded, new { round = 2, winner = new { userId = "alice", name = "Alice", pnl = 12.5 } }),
            (EventTypes.MemberJoined, new { userId = "bob", name = "Bob" }),
            (EventTypes.MemberLeft, new { userId = "bob", name = "Bob" }),
        };
        foreach (var (type, data) in published)
            await Server.PublishAsync(room, type, data);

        await probe.WaitAsync(p => p.Events.Count == 14, "the 14 events");
        Assert.Equal(Enumerable.Range(1, 14).Select(i => (long)i), probe.Seqs);
        Assert.Equal(published.Select(p => p.Type), probe.Events.Select(e => e.Type));
        Assert.All(probe.Events, e => Assert.Equal(room, e.BullPenId));

        Assert.Equal(new OrderExecuted
        {
            UserId = "alice", OrderId = "o-1", Symbol = "AAPL", Side = "buy", Qty = 10, Price = 187.2m,
            ExecutedAt = DateTimeOffset.Parse("2026-11-27T09:00:00Z", System.Globalization.CultureInfo.InvariantCulture), Extra = order!.Extra,
        }, order);
        Assert.Equal("XNAS", order.Extra!["venue"].GetString()); // a field the record does not name is kept
        Assert.Equal("Alice", Assert.Single(board!.Entries!).Name);
        Assert.Equal(12.5m, board.Entries![0].Pnl);
        Assert.Equal("Alice", ended!.Winner!.Name);
        Assert.Equal(100012.5m, portfolio!.Equity);
        Assert.Equal(1, portfolio.Positions);
        Assert.Equal("bob", joined!.UserId);
        // The typed handlers of the last event run just after the probe's: wait for them too.
        await Eventually.MatchAsync(() => Task.FromResult(Count(typed)), n => n == 9, "the other nine typed handlers");
        Assert.Empty(probe.Errors);
    }

    [Fact]
    public async Task Data_that_does_not_fit_the_typed_record_is_reported_and_the_other_handlers_still_run()
    {
        const string room = "net-bad-payload";
        await using var client = new TradeRoomClient(TestClients.Options(Server, Server.UserToken("alice")));
        var probe = new ClientProbe(client);
        var typedCalls = 0;
        client.Subscribe(room, r =>
        {
            probe.Follow(r);
            r.On<RoomStarted>((_, _) => Interlocked.Increment(ref typedCalls));
        });
        await client.ConnectAsync().WaitAsync(TestClients.Timeout);
        await probe.WaitAsync(p => p.Subscribes.Count == 1, "subscribed");

        await Server.PublishAsync(room, EventTypes.RoomStarted, new { round = "not a number" });
        await Server.PublishAsync(room, EventTypes.RoomStarted, new { round = 3 });
        // Callbacks run one at a time, in order: once the probe has this third event, every handler of the first two has run.
        await Server.PublishAsync(room, EventTypes.MemberJoined, new { userId = "carol" });

        await probe.WaitAsync(p => p.Events.Count == 3, "the three events");
        var error = Assert.Single(probe.Errors);
        Assert.Equal("invalid_payload", error.Code);
        Assert.Equal(room, error.BullPenId);
        Assert.Equal(1, Volatile.Read(ref typedCalls));
    }

    [Fact]
    public async Task Private_events_reach_only_their_owner()
    {
        const string room = "net-private";
        await using var alice = new TradeRoomClient(TestClients.Options(Server, Server.UserToken("alice")));
        await using var bob = new TradeRoomClient(TestClients.Options(Server, Server.UserToken("bob")));
        var aliceSees = new ClientProbe(alice);
        var bobSees = new ClientProbe(bob);
        alice.Subscribe(room, aliceSees.Follow);
        bob.Subscribe(room, bobSees.Follow);
        await Task.WhenAll(alice.ConnectAsync(), bob.ConnectAsync()).WaitAsync(TestClients.Timeout);
        await aliceSees.WaitAsync(p => p.Subscribes.Count == 1, "alice subscribed");
        await bobSees.WaitAsync(p => p.Subscribes.Count == 1, "bob subscribed");

        await Server.PublishAsync(room, EventTypes.OrderExecuted, new { userId = "alice", symbol = "AAPL", qty = 1 });
        await Server.PublishAsync(room, EventTypes.PortfolioUpdate, new { userId = "bob", cash = 5 });
        await Server.PublishAsync(room, EventTypes.RankingChanged, new { userId = "carol", to = 1 });

        await aliceSees.WaitAsync(p => p.Seqs.Contains(3), "alice got the public event");
        await bobSees.WaitAsync(p => p.Seqs.Contains(3), "bob got the public event");
        Assert.Equal([1L, 3L], aliceSees.Seqs);
        Assert.Equal([2L, 3L], bobSees.Seqs);
        Assert.Equal("alice", aliceSees.Events[0].DataAs<OrderExecuted>()!.UserId);
        Assert.Equal(EventTypes.PortfolioUpdate, bobSees.Events[0].Type);
    }

    [Fact]
    public async Task A_refused_fixed_token_stops_the_client_without_a_reconnect_loop()
    {
        var forged = new TokenIssuer("another-secret-0123456789-0123456789-abc").UserToken("mallory", TimeSpan.FromMinutes(5));
        await using var client = new TradeRoomClient(TestClients.Options(Server, forged));
        var probe = new ClientProbe(client);

        var refused = await Assert.ThrowsAsync<TradeRoomClientException>(() => client.ConnectAsync().WaitAsync(TestClients.Timeout));

        Assert.Equal("invalid_token", refused.Code);
        Assert.Equal(4001, refused.CloseCode);
        Assert.Equal(ClientState.Closed, client.State);
        var close = Assert.Single(probe.Closes);
        Assert.Equal(4001, close.Code);
        Assert.False(close.WillReconnect);
        Assert.Contains(probe.Errors, e => e is { Code: "invalid_token", Frame: "auth_error" });
        Assert.DoesNotContain(probe.States, s => s.State == ClientState.Reconnecting);
    }

    [Fact]
    public async Task A_token_provider_is_asked_again_after_a_refused_token_and_the_client_gets_in()
    {
        var calls = 0;
        var forged = new TokenIssuer("another-secret-0123456789-0123456789-abc").UserToken("dave", TimeSpan.FromMinutes(5));
        await using var client = new TradeRoomClient(TestClients.Options(Server, provider: _ =>
            ValueTask.FromResult(Interlocked.Increment(ref calls) == 1 ? forged : Server.UserToken("dave"))));
        var probe = new ClientProbe(client);

        var auth = await client.ConnectAsync().WaitAsync(TestClients.Timeout);

        Assert.Equal("dave", auth.UserId);
        Assert.Equal(2, calls);
        var close = Assert.Single(probe.Closes);
        Assert.Equal(4001, close.Code);
        Assert.True(close.WillReconnect);
        Assert.Contains(probe.States, s => s is { State: ClientState.Reconnecting, Attempt: 1 });
    }

    [Fact]
    public async Task A_token_provider_refreshes_the_token_before_it_expires_and_the_connection_outlives_it()
    {
        const string room = "net-refresh";
        var tokens = new List<string>();
        await using var client = new TradeRoomClient(TestClients.Options(Server, provider: _ =>
        {
            // Three seconds of life (whole seconds in exp): the client refreshes at half of what is left.
            var token = Server.Tokens.UserToken("erin", TimeSpan.FromSeconds(3));
            lock (tokens)
                tokens.Add(token);
            return ValueTask.FromResult(token);
        }));
        var probe = new ClientProbe(client);
        client.Subscribe(room, probe.Follow);
        await client.ConnectAsync().WaitAsync(TestClients.Timeout);
        var firstExpiry = DateTimeOffset.FromUnixTimeSeconds(ExpOf(tokens[0]));

        // Past the first token's exp (the server would have closed with 4001 token_expired), on the same connection.
        await probe.WaitAsync(p => DateTimeOffset.UtcNow > firstExpiry.AddSeconds(1) && p.Auths.Count >= 3, "refreshed past the first token's expiry");
        Assert.Empty(probe.Closes);
        Assert.DoesNotContain(probe.Errors, e => e.Code == "token_expired");
        Assert.True(probe.Auths.Count >= 3);

        await Server.PublishAsync(room, EventTypes.RankingChanged, new { after = "refresh" });
        await probe.WaitAsync(p => p.Seqs.Contains(1), "an event after the refreshes");
        Assert.Single(probe.Subscribes); // never resubscribed: the first connection is still the one
    }

    [Fact]
    public async Task A_fixed_token_that_expires_ends_with_token_expired_and_the_client_stops()
    {
        await using var client = new TradeRoomClient(TestClients.Options(Server, Server.Tokens.UserToken("frank", TimeSpan.FromSeconds(3))));
        var probe = new ClientProbe(client);
        await client.ConnectAsync().WaitAsync(TestClients.Timeout);

        await probe.WaitAsync(p => p.States.Any(s => s.State == ClientState.Closed), "the client stopped");

        Assert.Contains(probe.Errors, e => e is { Code: "token_expired", Frame: "auth_error" });
        var close = Assert.Single(probe.Closes);
        Assert.Equal(4001, close.Code);
        Assert.False(close.WillReconnect);
    }

    [Fact]
    public async Task RefreshTokenAsync_with_a_token_for_another_user_fails_with_user_mismatch_and_keeps_the_connection()
    {
        await using var client = new TradeRoomClient(TestClients.Options(Server, Server.UserToken("gina")));
        var probe = new ClientProbe(client);
        await client.ConnectAsync().WaitAsync(TestClients.Timeout);

        var refreshed = await client.RefreshTokenAsync(Server.UserToken("gina"));
        Assert.Equal("gina", refreshed.UserId);
        var mismatch = await Assert.ThrowsAsync<TradeRoomClientException>(() => client.RefreshTokenAsync(Server.UserToken("someone-else")));

        Assert.Equal("user_mismatch", mismatch.Code);
        Assert.Equal(ClientState.Connected, client.State);
        Assert.Empty(probe.Closes);
        Assert.Equal(2, probe.Auths.Count);
    }

    private static int Count(List<string> list)
    {
        lock (list)
            return list.Count;
    }

    private static long ExpOf(string jwt)
    {
        var payload = jwt.Split('.')[1].Replace('-', '+').Replace('_', '/');
        payload = payload.PadRight(payload.Length + (4 - payload.Length % 4) % 4, '=');
        return JsonDocument.Parse(Convert.FromBase64String(payload)).RootElement.GetProperty("exp").GetInt64();
    }
}

/// <summary>A server with low limits, for the close codes and refusals a client sees at them.</summary>
public sealed class LowLimitServerFixture : SharedServerFixture
{
    protected override string Hocon => """
        traderoom.limits { max-connections-per-user = 1, max-subscriptions = 2 }
        traderoom.websocket.auth-timeout = 1s
        """;
}

/// <summary>The reconnect policy for the server's limits, against the real server.</summary>
public sealed class DotNetClientLimitTests(LowLimitServerFixture fixture) : IClassFixture<LowLimitServerFixture>
{
    private TestServer Server => fixture.Server;

    [Fact]
    public async Task Too_many_connections_4009_keeps_retrying_until_the_place_frees()
    {
        var first = await Server.ConnectAsync("hank"); // the user's one allowed connection
        await using var client = new TradeRoomClient(TestClients.Options(Server, Server.UserToken("hank")));
        var probe = new ClientProbe(client);
        Task<AuthInfo> connecting;
        try
        {
            connecting = client.ConnectAsync();
            await probe.WaitAsync(p => p.Closes.Count(c => c.Code == 4009) >= 2, "refused twice with 4009");
            Assert.All(probe.Closes, c => Assert.True(c.WillReconnect));
            Assert.Contains(probe.Errors, e => e is { Code: "too_many_connections", Frame: "auth_error" });
            Assert.False(connecting.IsCompleted);
        }
        finally
        {
            await first.DisposeAsync();
        }
        var auth = await connecting.WaitAsync(TestClients.Timeout);
        Assert.Equal("hank", auth.UserId);
        Assert.Equal(ClientState.Connected, client.State);
    }

    [Fact]
    public async Task An_authentication_timeout_4001_without_auth_error_reconnects_and_asks_the_provider_again()
    {
        var calls = 0;
        var neverAnswered = new TaskCompletionSource<string>();
        await using var client = new TradeRoomClient(TestClients.Options(Server, provider: async cancellation =>
            Interlocked.Increment(ref calls) == 1
                ? await neverAnswered.Task.WaitAsync(cancellation) // slower than the server's 1 s auth-timeout
                : Server.UserToken("ivy")));
        var probe = new ClientProbe(client);

        var auth = await client.ConnectAsync().WaitAsync(TestClients.Timeout);

        Assert.Equal("ivy", auth.UserId);
        var close = Assert.Single(probe.Closes);
        Assert.Equal(4001, close.Code);
        Assert.Equal("authentication timeout", close.Reason);
        Assert.True(close.WillReconnect);
        Assert.Equal(2, calls);
    }

    [Fact]
    public async Task A_refused_subscribe_is_reported_with_its_room_and_the_room_is_not_asked_again_until_subscribed_again()
    {
        await using var client = new TradeRoomClient(TestClients.Options(Server, Server.UserToken("jack")));
        var probe = new ClientProbe(client);
        var rooms = new[] { "net-limit-1", "net-limit-2", "net-limit-3" }.Select(id => client.Subscribe(id)).ToList();
        await client.ConnectAsync().WaitAsync(TestClients.Timeout);

        await probe.WaitAsync(p => p.Errors.Any(e => e.Code == "too_many_subscriptions"), "the third subscribe refused");
        var refusal = Assert.Single(probe.Errors);
        Assert.Equal("error", refusal.Frame);
        var refusedRoom = Assert.Single(rooms, r => r.BullPenId == refusal.BullPenId);
        Assert.Equal(refusal, refusedRoom.Refused);
        Assert.False(refusedRoom.IsSubscribed);
        await Eventually.MatchAsync(() => Task.FromResult(rooms.Count(r => r.IsSubscribed)), n => n == 2, "the other two subscribed");

        // Free a place, then ask again: the refused room gets in.
        await rooms.First(r => r != refusedRoom).UnsubscribeAsync();
        Assert.Same(refusedRoom, client.Subscribe(refusedRoom.BullPenId));
        await Eventually.MatchAsync(() => Task.FromResult(refusedRoom.IsSubscribed), s => s, "the refused room subscribed when asked again");
        Assert.Null(refusedRoom.Refused);
    }
}

/// <summary>
/// Resume and the URL list across servers that stop: a restart on the same store resumes with exactly the missed
/// events; a server going away (1001) moves the client to the next URL.
/// </summary>
public sealed class DotNetClientRestartTests
{
    [Fact]
    public async Task Resumes_across_a_server_restart_on_the_same_store_with_exactly_the_missed_events()
    {
        const string room = "net-restart";
        var folder = TestDatabase.NewSqliteFolder();
        var hocon = $"traderoom.persistence.sqlite.file = \"{Path.Combine(folder, "traderoom.db")}\"";
        TestServer? server = null;
        try
        {
            server = await TestServer.StartAsync(hocon);
            var ports = (server.WsPort, server.ApiPort);
            var tokens = server.Tokens;
            // Closed while the server is down: the client authenticates only once the missed events are published.
            TaskCompletionSource? gate = null;
            await using var client = new TradeRoomClient(TestClients.Options(server, provider: async cancellation =>
            {
                if (Volatile.Read(ref gate) is { } closed)
                    await closed.Task.WaitAsync(cancellation);
                return tokens.UserToken("alice", TimeSpan.FromMinutes(10));
            }));
            var probe = new ClientProbe(client);
            var followed = client.Subscribe(room, probe.Follow);
            await client.ConnectAsync().WaitAsync(TestClients.Timeout);
            await probe.WaitAsync(p => p.Subscribes.Count == 1, "subscribed");

            await server.PublishAsync(room, EventTypes.RoomStarted, new { name = "Final" });
            await server.PublishAsync(room, EventTypes.MemberJoined, new { userId = "alice" });
            await server.PublishAsync(room, EventTypes.LeaderboardUpdate, new { entries = new[] { new { userId = "alice", rank = 1 } } });
            await probe.WaitAsync(p => p.Seqs.Contains(3), "the first three events");
            var epoch = followed.Epoch;

            Volatile.Write(ref gate, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            await server.DisposeAsync();
            server = null;
            await probe.WaitAsync(p => p.Closes.Any(), "the connection closed");
            Assert.Equal(1001, probe.Closes[0].Code);
            Assert.True(probe.Closes[0].WillReconnect);

            server = await TestServer.StartAsync(hocon, ports: ports);
            Assert.Equal(4, await server.PublishAsync(room, EventTypes.OrderExecuted, new { userId = "alice", orderId = "missed-1" }));
            Assert.Equal(5, await server.PublishAsync(room, EventTypes.OrderExecuted, new { userId = "bob", orderId = "not-alice's" }));
            Assert.Equal(6, await server.PublishAsync(room, EventTypes.RankingChanged, new { userId = "alice", to = 1 }));
            gate!.SetResult();

            await probe.WaitAsync(p => p.Subscribes.Count == 2 && p.Seqs.Contains(6), "resubscribed and caught up");
            var resumed = probe.Subscribes[1];
            Assert.True(resumed.Recovered);
            Assert.Equal(epoch, resumed.Epoch);
            Assert.Equal(6, resumed.Seq);
            Assert.Equal(["alice"], resumed.State.Members);

            Assert.Equal(7, await server.PublishAsync(room, EventTypes.RoomEnded, new { round = 1 }));
            await probe.WaitAsync(p => p.Seqs.Contains(7), "the live event after the replay");
            // Exactly what was missed (bob's order is not alice's), nothing twice, then live.
            Assert.Equal([1L, 2L, 3L, 4L, 6L, 7L], probe.Seqs);
            Assert.Equal("missed-1", probe.Events[3].DataAs<OrderExecuted>()!.OrderId);
            Assert.Equal(7, followed.Position);
        }
        finally
        {
            if (server is not null)
                await server.DisposeAsync();
            TestDatabase.Delete(folder);
        }
    }

    [Fact]
    public async Task A_server_going_away_with_1001_moves_the_client_to_the_next_url_where_it_takes_the_snapshot()
    {
        const string room = "net-next-url";
        TestServer? a = null;
        await using var b = await TestServer.StartAsync();
        try
        {
            a = await TestServer.StartAsync();
            // B knows the room with a history of its own (another store: another epoch).
            await b.PublishAsync(room, EventTypes.RoomStarted, new { name = "On B" });
            await b.PublishAsync(room, EventTypes.LeaderboardUpdate, new { entries = new[] { new { userId = "zoe", rank = 1 } } });

            await using var client = new TradeRoomClient(TestClients.Options([a.WsUri, b.WsUri], a.UserToken("kim")));
            var probe = new ClientProbe(client);
            var followed = client.Subscribe(room, probe.Follow);
            var auth = await client.ConnectAsync().WaitAsync(TestClients.Timeout);
            Assert.Equal($"127.0.0.1:{a.WsPort}", auth.Node);
            for (var i = 0; i < 5; i++)
                await a.PublishAsync(room, EventTypes.RankingChanged, new { i });
            await probe.WaitAsync(p => p.Seqs.Contains(5), "five events on A");

            await a.DisposeAsync();
            a = null;
            await probe.WaitAsync(p => p.Subscribes.Count == 2, "resubscribed on B");

            var close = probe.Closes[0];
            Assert.Equal((1001, true, auth.Node), (close.Code, close.WillReconnect, close.Node));
            Assert.Equal(client.Urls[0], close.Url);
            Assert.Equal(client.Urls[1], client.Url);
            Assert.Equal($"127.0.0.1:{b.WsPort}", client.Node);
            var snapshot = probe.Subscribes[1];
            Assert.False(snapshot.Recovered);
            Assert.Equal(2, snapshot.Seq);
            Assert.Equal("zoe", snapshot.State.Leaderboard!.Value.GetProperty("entries")[0].GetProperty("userId").GetString());
            Assert.Equal("On B", snapshot.State.Room!.Value.GetProperty("name").GetString());
            Assert.Equal(2, followed.Position);

            // The position moved to B's seq: its next event (3, lower than A's 5) is delivered.
            await b.PublishAsync(room, EventTypes.MemberJoined, new { userId = "kim" });
            await probe.WaitAsync(p => p.Events.Count == 6, "B's event");
            Assert.Equal([1L, 2L, 3L, 4L, 5L, 3L], probe.Seqs);
        }
        finally
        {
            if (a is not null)
                await a.DisposeAsync();
        }
    }
}

/// <summary>The reconnect policy as a table: the same decisions as clients/js/traderoom-client.js's closePolicy.</summary>
public sealed class ReconnectPolicyTests
{
    [Theory]
    [InlineData(1000, false, null, false, true)]
    [InlineData(1000, true, null, false, false)]
    [InlineData(1001, false, null, false, true)]
    [InlineData(1006, false, null, false, true)]
    [InlineData(4000, false, null, false, true)]
    [InlineData(4001, false, "invalid_token", false, false)]
    [InlineData(4001, false, "token_expired", false, false)]
    [InlineData(4001, false, "invalid_token", true, true)]
    [InlineData(4001, false, null, false, true)]
    [InlineData(4008, false, null, false, true)]
    [InlineData(4009, false, "too_many_connections", false, true)]
    [InlineData(1008, false, null, false, true)]
    public void Decides_like_the_js_client(int code, bool clientClosed, string? authError, bool provider, bool reconnect) =>
        Assert.Equal(reconnect, ReconnectPolicy.ShouldReconnect(code, clientClosed, authError, provider));

    [Fact]
    public void Backoff_is_full_jitter_under_a_cap_that_doubles_up_to_the_maximum()
    {
        var backoff = new BackoffOptions();
        Assert.Equal(TimeSpan.Zero, ReconnectPolicy.Delay(1, backoff, 0));
        Assert.Equal(TimeSpan.FromMilliseconds(250), ReconnectPolicy.Delay(1, backoff, 0.5));
        Assert.Equal(TimeSpan.FromMilliseconds(1000), ReconnectPolicy.Delay(3, backoff, 0.5));
        Assert.Equal(TimeSpan.FromMilliseconds(7500), ReconnectPolicy.Delay(30, backoff, 0.5));
    }
}
