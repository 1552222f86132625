using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using TradeRoom.Tests.Support;
using Xunit.Abstractions;

namespace TradeRoom.Tests.Integration;

/// <summary>
/// Connections that send random and malformed frames (random bytes, invalid UTF-8, broken and deeply nested JSON,
/// wrong field types, huge strings, unknown types, binary frames, floods) while a normal client follows a room
/// fed over HTTP. Every message is answered, or the socket is closed with the documented code for what was sent;
/// the server stays up, the normal client's stream stays gap-free and every fuzz connection goes away.
/// </summary>
public class FuzzTests(ITestOutputHelper output)
{
    private const int Seed = 424242;
    private const int MaxMessageSize = 64 * 1024;
    private static readonly string[] AnswerTypes = ["error", "pong", "subscribed", "unsubscribed", "auth_success", "auth_error"];

    /// <summary>One frame to send. <paramref name="Answered"/>: the server answers it with one frame; <paramref name="CloseCode"/>: it closes the socket with that code.</summary>
    private sealed record FuzzMessage(string Kind, byte[][] Fragments, WebSocketMessageType Type, bool Answered, int? CloseCode);

    private static FuzzMessage Text(string kind, string text, bool answered = true, int? closeCode = null) =>
        Text(kind, Encoding.UTF8.GetBytes(text), answered, closeCode);

    private static FuzzMessage Text(string kind, byte[] bytes, bool answered = true, int? closeCode = null) =>
        bytes.Length > MaxMessageSize
            ? new FuzzMessage(kind, [bytes], WebSocketMessageType.Text, false, 1009)
            : new FuzzMessage(kind, [bytes], WebSocketMessageType.Text, answered, closeCode);

    private static string RandomAscii(Random rng, int length)
    {
        var chars = new char[length];
        for (var i = 0; i < length; i++)
            chars[i] = (char)rng.Next(32, 127);
        return new string(chars);
    }

    private static string Nested(int depth, string open, string close, string inner) =>
        string.Concat(Enumerable.Repeat(open, depth)) + inner + string.Concat(Enumerable.Repeat(close, depth));

    /// <summary>One random message. <paramref name="closing"/>: whether messages that make the server close may be picked.</summary>
    private static FuzzMessage Generate(Random rng, TestServer server, string user, bool closing)
    {
        while (true)
        {
            var pick = rng.Next(100);
            if (!closing && pick < 12)
                continue;
            switch (pick)
            {
                case < 3:
                    return new FuzzMessage("binary", [RandomBytes(rng, rng.Next(1, 300))], WebSocketMessageType.Binary, false, 1003);
                case < 6:
                {
                    var bytes = RandomBytes(rng, rng.Next(1, 300));
                    return Utf8.IsValid(bytes) ? Text("random bytes (valid UTF-8 by chance)", bytes) : Text("random bytes as text", bytes, false, 1007);
                }
                case < 8:
                {
                    var bytes = Encoding.UTF8.GetBytes("""{"type":"ping","data":{"s":"__"}}""");
                    bytes[^5] = 0xFF;
                    bytes[^4] = 0xC3; // a lead byte without its continuation
                    return Text("invalid UTF-8 inside JSON", bytes, false, 1007);
                }
                case < 9:
                    return Text("string over the size limit", JsonSerializer.Serialize(new { type = "ping", data = new { s = new string('x', MaxMessageSize + rng.Next(1, 5000)) } }));
                case < 11:
                    return Text("auth with a garbage token", JsonSerializer.Serialize(new { type = "auth", data = new { token = RandomAscii(rng, rng.Next(0, 200)) } }), true, 4001);
                case < 12:
                {
                    // A token whose signature does not match.
                    var token = server.UserToken(user);
                    return Text("auth with a forged token", JsonSerializer.Serialize(new { type = "auth", data = new { token = token[..^4] + "AAAA" } }), true, 4001);
                }
                case < 20:
                    return Text("random printable text", RandomAscii(rng, rng.Next(0, 400)));
                case < 26:
                {
                    string[] broken = ["{", "}", "{\"type\":", "{\"type\":\"ping\"", "{\"type\":\"ping\",\"data\":{}", "[1,2", "{,}", "nul", "\"unterminated",
                        "{\"type\":\"ping\",}", "{'type':'ping'}", "{\"type\":\"ping\" \"data\":{}}", "\u0000", "", "  ", "{\"a\":1}{\"b\":2}"];
                    return Text("broken JSON", broken[rng.Next(broken.Length)]);
                }
                case < 30:
                {
                    var depth = rng.Next(33, 1001);
                    return rng.Next(3) switch
                    {
                        0 => Text("array nested 33-1000 deep", Nested(depth, "[", "]", "1")),
                        1 => Text("ping data nested 33-1000 deep", """{"type":"ping","data":""" + Nested(depth, "{\"a\":", "}", "1") + "}"),
                        _ => Text("subscribe data nested 33-1000 deep", """{"type":"subscribe_room","data":{"bullPenId":""" + Nested(depth, "[", "]", "1") + "}}"),
                    };
                }
                case < 42:
                {
                    string[] wrong =
                    [
                        """{"type":5}""", """{"type":null}""", """{"type":["ping"]}""", """{"data":{}}""", "[]", "42", "\"ping\"", "true", "null",
                        """{"type":"subscribe_room"}""", """{"type":"subscribe_room","data":"r1"}""", """{"type":"subscribe_room","data":{"bullPenId":true}}""",
                        """{"type":"subscribe_room","data":{"bullPenId":""}}""", """{"type":"subscribe_room","data":{"bullPenId":1.5}}""",
                        """{"type":"subscribe_room","data":{"bullPenId":{}}}""", """{"type":"subscribe_room","data":{"bullPenId":"r1","sinceSeq":"ten"}}""",
                        """{"type":"subscribe_room","data":{"bullPenId":"r1","sinceSeq":-1}}""", """{"type":"subscribe_room","data":{"bullPenId":"r1","sinceSeq":1e400}}""",
                        """{"type":"subscribe_room","data":{"bullPenId":"r1","sinceSeq":0,"epoch":7}}""", """{"type":"unsubscribe_room","data":[]}""",
                        """{"type":"auth"}""", """{"type":"auth","data":{"token":5}}""", """{"type":"auth","data":"token"}""",
                        """{"type":"subscribe_room","data":{"bullPenId":"\ud800"}}""", """{"type":"\udfff"}""", """{"type":"ping","data":{"s":"\ud800"}}""",
                        """{"type":"ping","type":"auth"}""", """{"type":"ping","data":7}""", """{"type":"ping","data":null}""",
                    ];
                    return Text("wrong field types", wrong[rng.Next(wrong.Length)]);
                }
                case < 45:
                    return rng.Next(2) == 0
                        ? Text("huge string under the limit", JsonSerializer.Serialize(new { type = "ping", data = new { s = new string('y', rng.Next(30_000, MaxMessageSize - 100)) } }))
                        : Text("huge room id", JsonSerializer.Serialize(new { type = "subscribe_room", data = new { bullPenId = new string('r', rng.Next(129, 60_000)) } }));
                case < 55:
                    return Text("unknown type", JsonSerializer.Serialize(new { type = RandomAscii(rng, rng.Next(0, 100)), data = new { x = rng.Next() } }));
                case < 70:
                    return Text("ping with garbage fields", JsonSerializer.Serialize(new { type = "ping", data = new { n = rng.Next(), junk = RandomAscii(rng, 20) }, extra = new[] { 1, 2 }, seq = "x" }));
                case < 80:
                    return Text("subscribe with garbage fields", JsonSerializer.Serialize(new { type = "subscribe_room", data = new { bullPenId = $"fz-{rng.Next(30)}", junk = new { a = 1 }, sinceSeq = (long?)null }, more = true }));
                case < 85:
                    return Text("unsubscribe", JsonSerializer.Serialize(new { type = "unsubscribe_room", data = new { bullPenId = rng.Next(2) == 0 ? $"fz-{rng.Next(30)}" : (object)rng.Next(1000) } }));
                case < 90:
                    return Text("auth with a valid token", JsonSerializer.Serialize(new { type = "auth", data = new { token = server.UserToken(rng.Next(4) == 0 ? "someone-else" : user) } }));
                case < 95:
                {
                    // A valid ping in three fragments.
                    var bytes = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new { type = "ping", data = new { fragmented = rng.Next() } }));
                    var a = rng.Next(1, bytes.Length - 1);
                    var b = rng.Next(a, bytes.Length);
                    return new FuzzMessage("fragmented ping", [bytes[..a], bytes[a..b], bytes[b..]], WebSocketMessageType.Text, true, null);
                }
                default:
                    return Text("subscribe with a resume position", JsonSerializer.Serialize(new { type = "subscribe_room", data = new { bullPenId = $"fz-{rng.Next(30)}", sinceSeq = rng.Next(0, 10), epoch = RandomAscii(rng, 16) } }));
            }
        }
    }

    private static byte[] RandomBytes(Random rng, int length)
    {
        var bytes = new byte[length];
        rng.NextBytes(bytes);
        return bytes;
    }

    /// <summary>A client socket whose reader counts answer frames (frames without a top-level seq) and records how the socket ended.</summary>
    private sealed class CountingSocket : IAsyncDisposable
    {
        private readonly Task _reader;
        private int _answers;

        private CountingSocket(ClientWebSocket socket)
        {
            Socket = socket;
            _reader = ReadAsync();
        }

        public ClientWebSocket Socket { get; }
        public int Answers => Volatile.Read(ref _answers);
        public ConcurrentQueue<string> AnswerCodes { get; } = new();
        public int? CloseCode { get; private set; }
        public string? Failure { get; private set; }
        public bool Ended => _reader.IsCompleted;

        public static async Task<CountingSocket> ConnectAsync(Uri uri)
        {
            var socket = new ClientWebSocket();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await socket.ConnectAsync(uri, timeout.Token);
            return new CountingSocket(socket);
        }

        private async Task ReadAsync()
        {
            var reader = new MessageReader(Socket, 8 * 1024);
            try
            {
                while (true)
                {
                    var (messageType, count) = await reader.ReadAsync();
                    if (messageType == WebSocketMessageType.Close)
                    {
                        CloseCode = (int?)Socket.CloseStatus;
                        return;
                    }

                    using var document = JsonDocument.Parse(reader.Message(count));
                    var root = document.RootElement;
                    if (root.TryGetProperty("seq", out _))
                        continue; // an event of a room it follows
                    var type = root.GetProperty("type").GetString()!;
                    if (!AnswerTypes.Contains(type))
                        Failure ??= "unexpected frame " + root;
                    if (type is "error" or "auth_error")
                        AnswerCodes.Enqueue(root.GetProperty("data").GetProperty("code").GetString()!);
                    Interlocked.Increment(ref _answers);
                }
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException)
            {
                // Our own Abort ends the reader this way too; only a socket that ended on its own is a failure.
                if (Socket.State != WebSocketState.Aborted)
                    Failure ??= $"socket ended without a close frame: {e.Message}";
            }
        }

        /// <summary>Waits until <paramref name="answers"/> answers have come or the socket has ended.</summary>
        public async Task<bool> WaitForAsync(int answers, TimeSpan timeout)
        {
            var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
            while (Answers < answers && !Ended && Environment.TickCount64 < deadline)
                await Task.Delay(2);
            return Answers >= answers || Ended;
        }

        public async Task WaitEndedAsync(TimeSpan timeout)
        {
            try
            {
                await _reader.WaitAsync(timeout);
            }
            catch (TimeoutException)
            {
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (Socket.State is WebSocketState.CloseReceived)
            {
                // Complete the server's close handshake.
                try
                {
                    using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                    await Socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", timeout.Token);
                }
                catch (Exception e) when (e is WebSocketException or OperationCanceledException)
                {
                }
            }
            Socket.Abort();
            await WaitEndedAsync(TimeSpan.FromSeconds(2));
            Socket.Dispose();
        }
    }

    /// <summary>What one fuzz worker did and saw.</summary>
    private sealed class WorkerStats
    {
        public int Sent;
        public int Answers;
        public int Sessions;
        public readonly Dictionary<int, int> Closes = new();
        public readonly Dictionary<string, int> Kinds = new();
        public readonly Dictionary<string, int> Codes = new();
    }

    /// <summary>
    /// Sends <paramref name="quota"/> random messages in bursts over successive connections. After a burst the
    /// worker waits for one answer per answered message; a burst that ends in a closing message waits for the close
    /// and checks its code is the one that message calls for.
    /// </summary>
    private static async Task<WorkerStats> FuzzWorkerAsync(TestServer server, int worker, int quota, Random rng)
    {
        var stats = new WorkerStats();
        var user = $"fuzzer-{worker}";
        while (stats.Sent < quota)
        {
            stats.Sessions++;
            var start = rng.Next(10);
            var query = start switch
            {
                < 5 => "?token=" + server.UserToken(user),
                < 6 => "?token=" + Uri.EscapeDataString(RandomAscii(rng, 40)),
                _ => "",
            };
            await using var socket = await CountingSocket.ConnectAsync(new Uri(server.WsUri + query));
            var expected = 0;
            var allowedCloses = new HashSet<int>();
            if (start < 6)
                expected = 1; // auth_success, or auth_error
            if (start == 5)
                allowedCloses.Add(4001);
            string lastKinds = query.Length > 0 ? "?token= on the upgrade" : "";

            var sessionLength = rng.Next(5, 60);
            var sessionSent = 0;
            while (allowedCloses.Count == 0 && sessionSent < sessionLength && stats.Sent < quota)
            {
                var burst = new List<string>();
                for (var k = rng.Next(1, 12); k > 0 && stats.Sent < quota; k--)
                {
                    var message = Generate(rng, server, user, closing: true);
                    try
                    {
                        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                        for (var f = 0; f < message.Fragments.Length; f++)
                            await socket.Socket.SendAsync(message.Fragments[f], message.Type, f == message.Fragments.Length - 1, timeout.Token);
                    }
                    catch (WebSocketException) when (socket.Ended)
                    {
                        break; // the server closed while we sent; checked below
                    }
                    stats.Sent++;
                    sessionSent++;
                    burst.Add(message.Kind);
                    stats.Kinds[message.Kind] = stats.Kinds.GetValueOrDefault(message.Kind) + 1;
                    if (message.Answered)
                        expected++;
                    if (message.CloseCode is { } code)
                    {
                        allowedCloses.Add(code);
                        break;
                    }
                }
                lastKinds = string.Join(", ", burst);

                if (allowedCloses.Count == 0)
                {
                    var answered = await socket.WaitForAsync(expected, TimeSpan.FromSeconds(10));
                    Assert.True(socket.Failure is null, $"worker {worker}: {socket.Failure} after [{lastKinds}]");
                    Assert.True(answered, $"worker {worker}: {socket.Answers} answers for {expected} answered messages; last burst [{lastKinds}]");
                    Assert.False(socket.Ended, $"worker {worker}: closed with {socket.CloseCode} after [{lastKinds}], which calls for no close");
                }
            }

            if (allowedCloses.Count > 0)
            {
                await socket.WaitEndedAsync(TimeSpan.FromSeconds(10));
                Assert.True(socket.Ended, $"worker {worker}: not closed after [{lastKinds}]");
                Assert.True(socket.Failure is null, $"worker {worker}: {socket.Failure} after [{lastKinds}]");
                Assert.True(socket.CloseCode is { } c && allowedCloses.Contains(c),
                    $"worker {worker}: closed with {socket.CloseCode} after [{lastKinds}]; expected one of {string.Join(",", allowedCloses)}");
                // Answers to messages just before the closing one may be cut off by the close, never more than sent.
                Assert.True(socket.Answers <= expected, $"worker {worker}: {socket.Answers} answers for {expected} answered messages");
                stats.Closes[socket.CloseCode!.Value] = stats.Closes.GetValueOrDefault(socket.CloseCode!.Value) + 1;
            }
            else if (rng.Next(2) == 0)
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await socket.Socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", timeout.Token);
                Assert.Equal(WebSocketCloseStatus.NormalClosure, socket.Socket.CloseStatus);
                stats.Closes[1000] = stats.Closes.GetValueOrDefault(1000) + 1;
            }
            // else: dropped without a close (DisposeAsync aborts).
            stats.Answers += socket.Answers;
            foreach (var code in socket.AnswerCodes)
                stats.Codes[code] = stats.Codes.GetValueOrDefault(code) + 1;
        }
        return stats;
    }

    /// <summary>The normal client: its reader records the seqs of the room's events.</summary>
    private sealed class Follower : IAsyncDisposable
    {
        private readonly WsClient _client;
        private readonly Task _reader;

        private Follower(WsClient client)
        {
            _client = client;
            _reader = Task.Run(ReadAsync);
        }

        public ConcurrentQueue<long> Seqs { get; } = new();
        public string? Failure { get; private set; }
        public long Last => Seqs.LastOrDefault();

        public static async Task<Follower> StartAsync(TestServer server, string room) =>
            new(await server.ConnectAndSubscribeAsync("follower", room));

        private async Task ReadAsync()
        {
            try
            {
                while (true)
                {
                    var frame = await _client.ReceiveAsync(TimeSpan.FromMinutes(2));
                    if (frame.Type != "ranking_changed")
                        Failure ??= "unexpected frame " + frame.Raw;
                    else
                        Seqs.Enqueue(frame.Seq);
                }
            }
            catch (Exception e) when (e is InvalidOperationException or WebSocketException or OperationCanceledException)
            {
                Failure ??= "follower stopped: " + e.Message;
            }
        }

        public async Task WaitForAsync(long seq)
        {
            var deadline = DateTime.UtcNow.AddSeconds(15);
            while (Last < seq && Failure is null && DateTime.UtcNow < deadline)
                await Task.Delay(20);
        }

        public async ValueTask DisposeAsync()
        {
            await _client.DisposeAsync();
            await Task.WhenAny(_reader, Task.Delay(2000));
        }
    }

    /// <summary>Publishes public events over HTTP to <paramref name="room"/> until <paramref name="stop"/> (at least 20); returns their seqs.</summary>
    private static async Task<List<long>> PublishUntilAsync(TestServer server, string room, Task stop)
    {
        var seqs = new List<long>();
        while (!stop.IsCompleted || seqs.Count < 20)
        {
            seqs.Add(await server.PublishAsync(room, "ranking_changed", new { i = seqs.Count }));
            await Task.Delay(5);
        }
        return seqs;
    }

    private async Task AssertServerRecoveredAsync(TestServer server, Follower follower, List<long> published)
    {
        Assert.Equal("ok", (await server.HealthAsync()).Status);
        await follower.WaitForAsync(published[^1]);
        Assert.Null(follower.Failure);
        Assert.Equal(Enumerable.Range(1, published.Count).Select(i => (long)i), published);
        Assert.Equal(published, follower.Seqs);
        await HealthPoller.WaitForAsync(server, connections: 1);
        output.WriteLine($"the follower got all {published.Count} events in order; connections back to 1");
    }

    private void Report(string title, IReadOnlyCollection<WorkerStats> stats, Stopwatch elapsed)
    {
        output.WriteLine($"{title}: seed {Seed}, {stats.Sum(s => s.Sent)} messages sent over {stats.Sum(s => s.Sessions)} connections, " +
                         $"{stats.Sum(s => s.Answers)} answers, {elapsed.ElapsedMilliseconds} ms");
        output.WriteLine("  closes: " + string.Join(", ", stats.SelectMany(s => s.Closes).GroupBy(c => c.Key).OrderBy(g => g.Key).Select(g => $"{g.Key} x{g.Sum(c => c.Value)}")));
        output.WriteLine("  error codes: " + string.Join(", ", stats.SelectMany(s => s.Codes).GroupBy(c => c.Key).OrderBy(g => g.Key).Select(g => $"{g.Key} x{g.Sum(c => c.Value)}")));
        output.WriteLine("  kinds: " + string.Join(", ", stats.SelectMany(s => s.Kinds).GroupBy(c => c.Key).OrderBy(g => g.Key).Select(g => $"{g.Key} x{g.Sum(c => c.Value)}")));
    }

    [Fact]
    public async Task Random_and_malformed_frames_are_each_answered_or_closed_with_their_code_and_never_disturb_a_normal_client()
    {
        output.WriteLine($"seed {Seed}");
        var elapsed = Stopwatch.StartNew();
        await using var server = await TestServer.StartAsync("traderoom.limits { messages-per-second = 100000, message-burst = 100000 }");
        var room = E2E.Room("fuzz-main");
        await using var follower = await Follower.StartAsync(server, room);

        var workers = Enumerable.Range(0, 20).Select(w => Task.Run(() => FuzzWorkerAsync(server, w, quota: 150, new Random(Seed + w)))).ToArray();
        var publisher = PublishUntilAsync(server, room, Task.WhenAll(workers));
        var stats = await Task.WhenAll(workers);
        var published = await publisher;

        Report("fuzz", stats, elapsed);
        Assert.Equal(3000, stats.Sum(s => s.Sent));
        foreach (var code in new[] { 1003, 1007, 1009, 4001 })
            Assert.True(stats.Any(s => s.Closes.ContainsKey(code)), $"no session was closed with {code}; the fuzz did not reach it");
        await AssertServerRecoveredAsync(server, follower, published);
    }

    [Fact]
    public async Task Floods_at_the_default_rate_limit_get_rate_limited_then_1008_and_never_disturb_a_normal_client()
    {
        output.WriteLine($"seed {Seed}");
        var elapsed = Stopwatch.StartNew();
        await using var server = await TestServer.StartAsync();
        var room = E2E.Room("flood-main");
        await using var follower = await Follower.StartAsync(server, room);

        // Each flooder writes 300 small answered messages in one TCP write (so the server reads them back to back),
        // reads the answers up to the close, and reconnects: 4 flooders x 3 connections.
        var flooders = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            var rng = new Random(Seed + 100 + w);
            var stats = new WorkerStats();
            var user = $"flooder-{w}";
            for (var session = 0; session < 3; session++)
            {
                stats.Sessions++;
                using var socket = new RawWsClient();
                await socket.ConnectAsync(server.WsPort, "/ws?token=" + server.UserToken(user));
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                Assert.Contains("auth_success", Encoding.UTF8.GetString((await socket.ReadFrameAsync(timeout.Token)).Payload));

                var flood = new List<byte[]>();
                while (flood.Count < 300)
                {
                    var message = Generate(rng, server, user, closing: false);
                    if (message.Fragments.Length == 1 && message.Fragments[0].Length <= 1024)
                    {
                        flood.Add(message.Fragments[0]);
                        stats.Kinds[message.Kind] = stats.Kinds.GetValueOrDefault(message.Kind) + 1;
                    }
                }
                await socket.SendTextFramesAsync(flood);
                stats.Sent += flood.Count;

                var answers = 0;
                var codes = new List<string>();
                while (true)
                {
                    var (opcode, payload) = await socket.ReadFrameAsync(timeout.Token);
                    if (opcode == 0x8)
                    {
                        var code = (payload[0] << 8) | payload[1];
                        Assert.Equal(1008, code);
                        stats.Closes[code] = stats.Closes.GetValueOrDefault(code) + 1;
                        break;
                    }
                    if (opcode != 0x1)
                        continue;
                    using var frame = JsonDocument.Parse(payload);
                    var type = frame.RootElement.GetProperty("type").GetString()!;
                    Assert.Contains(type, AnswerTypes);
                    if (type is "error" or "auth_error")
                        codes.Add(frame.RootElement.GetProperty("data").GetProperty("code").GetString()!);
                    answers++;
                }
                // The receive loop answers refusals itself and then closes; answers the connection actor had not
                // queued yet (those of the accepted burst) may be cut off by the close, so only an upper bound holds.
                Assert.True(answers < flood.Count, $"flooder {w}: {answers} answers for {flood.Count} messages, yet closed");
                Assert.Contains("rate_limited", codes);
                Assert.True(codes.Count(c => c == "rate_limited") > 40, $"flooder {w}: only {codes.Count(c => c == "rate_limited")} rate_limited before the close");
                stats.Answers += answers;
                foreach (var code in codes)
                    stats.Codes[code] = stats.Codes.GetValueOrDefault(code) + 1;
            }
            return stats;
        })).ToArray();
        var publisher = PublishUntilAsync(server, room, Task.WhenAll(flooders));
        var stats = await Task.WhenAll(flooders);
        var published = await publisher;

        Report("flood", stats, elapsed);
        await AssertServerRecoveredAsync(server, follower, published);
    }

    [Fact]
    public async Task A_client_that_keeps_sending_ten_times_the_rate_limit_is_closed_with_1008()
    {
        await using var server = await TestServer.StartAsync();
        await using var socket = await CountingSocket.ConnectAsync(new Uri(server.WsUri + "?token=" + server.UserToken("steady-flooder")));

        // ~200 messages a second for up to 4 s against a limit of 20 a second (burst 50): after the burst, nine in
        // ten messages are refused with rate_limited, for seconds on end.
        var ping = Encoding.UTF8.GetBytes("""{"type":"ping","data":{}}""");
        var sent = 0;
        var elapsed = Stopwatch.StartNew();
        while (!socket.Ended && elapsed.Elapsed < TimeSpan.FromSeconds(4))
        {
            await socket.Socket.SendAsync(ping, WebSocketMessageType.Text, true, CancellationToken.None);
            sent++;
            await Task.Delay(5);
        }
        await socket.WaitEndedAsync(TimeSpan.FromSeconds(2));
        var refused = socket.AnswerCodes.Count(c => c == "rate_limited");
        output.WriteLine($"{sent} messages in {elapsed.ElapsedMilliseconds} ms, {refused} refused with rate_limited, close {socket.CloseCode?.ToString() ?? "none"}");
        // flood-close-after is 50: the 51st refusal within a second closes instead of answering.
        Assert.True(refused >= 50, $"only {refused} refusals; the client did not flood");
        Assert.Equal(1008, socket.CloseCode);
    }
}
