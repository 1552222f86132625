using System.Collections.Concurrent;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using TradeRoom.Actors;
using TradeRoom.Actors.Integration;
using TradeRoom.Actors.Rooms;
using TradeRoom.Contracts;
using TradeRoom.Protocol;
using TradeRoom.Server;
using TradeRoom.Server.WebSockets;
using TradeRoom.Tests.Support;
using TradeRoom.Transport;
using Xunit.Abstractions;

namespace TradeRoom.Tests.Integration;

/// <summary>
/// Slow consumers. End to end: a client that stops reading is closed with 4008 and never delays the other
/// subscribers of its room. In process: <see cref="ClientSocket"/>'s byte budget, conflation of state events while
/// behind, the hard limit and the grace period, over a WebSocket pair on in-memory pipes whose reader the test
/// controls.
/// </summary>
public class SlowConsumerTests(ITestOutputHelper output)
{
    // ================================================================= end to end: a stalled client among 200 readers

    private const int NormalClients = 200;
    private const int PublicEvents = 100;
    private static readonly TimeSpan PublicInterval = TimeSpan.FromMilliseconds(20);
    private const int PrivateEvents = 200;
    private const int PrivatePad = 32_000;

    /// <summary>A reading client that records, per public event, its seq, index and publish-to-receive latency.</summary>
    private sealed class StreamClient : IAsyncDisposable
    {
        private readonly ClientWebSocket _socket = new();
        private readonly TaskCompletionSource _subscribed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private Task? _reader;

        public ConcurrentQueue<(long Seq, int Run, int Index, long LatencyTicks)> Events { get; } = new();
        public string? Failure { get; private set; }

        public async Task StartAsync(Uri ws, string token, string bullPenId)
        {
            await _socket.ConnectAsync(new Uri($"{ws}?token={token}"), CancellationToken.None);
            _reader = ReadAsync();
            await _socket.SendAsync(JsonSerializer.SerializeToUtf8Bytes(new { type = "subscribe_room", data = new { bullPenId } }),
                WebSocketMessageType.Text, true, CancellationToken.None);
            await _subscribed.Task.WaitAsync(TimeSpan.FromSeconds(15));
        }

        private async Task ReadAsync()
        {
            var reader = new MessageReader(_socket);
            try
            {
                while (true)
                {
                    var (type, count) = await reader.ReadAsync();
                    if (type == WebSocketMessageType.Close)
                        return;
                    var now = Stopwatch.GetTimestamp();

                    using var document = JsonDocument.Parse(reader.Message(count));
                    var root = document.RootElement;
                    switch (root.GetProperty("type").GetString())
                    {
                        case "auth_success":
                            break;
                        case "subscribed":
                            _subscribed.TrySetResult();
                            break;
                        case "ranking_changed":
                            var data = root.GetProperty("data");
                            Events.Enqueue((root.GetProperty("seq").GetInt64(), data.GetProperty("run").GetInt32(),
                                data.GetProperty("i").GetInt32(), now - data.GetProperty("t").GetInt64()));
                            break;
                        default:
                            Failure ??= "unexpected frame " + root;
                            break;
                    }
                }
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException)
            {
                Failure ??= "socket failed: " + e.Message;
            }
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                if (_socket.State == WebSocketState.Open)
                {
                    using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                    await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", timeout.Token);
                    await _reader!.WaitAsync(timeout.Token);
                }
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException or TimeoutException)
            {
            }
            _socket.Dispose();
        }
    }

    private static double Ms(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;

    private static (double P50, double P99, double Max) Percentiles(IEnumerable<long> latencyTicks)
    {
        var sorted = latencyTicks.Select(Ms).Order().ToArray();
        return (sorted[sorted.Length / 2], sorted[(int)Math.Min(sorted.Length - 1, Math.Ceiling(sorted.Length * 0.99) - 1)], sorted[^1]);
    }

    /// <summary>Publishes <paramref name="count"/> small public events, paced, each stamped with its send time; returns their seqs.</summary>
    private static async Task<List<long>> PublishPublicStreamAsync(TradeRoomIntegration integration, string room, int run, int count = PublicEvents)
    {
        var seqs = new List<long>();
        for (var i = 0; i < count; i++)
        {
            var result = await integration.OnRankingChanged(room, new { run, i, t = Stopwatch.GetTimestamp() });
            seqs.Add(Assert.IsType<EventPublished>(result).Seq);
            await Task.Delay(PublicInterval);
        }
        return seqs;
    }

    /// <summary>Waits until every client has the events of <paramref name="run"/>, then checks they are exactly <paramref name="seqs"/> in order.</summary>
    private static async Task<List<long>> CollectRunAsync(IReadOnlyList<StreamClient> clients, int run, IReadOnlyList<long> seqs)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (clients.Any(c => c.Events.Count(e => e.Run == run) < seqs.Count) && DateTime.UtcNow < deadline)
            await Task.Delay(50);
        var latencies = new List<long>();
        for (var n = 0; n < clients.Count; n++)
        {
            Assert.Null(clients[n].Failure);
            var events = clients[n].Events.Where(e => e.Run == run).ToList();
            Assert.True(seqs.SequenceEqual(events.Select(e => e.Seq)),
                $"client {n}, run {run}: expected {seqs.Count} events [{seqs[0]}..{seqs[^1]}], got {events.Count}: [{string.Join(",", events.Select(e => e.Seq))}]");
            Assert.Equal(Enumerable.Range(0, seqs.Count), events.Select(e => e.Index));
            latencies.AddRange(events.Select(e => e.LatencyTicks));
        }
        return latencies;
    }

    [Fact]
    public async Task A_stalled_client_is_closed_with_4008_and_never_delays_the_other_subscribers_of_its_room()
    {
        var total = Stopwatch.StartNew();
        await using var server = await TestServer.StartAsync("""
            traderoom.websocket {
              outbound-queue-limit = 64KiB
              slow-consumer-hard-limit = 256KiB
              slow-consumer-grace = 300ms
              close-timeout = 30s
              slow-consumer-linger = 30s
            }
            """);
        var integration = server.App.Services.GetRequiredService<TradeRoomIntegration>();
        var room = E2E.Room("floor");

        var clients = new List<StreamClient>();
        try
        {
            for (var batch = 0; batch < NormalClients; batch += 20)
            {
                var started = Enumerable.Range(batch, 20).Select(async n =>
                {
                    var client = new StreamClient();
                    await client.StartAsync(server.WsUri, server.UserToken($"reader-{n}"), room);
                    return client;
                });
                clients.AddRange(await Task.WhenAll(started));
            }
            output.WriteLine($"{NormalClients} readers connected in {total.ElapsedMilliseconds} ms");

            // Warm-up (not measured), then the baseline: the public stream alone.
            await CollectRunAsync(clients, 0, await PublishPublicStreamAsync(integration, room, run: 0, count: 20));
            var baselineSeqs = await PublishPublicStreamAsync(integration, room, run: 1);
            var baseline = Percentiles(await CollectRunAsync(clients, 1, baselineSeqs));

            // The stalled client: authenticates with ?token=, subscribes, reads its answers, then never reads again.
            using var stalled = new RawWsClient();
            await stalled.ConnectAsync(server.WsPort, "/ws?token=" + server.UserToken("stalled"));
            await stalled.SendTextAsync(JsonSerializer.Serialize(new { type = "subscribe_room", data = new { bullPenId = room } }));
            using (var answers = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
            {
                Assert.Contains("auth_success", Encoding.UTF8.GetString((await stalled.ReadFrameAsync(answers.Token)).Payload));
                Assert.Contains("\"subscribed\"", Encoding.UTF8.GetString((await stalled.ReadFrameAsync(answers.Token)).Payload));
            }

            // The same public stream while the stalled client is sent ~6.4 MB of its own private events, paced so
            // that the kernel's buffers for its socket fill up first and only then the server's own queue grows.
            var pad = new string('x', PrivatePad);
            var privates = Task.Run(async () =>
            {
                for (var k = 0; k < PrivateEvents; k++)
                {
                    var result = await integration.OnOrderExecuted(room, new { userId = "stalled", k, pad });
                    Assert.IsType<EventPublished>(result);
                    await Task.Delay(2);
                }
            });
            var stalledSeqs = await PublishPublicStreamAsync(integration, room, run: 2);
            await privates;
            var withStalled = Percentiles(await CollectRunAsync(clients, 2, stalledSeqs));

            output.WriteLine($"baseline latency ms: p50 {baseline.P50:0.0} p99 {baseline.P99:0.0} max {baseline.Max:0.0}");
            output.WriteLine($"with a stalled client latency ms: p50 {withStalled.P50:0.0} p99 {withStalled.P99:0.0} max {withStalled.Max:0.0}");
            var bound = 4 * baseline.P99 + 250;
            Assert.True(withStalled.P99 <= bound,
                $"p99 latency with a stalled subscriber {withStalled.P99:0.0} ms is over {bound:0.0} ms (4 x baseline p99 {baseline.P99:0.0} ms + 250 ms)");

            // The stalled client now reads what the kernel held for it: a prefix of its events, then the close frame.
            var privateFrames = 0;
            long lastSeq = 0;
            using var drain = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            while (true)
            {
                var (opcode, payload) = await stalled.ReadFrameAsync(drain.Token);
                if (opcode == 0x8)
                {
                    var code = (payload[0] << 8) | payload[1];
                    var reason = Encoding.UTF8.GetString(payload, 2, payload.Length - 2);
                    output.WriteLine($"stalled client: {privateFrames} of {PrivateEvents} private events ({stalled.BytesRead} bytes) before close {code} \"{reason}\"; total {total.ElapsedMilliseconds} ms");
                    Assert.Equal(CloseCodes.SlowConsumer, code);
                    Assert.Equal("slow consumer", reason);
                    break;
                }
                if (opcode != 0x1)
                    continue; // a keep-alive ping
                using var frame = JsonDocument.Parse(payload);
                var seq = frame.RootElement.GetProperty("seq").GetInt64();
                Assert.True(seq > lastSeq, $"stalled client got seq {seq} after {lastSeq}");
                lastSeq = seq;
                if (frame.RootElement.GetProperty("type").GetString() == "order_executed")
                    privateFrames++;
            }
            // Its queue was dropped: it did not get everything (else it was never behind, and the test proved nothing).
            Assert.True(privateFrames < PrivateEvents, $"the stalled client got all {PrivateEvents} private events; it was never a slow consumer");
        }
        finally
        {
            await Task.WhenAll(clients.Select(c => c.DisposeAsync().AsTask()));
        }
    }

    // ================================================================= in process: ClientSocket over pipes

    /// <summary>
    /// A server <see cref="ClientSocket"/> and a client WebSocket over two in-memory pipes. The server-to-client pipe
    /// pauses its writer at 1 KiB, so while the test's client does not read, the socket's send loop is stuck on its
    /// first frame and everything sent after it stays in the socket's own queue.
    /// </summary>
    private sealed class SocketPair : IDisposable
    {
        private readonly Pipe _toServer = new();
        private readonly Pipe _toClient = new(new PipeOptions(pauseWriterThreshold: 1024, resumeWriterThreshold: 512, useSynchronizationContext: false));
        private readonly WebSocket _serverSocket;

        public SocketPair(TransportOptions options)
        {
            var serverStream = new DuplexPipeStream(_toServer.Reader, new FrameWriter(_toClient.Writer, null, options.WriteBufferSize));
            _serverSocket = WebSocket.CreateFromStream(serverStream, new WebSocketCreationOptions { IsServer = true, KeepAliveInterval = TimeSpan.Zero });
            Socket = new ClientSocket(_serverSocket, serverStream, options, new TransportMetrics(new TradeRoom.Actors.Monitoring.TradeRoomMetrics()));
            Client = WebSocket.CreateFromStream(new DuplexPipeStream(_toClient.Reader, new FrameWriter(_toServer.Writer, null, options.WriteBufferSize)),
                new WebSocketCreationOptions { IsServer = false, KeepAliveInterval = TimeSpan.Zero });
        }

        public ClientSocket Socket { get; }
        public WebSocket Client { get; }

        /// <summary>Queues <paramref name="e"/> and flushes, as a connection actor does (through <see cref="ConnectionSocket"/>).</summary>
        public bool Send(RoomEvent e)
        {
            var socket = new ConnectionSocket(Socket);
            var queued = socket.Queue(e);
            socket.Flush();
            return queued;
        }

        /// <summary>Waits until at least <paramref name="bytes"/> bytes are waiting for the client (examined, not consumed).</summary>
        public async Task WaitForUnreadAsync(long bytes)
        {
            var deadline = Environment.TickCount64 + 10_000;
            while (true)
            {
                long available = 0;
                if (_toClient.Reader.TryRead(out var result))
                {
                    available = result.Buffer.Length;
                    _toClient.Reader.AdvanceTo(result.Buffer.Start, result.Buffer.Start);
                }
                if (available >= bytes)
                    return;
                Assert.True(Environment.TickCount64 < deadline, $"only {available} of {bytes} bytes reached the pipe");
                await Task.Delay(5);
            }
        }

        /// <summary>Reads every message until the close frame: the text frames in order, and the close code.</summary>
        public async Task<(List<string> Frames, int CloseCode)> ReadToCloseAsync()
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            var frames = new List<string>();
            var reader = new MessageReader(Client, 256 * 1024);
            while (true)
            {
                var (type, count) = await reader.ReadAsync(timeout.Token);
                if (type == WebSocketMessageType.Close)
                    return (frames, (int)Client.CloseStatus!.Value);
                frames.Add(Encoding.UTF8.GetString(reader.Buffer, 0, count));
            }
        }

        public void Dispose()
        {
            Socket.Dispose();
            _serverSocket.Abort();
            Client.Abort();
            // Release a send loop still waiting for the reader.
            _toClient.Reader.Complete();
            _toServer.Reader.Complete();
        }
    }

    private static TransportOptions Settings(string hocon = "") => ServerConfig.Transport(ServerConfig.Load($$"""
        traderoom.websocket {
          outbound-queue-limit = 64KiB
          slow-consumer-hard-limit = 256KiB
          slow-consumer-grace = 300ms
        }
        {{hocon}}
        """));

    private static RoomEvent Event(string room, long seq, string type, int padBytes = 0, string? visibleTo = null) =>
        new(room, seq, type, visibleTo, ServerFrames.Event(type, room, seq, JsonSerializer.SerializeToUtf8Bytes(new { n = seq, pad = new string('p', padBytes) })));

    private static string Describe(string frame)
    {
        using var document = JsonDocument.Parse(frame);
        var root = document.RootElement;
        return $"{root.GetProperty("bullPenId").GetString()}:{root.GetProperty("type").GetString()}:{root.GetProperty("seq").GetInt64()}";
    }

    /// <summary>Sends a 2 KiB event that the client does not read, and waits until the send loop is stuck writing it.</summary>
    private static async Task<RoomEvent> BlockSendLoopAsync(SocketPair pair)
    {
        var blocker = Event("other", 1, "order_executed", padBytes: 2048, visibleTo: "u1");
        Assert.True(pair.Send(blocker));
        await pair.WaitForUnreadAsync(blocker.Frame.Length);
        // Bytes handed to the socket but not yet written count against the budget.
        Assert.Equal(blocker.Frame.Length, pair.Socket.QueuedBytes);
        return blocker;
    }

    [Fact]
    public async Task While_behind_a_newer_state_event_replaces_the_older_one_of_its_room_and_type_and_discrete_events_are_kept()
    {
        var settings = Settings();
        using var pair = new SocketPair(settings);
        var blocker = await BlockSendLoopAsync(pair);

        // Not behind yet (far under half the 64 KiB budget): a state event is queued as is.
        Assert.True(pair.Send(Event("A", 2, "leaderboard_update")));
        // Discrete fillers put the queue over half the budget.
        for (var seq = 3; seq <= 10; seq++)
            Assert.True(pair.Send(Event("A", seq, "order_executed", padBytes: 4096, visibleTo: "u1")));
        Assert.True(pair.Socket.QueuedBytes > settings.OutboundQueueLimit / 2);
        Assert.True(pair.Socket.QueuedBytes < settings.OutboundQueueLimit);

        var sent = new[]
        {
            Event("A", 11, "leaderboard_update"),   // replaces A:2
            Event("B", 1, "leaderboard_update"),    // another room: nothing to replace
            Event("A", 12, "portfolio_update", visibleTo: "u1"), // another conflated type: nothing to replace
            Event("A", 13, "ranking_changed"),      // discrete
            Event("A", 14, "leaderboard_update"),   // replaces A:11
            Event("A", 15, "ranking_changed"),      // discrete, same type as 13: kept
            Event("A", 16, "room_state_changed"),
            Event("A", 17, "leaderboard_update"),   // replaces A:14
            Event("A", 18, "portfolio_update", visibleTo: "u1"), // replaces A:12
            Event("A", 19, "room_state_changed"),   // replaces A:16
        };
        var queuedBefore = pair.Socket.QueuedBytes;
        foreach (var e in sent)
            Assert.True(pair.Send(e));
        var replaced = new[] { 2, 11, 14, 12, 16 }.Sum(seq => seq == 2 ? Event("A", 2, "leaderboard_update").Frame.Length
            : sent.Single(e => e.Seq == seq).Frame.Length);
        Assert.Equal(queuedBefore + sent.Sum(e => e.Frame.Length) - replaced, pair.Socket.QueuedBytes);

        // The reader comes back: it gets the kept frames in queue order, then the close.
        pair.Socket.Close(CloseCodes.Normal, "done");
        var (frames, closeCode) = await pair.ReadToCloseAsync();
        Assert.Equal(CloseCodes.Normal, closeCode);
        Assert.Equal(
            ["other:order_executed:1", .. Enumerable.Range(3, 8).Select(s => $"A:order_executed:{s}"),
             "B:leaderboard_update:1", "A:ranking_changed:13", "A:ranking_changed:15",
             "A:leaderboard_update:17", "A:portfolio_update:18", "A:room_state_changed:19"],
            frames.Select(Describe));
        Assert.Equal(blocker.Frame, Encoding.UTF8.GetBytes(frames[0]));
    }

    [Fact]
    public async Task A_socket_that_is_not_behind_conflates_nothing()
    {
        using var pair = new SocketPair(Settings());
        await BlockSendLoopAsync(pair);

        for (var seq = 2; seq <= 6; seq++)
            Assert.True(pair.Send(Event("A", seq, "leaderboard_update")));

        pair.Socket.Close(CloseCodes.Normal, "done");
        var (frames, _) = await pair.ReadToCloseAsync();
        Assert.Equal(["other:order_executed:1", .. Enumerable.Range(2, 5).Select(s => $"A:leaderboard_update:{s}")], frames.Select(Describe));
    }

    [Fact]
    public async Task Going_over_the_hard_limit_drops_the_queue_and_closes_with_4008_at_once()
    {
        var settings = Settings();
        using var pair = new SocketPair(settings);
        await BlockSendLoopAsync(pair);

        // Discrete events up to the hard limit are all accepted; the one that crosses it closes the socket.
        long seq = 2;
        while (pair.Socket.QueuedBytes + 8 * 1024 < settings.SlowConsumerHardLimit)
            Assert.True(pair.Send(Event("A", seq++, "order_executed", padBytes: 8000, visibleTo: "u1")));
        Assert.True(pair.Send(Event("A", seq++, "order_executed", padBytes: 16_000, visibleTo: "u1")));
        Assert.False(pair.Send(Event("A", seq, "ranking_changed")));

        // No sweeper runs here: the close came from crossing the limit itself. The queue is gone; only the frame
        // already in the socket's write arrives before the close.
        var (frames, closeCode) = await pair.ReadToCloseAsync();
        Assert.Equal(CloseCodes.SlowConsumer, closeCode);
        Assert.Equal("slow consumer", pair.Client.CloseStatusDescription);
        Assert.Equal(["other:order_executed:1"], frames.Select(Describe));
    }

    [Fact]
    public async Task Over_the_budget_for_longer_than_the_grace_period_closes_with_4008_but_not_before()
    {
        var settings = Settings();
        using var pair = new SocketPair(settings);
        await BlockSendLoopAsync(pair);

        for (var seq = 2; pair.Socket.QueuedBytes <= settings.OutboundQueueLimit + 8 * 1024; seq++)
            Assert.True(pair.Send(Event("A", seq, "order_executed", padBytes: 4000, visibleTo: "u1")));
        var overSince = Environment.TickCount64;

        // The sweeper's check, with the clock it would see: within the grace nothing happens…
        pair.Socket.CheckHealth(overSince + (long)settings.SlowConsumerGrace.TotalMilliseconds / 2);
        Assert.True(pair.Send(Event("A", 1000, "ranking_changed")));

        // …past it the socket is closed and its queue dropped.
        pair.Socket.CheckHealth(overSince + (long)settings.SlowConsumerGrace.TotalMilliseconds + 50);
        Assert.False(pair.Send(Event("A", 1001, "ranking_changed")));
        var (frames, closeCode) = await pair.ReadToCloseAsync();
        Assert.Equal(CloseCodes.SlowConsumer, closeCode);
        Assert.Equal(["other:order_executed:1"], frames.Select(Describe));
    }

    [Fact]
    public async Task A_reader_that_catches_up_within_the_grace_period_is_not_closed()
    {
        var settings = Settings();
        using var pair = new SocketPair(settings);
        await BlockSendLoopAsync(pair);
        var seq = 2;
        for (; pair.Socket.QueuedBytes <= settings.OutboundQueueLimit + 8 * 1024; seq++)
            Assert.True(pair.Send(Event("A", seq, "order_executed", padBytes: 4000, visibleTo: "u1")));
        var lastSeq = seq - 1;

        // The reader reads everything; once the queue is written out, the over-budget clock is reset.
        var reading = pair.ReadToCloseAsync();
        var deadline = Environment.TickCount64 + 10_000;
        while (pair.Socket.QueuedBytes > 0)
        {
            Assert.True(Environment.TickCount64 < deadline, $"queue never drained: {pair.Socket.QueuedBytes} bytes left");
            await Task.Delay(5);
        }
        pair.Socket.CheckHealth(Environment.TickCount64 + (long)settings.SlowConsumerGrace.TotalMilliseconds + 50);
        Assert.True(pair.Send(Event("A", lastSeq + 1, "ranking_changed")));

        pair.Socket.Close(CloseCodes.Normal, "done");
        var (frames, closeCode) = await reading;
        Assert.Equal(CloseCodes.Normal, closeCode);
        Assert.Equal(lastSeq + 1, frames.Count);
        Assert.Equal($"A:ranking_changed:{lastSeq + 1}", Describe(frames[^1]));
    }
}

/// <summary>
/// A client over a raw TCP socket: the handshake by hand, then masked text frames out and a minimal frame parser
/// in. The test decides when (if ever) it reads.
/// </summary>
/// <param name="receiveBuffer">The socket's receive buffer, set before connecting so the advertised window stays small; the kernel's default if null.</param>
internal sealed class RawWsClient(int? receiveBuffer = null) : IDisposable
{
    private readonly TcpClient _tcp = new() { NoDelay = true };
    private NetworkStream _stream = null!;
    private readonly byte[] _buffer = new byte[256 * 1024];
    private int _start;
    private int _end;

    public long BytesRead { get; private set; }

    /// <summary>The client's own port, which names the connection on the server's side.</summary>
    public int LocalPort => ((IPEndPoint)_tcp.Client.LocalEndPoint!).Port;

    public async Task ConnectAsync(int port, string path)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        if (receiveBuffer is { } size)
            _tcp.ReceiveBufferSize = size;
        await _tcp.ConnectAsync(IPAddress.Loopback, port, timeout.Token);
        _stream = _tcp.GetStream();
        var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
        var request = $"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
                      $"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n";
        await _stream.WriteAsync(Encoding.ASCII.GetBytes(request), timeout.Token);

        int headEnd;
        while ((headEnd = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n\r\n"u8)) < 0)
            await FillAsync(timeout.Token);
        var head = Encoding.ASCII.GetString(_buffer, 0, headEnd);
        if (!head.StartsWith("HTTP/1.1 101", StringComparison.Ordinal))
            throw new InvalidOperationException("handshake refused: " + head);
        _start = headEnd + 4;
    }

    /// <summary>One masked text frame, as a client must send it.</summary>
    public async Task SendTextAsync(string text) => await _stream.WriteAsync(MaskedTextFrame(Encoding.UTF8.GetBytes(text)));

    /// <summary>
    /// Masked ping frames (125-byte payloads), as many as the kernel takes at once, up to <paramref name="maxBytes"/>:
    /// it stops taking them once the server stops reading. Returns the bytes sent.
    /// </summary>
    public long SendPingsWhileTaken(long maxBytes)
    {
        var pings = new byte[100 * 131];
        for (var i = 0; i < 100; i++)
        {
            var frame = pings.AsSpan(i * 131, 131);
            frame[0] = 0x89;
            frame[1] = 0x80 | 125;
            RandomNumberGenerator.Fill(frame[2..]); // the mask, and a payload that is random once masked
        }
        var socket = _tcp.Client;
        socket.Blocking = false;
        long sent = 0;
        try
        {
            while (sent < maxBytes)
            {
                var taken = socket.Send(pings, 0, pings.Length, SocketFlags.None, out var error);
                sent += Math.Max(taken, 0);
                if (error != SocketError.Success || taken < pings.Length)
                    break;
            }
        }
        finally
        {
            socket.Blocking = true;
        }
        return sent;
    }

    /// <summary>Many text frames in one TCP write, so the server reads them back to back.</summary>
    public async Task SendTextFramesAsync(IEnumerable<byte[]> payloads) =>
        await _stream.WriteAsync(payloads.SelectMany(MaskedTextFrame).ToArray());

    private static byte[] MaskedTextFrame(byte[] payload)
    {
        var frame = new List<byte> { 0x81 };
        if (payload.Length < 126)
            frame.Add((byte)(0x80 | payload.Length));
        else
        {
            frame.Add(0x80 | 126);
            frame.Add((byte)(payload.Length >> 8));
            frame.Add((byte)payload.Length);
        }
        var mask = RandomNumberGenerator.GetBytes(4);
        frame.AddRange(mask);
        for (var i = 0; i < payload.Length; i++)
            frame.Add((byte)(payload[i] ^ mask[i % 4]));
        return frame.ToArray();
    }

    /// <summary>The next frame: opcode and payload (server frames are not masked).</summary>
    public async Task<(int Opcode, byte[] Payload)> ReadFrameAsync(CancellationToken cancel)
    {
        await EnsureAsync(2, cancel);
        var opcode = _buffer[_start] & 0x0F;
        long length = _buffer[_start + 1] & 0x7F;
        var headerLength = 2;
        if (length == 126)
        {
            await EnsureAsync(4, cancel);
            length = (_buffer[_start + 2] << 8) | _buffer[_start + 3];
            headerLength = 4;
        }
        else if (length == 127)
        {
            await EnsureAsync(10, cancel);
            length = (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(_buffer.AsSpan(_start + 2, 8));
            headerLength = 10;
        }
        await EnsureAsync(headerLength + (int)length, cancel);
        var payload = _buffer.AsSpan(_start + headerLength, (int)length).ToArray();
        _start += headerLength + (int)length;
        return (opcode, payload);
    }

    private async Task EnsureAsync(int count, CancellationToken cancel)
    {
        if (count > _buffer.Length)
            throw new InvalidOperationException($"frame of {count} bytes is larger than the test's buffer");
        while (_end - _start < count)
        {
            if (_buffer.Length - _start < count)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                (_start, _end) = (0, _end - _start);
            }
            await FillAsync(cancel);
        }
    }

    private async Task FillAsync(CancellationToken cancel)
    {
        var n = await _stream.ReadAsync(_buffer.AsMemory(_end), cancel);
        if (n == 0)
            throw new EndOfStreamException($"the server closed the TCP connection without a close frame after {BytesRead} bytes");
        _end += n;
        BytesRead += n;
    }

    public void Dispose() => _tcp.Dispose();
}
