using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Integration;

/// <summary>
/// Connection health and limits end to end over real sockets: heartbeat, auth timeout, token expiry and refresh,
/// subscription, rate and per-user connection limits, and sockets that fault. The nested classes run in parallel,
/// each against servers configured for what it tests.
/// </summary>
public static class ConnectionHealthTests
{
    private static readonly TimeSpan PollTimeout = TimeSpan.FromSeconds(10);

    private static async Task<Frame> ReceiveErrorAsync(WsClient client, string type, string code)
    {
        var frame = await client.ReceiveAsync();
        Assert.Equal((type, code), (frame.Type, frame.Code));
        Assert.False(string.IsNullOrEmpty(frame.Data.GetProperty("message").GetString()));
        return frame;
    }

    private static DateTimeOffset ExpiryOf(string token) => new(new JsonWebToken(token).ValidTo, TimeSpan.Zero);

    /// <summary>A ping/pong round trip works: the connection is open and answering.</summary>
    private static async Task AssertAliveAsync(WsClient client)
    {
        Assert.Equal(WebSocketState.Open, client.Socket.State);
        Assert.Empty(await client.BarrierAsync());
    }

    // ================================================================ heartbeat and auth timeout

    private const string FastHeartbeat = "traderoom.websocket { ping-interval = 100ms, heartbeat-timeout = 2s, slow-consumer-grace = 200ms }";

    public sealed class FastHeartbeatServer : IAsyncLifetime
    {
        public TestServer Server { get; private set; } = null!;

        public async Task InitializeAsync() =>
            // The sweeper checks every 50 ms (a quarter of the slow-consumer grace) and pings every 100 ms. A 2 s heartbeat
            // timeout leaves a client that answers pings twenty chances per timeout on a busy machine.
            Server = await TestServer.StartAsync(FastHeartbeat);

        public async Task DisposeAsync() => await Server.DisposeAsync();
    }

    public class Heartbeat(FastHeartbeatServer fixture) : IClassFixture<FastHeartbeatServer>
    {
        private TestServer Server => fixture.Server;

        [Fact]
        public async Task Silent_client_that_never_answers_pings_gets_ping_frames_then_close_4000_heartbeat_timeout()
        {
            var clock = Stopwatch.StartNew();
            using var raw = await RawWebSocket.ConnectAsync(Server.WsPort);

            var opcodes = new List<int>();
            RawWebSocket.RawFrame frame;
            do
            {
                frame = await raw.ReadFrameAsync(TimeSpan.FromSeconds(5));
                opcodes.Add(frame.Opcode);
            }
            while (frame.Opcode != RawWebSocket.Close);

            // Only pings (one each ping-interval, answered or not), then the close.
            Assert.True(opcodes.Count >= 2, $"expected a ping frame before the close, got opcodes [{string.Join(",", opcodes)}]");
            Assert.All(opcodes.SkipLast(1), o => Assert.Equal(RawWebSocket.Ping, o));
            Assert.Equal((4000, "heartbeat timeout"), frame.CloseStatus());
            Assert.True(clock.ElapsedMilliseconds >= 1980, $"closed after {clock.ElapsedMilliseconds} ms, before the 2 s heartbeat timeout");
        }

        [Fact]
        public async Task Client_that_answers_pings_but_sends_nothing_for_three_heartbeat_timeouts_stays_connected()
        {
            await using var client = await Server.ConnectAsync(E2E.Room("quiet-user"));

            // A receive stays pending all along, so the client answers the server's pings (time passing is the point).
            Assert.Null(await client.TryReceiveAsync(TimeSpan.FromMilliseconds(6000)));

            await AssertAliveAsync(client);
        }
    }

    public class AuthTimeout
    {
        [Fact]
        public async Task Unauthenticated_client_is_closed_with_4001_authentication_timeout_while_an_authenticated_one_is_not()
        {
            await using var server = await TestServer.StartAsync("traderoom.websocket.auth-timeout = 500ms");
            var clock = Stopwatch.StartNew();
            await using var anonymous = await WsClient.ConnectAsync(server.WsUri);
            await using var authenticated = await server.ConnectAsync(E2E.Room("prompt-user"));

            Assert.Equal(4001, await anonymous.ReceiveCloseAsync(TimeSpan.FromSeconds(5)));
            Assert.Equal("authentication timeout", anonymous.Socket.CloseStatusDescription);
            Assert.True(clock.ElapsedMilliseconds >= 450, $"closed after {clock.ElapsedMilliseconds} ms, before the 500 ms auth timeout");

            // Time passing is the point: three auth timeouts after connecting, the authenticated one is still open.
            var rest = TimeSpan.FromMilliseconds(1500) - clock.Elapsed;
            Assert.Null(await authenticated.TryReceiveAsync(rest > TimeSpan.Zero ? rest : TimeSpan.Zero));
            await AssertAliveAsync(authenticated);
        }
    }

    // ================================================================ tokens, subscriptions, connections per user

    public sealed class LimitsServer : IAsyncLifetime
    {
        public TestServer Server { get; private set; } = null!;

        public async Task InitializeAsync() =>
            Server = await TestServer.StartAsync("traderoom.limits { max-subscriptions = 3, max-connections-per-user = 2 }");

        public async Task DisposeAsync() => await Server.DisposeAsync();
    }

    public class Limits(LimitsServer fixture) : IClassFixture<LimitsServer>
    {
        private TestServer Server => fixture.Server;

        private static string User(string prefix) => E2E.Room(prefix);

        private async Task<WsClient> AuthenticatedAsync(string token)
        {
            var client = await Server.ConnectRawAsync();
            await client.SendAuthAsync(token);
            Assert.Equal("auth_success", (await client.ReceiveAsync()).Type);
            return client;
        }

        /// <summary>Connects and authenticates as <paramref name="userId"/>, retrying (until a deadline) while the user is still at the connection limit.</summary>
        private async Task<WsClient> ConnectOnceAdmittedAsync(string userId)
        {
            var deadline = DateTime.UtcNow + PollTimeout;
            while (true)
            {
                var client = await Server.ConnectRawAsync();
                await client.SendAuthAsync(Server.UserToken(userId));
                var reply = await client.ReceiveAsync();
                if (reply.Type == "auth_success")
                    return client;
                Assert.Equal(("auth_error", "too_many_connections"), (reply.Type, reply.Code));
                await client.DisposeAsync();
                if (DateTime.UtcNow > deadline)
                    Assert.Fail($"{userId} was not admitted again after one of its connections closed");
                await Task.Delay(20);
            }
        }

        private static async Task SubscribedAsync(WsClient client, string room)
        {
            await client.SubscribeAsync(room);
            var reply = await client.ReceiveAsync();
            Assert.Equal(("subscribed", room), (reply.Type, reply.Data.GetProperty("bullPenId").GetString()));
        }

        [Fact]
        public async Task Token_expiring_on_an_open_connection_sends_auth_error_token_expired_then_closes_4001()
        {
            var token = Server.Tokens.Create(User("expiring"), null, TimeSpan.FromSeconds(2));
            await using var client = await AuthenticatedAsync(token);

            var frame = await client.ReceiveAsync(TimeSpan.FromSeconds(5));

            Assert.Equal(("auth_error", "token_expired"), (frame.Type, frame.Code));
            Assert.True(DateTimeOffset.UtcNow >= ExpiryOf(token), "token_expired arrived before the token's exp");
            Assert.Equal(4001, await client.ReceiveCloseAsync());
        }

        [Fact]
        public async Task Fresh_auth_for_the_same_user_before_exp_keeps_the_connection_open_past_the_first_exp()
        {
            var user = User("refreshing");
            var shortLived = Server.Tokens.Create(user, null, TimeSpan.FromSeconds(2));
            await using var client = await AuthenticatedAsync(shortLived);

            await client.SendAuthAsync(Server.Tokens.Create(user, null, TimeSpan.FromMinutes(10)));
            var refreshed = await client.ReceiveAsync();
            Assert.Equal(("auth_success", user), (refreshed.Type, refreshed.Data.GetProperty("userId").GetString()));

            // Time passing is the point: wait past the first token's exp with a receive pending.
            var pastExp = ExpiryOf(shortLived) - DateTimeOffset.UtcNow + TimeSpan.FromMilliseconds(700);
            Assert.Null(await client.TryReceiveAsync(pastExp));
            await AssertAliveAsync(client);
        }

        [Fact]
        public async Task Auth_for_another_user_answers_user_mismatch_and_the_connection_stays_the_first_users()
        {
            var user = User("owner");
            var room = E2E.Room("mismatch-room");
            await using var client = await AuthenticatedAsync(Server.UserToken(user));

            await client.SendAuthAsync(Server.UserToken(User("intruder")));

            await ReceiveErrorAsync(client, "error", "user_mismatch");
            await SubscribedAsync(client, room);
            var seq = await Server.PublishAsync(room, "order_executed", new { userId = user });
            var e = await client.ReceiveAsync();
            Assert.Equal(("order_executed", seq), (e.Type, e.Seq));
            await AssertAliveAsync(client);
        }

        [Fact]
        public async Task Auth_for_another_user_who_is_at_the_connection_limit_still_answers_user_mismatch_and_keeps_the_connection()
        {
            var other = User("full-user");
            await using var otherFirst = await Server.ConnectAsync(other);
            await using var otherSecond = await Server.ConnectAsync(other);
            await using var client = await Server.ConnectAsync(User("owner"));

            await client.SendAuthAsync(Server.UserToken(other));

            await ReceiveErrorAsync(client, "error", "user_mismatch");
            await AssertAliveAsync(client);
        }

        [Fact]
        public async Task User_mismatch_auth_takes_no_connection_slot_from_either_user()
        {
            var owner = User("owner");
            var other = User("other");
            var first = await Server.ConnectAsync(owner);
            await using var second = await Server.ConnectAsync(owner);

            // Two mismatching auths must not fill the other user's two slots...
            await first.SendAuthAsync(Server.UserToken(other));
            await ReceiveErrorAsync(first, "error", "user_mismatch");
            await second.SendAuthAsync(Server.UserToken(other));
            await ReceiveErrorAsync(second, "error", "user_mismatch");
            await using (var otherClient = await Server.ConnectRawAsync())
            {
                await otherClient.SendAuthAsync(Server.UserToken(other));
                Assert.Equal("auth_success", (await otherClient.ReceiveAsync()).Type);
            }

            // ...and the owner gets the slot of a closed connection back.
            await first.Socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
            await first.DisposeAsync();
            await using var third = await ConnectOnceAdmittedAsync(owner);
        }

        [Fact]
        public async Task Subscribing_to_more_than_max_subscriptions_rooms_answers_too_many_subscriptions()
        {
            await using var client = await Server.ConnectAsync(User("collector"));
            var rooms = Enumerable.Range(1, 4).Select(i => E2E.Room($"cap{i}")).ToArray();
            foreach (var room in rooms[..3])
                await SubscribedAsync(client, room);

            await client.SubscribeAsync(rooms[3]);
            var refused = await ReceiveErrorAsync(client, "error", "too_many_subscriptions");
            Assert.Equal(rooms[3], refused.Data.GetProperty("bullPenId").GetString()); // which of its requests failed

            // Not subscribed: its events do not arrive.
            await Server.PublishAsync(rooms[3], "member_joined", new { userId = "x" });
            Assert.Empty(await client.BarrierAsync());

            // Re-subscribing to a room already followed is fine; unsubscribing frees a place.
            await SubscribedAsync(client, rooms[1]);
            await client.UnsubscribeAsync(rooms[0]);
            Assert.Equal("unsubscribed", (await client.ReceiveAsync()).Type);
            await SubscribedAsync(client, rooms[3]);
            var seq = await Server.PublishAsync(rooms[3], "member_joined", new { userId = "y" });
            Assert.Equal(seq, (await client.ReceiveAsync()).Seq);
        }

        [Fact]
        public async Task Connection_over_max_connections_per_user_gets_too_many_connections_and_4009_until_one_closes()
        {
            var user = User("busy");
            var first = await Server.ConnectAsync(user);
            await using var second = await Server.ConnectAsync(user);
            await using var otherUser = await Server.ConnectAsync(User("bystander"));
            await using var otherUserAgain = await Server.ConnectAsync(User("bystander2"));

            await using (var third = await Server.ConnectRawAsync())
            {
                await third.SendAuthAsync(Server.UserToken(user));
                await ReceiveErrorAsync(third, "auth_error", "too_many_connections");
                Assert.Equal(4009, await third.ReceiveCloseAsync());
            }

            // A refresh on an admitted connection is not counted twice, and the others are untouched.
            await first.SendAuthAsync(Server.UserToken(user));
            Assert.Equal("auth_success", (await first.ReceiveAsync()).Type);
            await AssertAliveAsync(second);
            await AssertAliveAsync(otherUser);

            await first.Socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
            await first.DisposeAsync();
            await using var fourth = await ConnectOnceAdmittedAsync(user);
            await AssertAliveAsync(fourth);
            await AssertAliveAsync(second);
        }

        [Fact]
        public async Task Query_token_over_max_connections_per_user_gets_too_many_connections_first_and_4009()
        {
            var user = User("busy-query");
            await using var first = await Server.ConnectAsync(user);
            await using var second = await Server.ConnectAsync(user);

            await using var third = await Server.ConnectRawAsync(Server.UserToken(user));

            await ReceiveErrorAsync(third, "auth_error", "too_many_connections");
            Assert.Equal(4009, await third.ReceiveCloseAsync());
            await AssertAliveAsync(first);
        }
    }

    // ================================================================ rate limit

    public class RateLimit
    {
        // 2 a second refill one message every 500 ms: far slower than a test sends, so the counts below are exact.
        private const string Hocon = "traderoom.limits { messages-per-second = 2, message-burst = 5, flood-close-after = 10 }";

        private static Task SendPingAsync(WsClient client, int n) => client.SendAsync(new { type = "ping", data = new { n } });

        /// <summary>Sends 0..count-1 as pings back to back and reads the next <paramref name="answers"/> frames.</summary>
        private static async Task<List<Frame>> FloodAsync(WsClient client, int count, int answers)
        {
            for (var n = 0; n < count; n++)
                await SendPingAsync(client, n);
            var frames = new List<Frame>();
            for (var i = 0; i < answers; i++)
                frames.Add(await client.ReceiveAsync());
            return frames;
        }

        private static int[] PongedPings(IEnumerable<Frame> frames) =>
            frames.Where(f => f.Type == "pong").Select(f => f.Data.GetProperty("n").GetInt32()).Order().ToArray();

        [Fact]
        public async Task Messages_over_the_burst_are_dropped_and_answered_rate_limited_and_the_connection_stays_open()
        {
            await using var server = await TestServer.StartAsync(Hocon);
            await using var client = await WsClient.ConnectAsync(server.WsUri);

            var frames = await FloodAsync(client, 8, 8);

            Assert.Equal([0, 1, 2, 3, 4], PongedPings(frames));
            var errors = frames.Where(f => f.Type != "pong").ToArray();
            Assert.Equal(3, errors.Length);
            Assert.All(errors, f => Assert.Equal(("error", "rate_limited"), (f.Type, f.Code)));

            // The dropped pings are never answered; once the bucket refills (time passing is the point) pings work again.
            await Task.Delay(600);
            await SendPingAsync(client, 100);
            var later = await client.ReceiveAsync();
            Assert.Equal(("pong", 100), (later.Type, later.Data.GetProperty("n").GetInt32()));
            Assert.Equal(WebSocketState.Open, client.Socket.State);
        }

        [Fact]
        public async Task Rate_limited_answers_come_after_the_answers_to_the_earlier_messages()
        {
            await using var server = await TestServer.StartAsync(Hocon);
            await using var client = await WsClient.ConnectAsync(server.WsUri);

            var frames = await FloodAsync(client, 8, 8);

            Assert.Equal(["pong", "pong", "pong", "pong", "pong", "error", "error", "error"], frames.Select(f => f.Type));
            Assert.Equal([0, 1, 2, 3, 4], frames.Take(5).Select(f => f.Data.GetProperty("n").GetInt32()));
        }

        [Fact]
        public async Task Flooding_past_flood_close_after_refusals_in_a_row_closes_1008_and_other_users_are_unaffected()
        {
            // One message a second: nothing refills while the test floods.
            await using var server = await TestServer.StartAsync("traderoom.limits { messages-per-second = 1, message-burst = 5, flood-close-after = 10 }");
            await using var bystander = await server.ConnectAsync("calm-user");
            await using var flooder = await WsClient.ConnectAsync(server.WsUri);

            // 5 in the burst and 10 refused in a row: every one answered, and still open.
            var frames = await FloodAsync(flooder, 15, 15);
            Assert.Equal([0, 1, 2, 3, 4], PongedPings(frames));
            var errors = frames.Where(f => f.Type != "pong").ToArray();
            Assert.Equal(10, errors.Length);
            Assert.All(errors, f => Assert.Equal(("error", "rate_limited"), (f.Type, f.Code)));
            Assert.Equal(WebSocketState.Open, flooder.Socket.State);

            // The 11th refusal in a row closes with 1008.
            await SendPingAsync(flooder, 15);
            Assert.Equal(1008, await flooder.ReceiveCloseAsync());
            Assert.Equal("rate limit exceeded", flooder.Socket.CloseStatusDescription);

            await AssertAliveAsync(bystander);
        }
    }

    // ================================================================ faults

    public class Faults
    {
        [Fact]
        public async Task Aborted_client_and_killed_tcp_connection_are_removed_and_the_connection_count_returns_to_zero()
        {
            await using var server = await TestServer.StartAsync();
            var client = await server.ConnectAsync("aborting-user");
            using var raw = await RawWebSocket.ConnectAsync(server.WsPort);
            await server.WaitForHealthAsync(h => h.Connections == 2, "both connections to be counted");

            client.Socket.Abort();
            client.Socket.Dispose();
            await server.WaitForHealthAsync(h => h.Connections == 1, "the aborted connection to be removed");

            raw.Reset();
            await server.WaitForHealthAsync(h => h.Connections == 0, "the killed TCP connection to be removed");
        }

        [Fact]
        public async Task Silent_client_that_never_answers_the_heartbeat_close_is_released_after_the_close_timeout()
        {
            await using var server = await TestServer.StartAsync(FastHeartbeat + "\ntraderoom.websocket.close-timeout = 500ms");
            using var raw = await RawWebSocket.ConnectAsync(server.WsPort);
            RawWebSocket.RawFrame frame;
            do
                frame = await raw.ReadFrameAsync(TimeSpan.FromSeconds(5));
            while (frame.Opcode != RawWebSocket.Close);
            Assert.Equal(4000, frame.CloseStatus().Code);

            // Never answering the close: the server gives up after the close timeout and lets the connection go.
            await server.WaitForHealthAsync(h => h.Connections == 0, "the silent connection to be released");
        }

        [Fact]
        public async Task Resumed_replay_larger_than_the_replay_window_arrives_in_full_and_the_connection_stays_open()
        {
            await using var server = await TestServer.StartAsync(
                "traderoom.websocket { outbound-queue-limit = 8KiB, slow-consumer-hard-limit = 4MiB, slow-consumer-grace = 30s }");
            var room = E2E.Room("big-replay");
            string epoch;
            await using (var first = await server.ConnectAsync("resumer"))
            {
                await first.SubscribeAsync(room);
                epoch = (await first.ReceiveTypeAsync("subscribed")).Data.GetProperty("epoch").GetString()!;
            }
            var pad = new string('x', 2000);
            for (var i = 0; i < 200; i++) // ~400 KiB of history, 50 windows' worth
                await server.PublishAsync(room, "member_joined", new { userId = $"m{i}", pad });

            await using var client = await server.ConnectAsync("resumer");
            await client.SendAsync(new { type = "subscribe_room", data = new { bullPenId = room, sinceSeq = 0, epoch } });

            var subscribed = await client.ReceiveAsync();
            Assert.Equal(("subscribed", true), (subscribed.Type, subscribed.Data.GetProperty("recovered").GetBoolean()));
            for (var seq = 1; seq <= 200; seq++)
                Assert.Equal(seq, (await client.ReceiveAsync()).Seq);
            await AssertAliveAsync(client);
        }
    }

    // ================================================================ a WebSocket client by hand

    /// <summary>
    /// A client that does the RFC 6455 handshake by hand over a <see cref="TcpClient"/> and then only reads: it never
    /// answers pings, so the server hears nothing from it.
    /// </summary>
    private sealed class RawWebSocket : IDisposable
    {
        public const int Close = 0x8;
        public const int Ping = 0x9;

        private readonly TcpClient _tcp;
        private readonly NetworkStream _stream;
        private readonly List<byte> _buffer;

        private RawWebSocket(TcpClient tcp, List<byte> leftover)
        {
            _tcp = tcp;
            _stream = tcp.GetStream();
            _buffer = leftover;
        }

        public readonly record struct RawFrame(int Opcode, byte[] Payload)
        {
            public (int Code, string Reason) CloseStatus() =>
                (BinaryPrimitives.ReadUInt16BigEndian(Payload), Encoding.UTF8.GetString(Payload, 2, Payload.Length - 2));
        }

        public static async Task<RawWebSocket> ConnectAsync(int port)
        {
            var tcp = new TcpClient();
            using var timeout = new CancellationTokenSource(WsClient.DefaultTimeout);
            await tcp.ConnectAsync(IPAddress.Loopback, port, timeout.Token);
            await tcp.GetStream().WriteAsync(Encoding.ASCII.GetBytes(E2E.UpgradeRequest()), timeout.Token);
            var raw = new RawWebSocket(tcp, []);
            var head = await raw.ReadHeadAsync(timeout.Token);
            Assert.StartsWith("HTTP/1.1 101", head, StringComparison.Ordinal);
            return raw;
        }

        /// <summary>Kills the TCP connection with a reset, no close handshake.</summary>
        public void Reset()
        {
            _tcp.Client.LingerState = new LingerOption(true, 0);
            _tcp.Close();
        }

        public async Task<RawFrame> ReadFrameAsync(TimeSpan timeout)
        {
            using var cancel = new CancellationTokenSource(timeout);
            await FillAsync(2, cancel.Token);
            var opcode = _buffer[0] & 0x0F;
            Assert.Equal(0, _buffer[1] & 0x80); // server frames are not masked
            long length = _buffer[1] & 0x7F;
            var header = 2;
            if (length == 126)
            {
                await FillAsync(4, cancel.Token);
                length = (_buffer[2] << 8) | _buffer[3];
                header = 4;
            }
            else if (length == 127)
            {
                await FillAsync(10, cancel.Token);
                length = BinaryPrimitives.ReadInt64BigEndian(_buffer.GetRange(2, 8).ToArray());
                header = 10;
            }
            await FillAsync(header + (int)length, cancel.Token);
            var payload = _buffer.GetRange(header, (int)length).ToArray();
            _buffer.RemoveRange(0, header + (int)length);
            return new RawFrame(opcode, payload);
        }

        private async Task<string> ReadHeadAsync(CancellationToken cancel)
        {
            while (true)
            {
                for (var i = 0; i + 3 < _buffer.Count; i++)
                {
                    if (_buffer[i] == '\r' && _buffer[i + 1] == '\n' && _buffer[i + 2] == '\r' && _buffer[i + 3] == '\n')
                    {
                        var head = Encoding.ASCII.GetString(_buffer.GetRange(0, i).ToArray());
                        _buffer.RemoveRange(0, i + 4);
                        return head;
                    }
                }
                await ReadMoreAsync(cancel);
            }
        }

        private async Task FillAsync(int count, CancellationToken cancel)
        {
            while (_buffer.Count < count)
                await ReadMoreAsync(cancel);
        }

        private async Task ReadMoreAsync(CancellationToken cancel)
        {
            var chunk = new byte[4096];
            var n = await _stream.ReadAsync(chunk, cancel);
            if (n == 0)
                throw new InvalidOperationException($"the server closed the TCP connection; unread: {JsonSerializer.Serialize(_buffer)}");
            _buffer.AddRange(chunk.AsSpan(0, n));
        }

        public void Dispose() => _tcp.Dispose();
    }
}
