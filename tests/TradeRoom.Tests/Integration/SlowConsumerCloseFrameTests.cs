using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using TradeRoom.Actors;
using TradeRoom.Actors.Integration;
using TradeRoom.Contracts;
using TradeRoom.Protocol;
using TradeRoom.Tests.Support;
using TradeRoom.Transport;
using Xunit.Abstractions;

namespace TradeRoom.Tests.Integration;

/// <summary>
/// Issue 10: a reader that stalls, is closed with 4008 for it, and starts reading again only after the server has
/// ended its side of the connection (close-timeout) still reads whole frames and then the close frame, which the
/// kernel holds for it. The server's own socket is still freed within close-timeout. On the real host and real
/// loopback sockets; the server's socket is found by the connection's ports in /proc/net/tcp and its descriptor in
/// /proc/self/fd (the host runs in the test's process).
/// </summary>
public class SlowConsumerCloseFrameTests(ITestOutputHelper output)
{
    /// <summary>How long the reader stays stalled after its close beyond close-timeout.</summary>
    private static readonly TimeSpan StallPastCloseTimeout = TimeSpan.FromSeconds(2);

    private const int MaxEvents = 2000;

    private const string Budget = """
        traderoom.websocket {
          outbound-queue-limit = 64KiB
          slow-consumer-hard-limit = 256KiB
          slow-consumer-grace = 300ms
        }
        """;

    /// <summary>
    /// A client that subscribes to a busy room, with a small receive buffer, then reads nothing more until the server
    /// closes it as a slow consumer. Returns the client, the server's socket inode, the number of events published and
    /// a stopwatch started at the close.
    /// </summary>
    private async Task<(RawWsClient Client, string Inode, int Published, Stopwatch SinceClose)> StallUntilClosedAsync(TestServer server)
    {
        var openSockets = server.App.Services.GetRequiredService<OpenSockets>();
        var integration = server.App.Services.GetRequiredService<TradeRoomIntegration>();
        var room = E2E.Room("busy");

        // A small receive buffer keeps the client's window small: the server's side fills up soon after it stops reading.
        var stalled = new RawWsClient(receiveBuffer: 4096);
        await stalled.ConnectAsync(server.WsPort, "/ws?token=" + server.UserToken("stalled"));
        await stalled.SendTextAsync(JsonSerializer.Serialize(new { type = "subscribe_room", data = new { bullPenId = room } }));
        using (var answers = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            Assert.Contains("auth_success", Encoding.UTF8.GetString((await stalled.ReadFrameAsync(answers.Token)).Payload));
            Assert.Contains("\"subscribed\"", Encoding.UTF8.GetString((await stalled.ReadFrameAsync(answers.Token)).Payload));
        }
        var inode = ServerSocketInode(server.WsPort, stalled.LocalPort);
        Assert.True(ServerHolds(inode), $"the server holds no descriptor for its socket {inode}");

        // The room gets busy and the client reads nothing more, until the server closes it as a slow consumer. Paced,
        // so that the kernel's buffers fill first and a write is stuck halfway when the server's queue goes over.
        var pad = new string('x', 16_000);
        var published = 0;
        while (!openSockets.Sockets.Any(s => s.CloseInfo.Code == CloseCodes.SlowConsumer))
        {
            Assert.True(published < MaxEvents, $"{MaxEvents} events of 16 KB sent to a client that reads nothing, and it was never closed as a slow consumer");
            Assert.IsType<EventPublished>(await integration.OnRankingChanged(room, new { i = published++, pad }));
            await Task.Delay(5);
        }
        var sinceClose = Stopwatch.StartNew();
        output.WriteLine($"closed as a slow consumer after {published} events; server socket {inode}: {TcpQueues(server.WsPort, stalled.LocalPort)}");
        return (stalled, inode, published, sinceClose);
    }

    [Fact]
    public async Task A_stalled_reader_that_resumes_after_close_timeout_reads_whole_frames_then_the_4008_close()
    {
        await using var server = await TestServer.StartAsync(Budget);
        var (stalled, inode, published, sinceClose) = await StallUntilClosedAsync(server);
        using var _ = stalled;
        await ResumeAfterCloseTimeoutAndReadToCloseAsync(server, stalled, inode, published, sinceClose);
    }

    [Fact]
    public async Task A_stalled_reader_that_flooded_pings_before_stalling_still_gets_the_4008_close_after_close_timeout()
    {
        // A longer close-timeout than the shipped 5 s: the flood below must have arrived before the server lets go,
        // and on a loaded machine it once took longer than 5 s (the server then let go mid-flood and the kernel reset
        // the connection, which is the case the comment below excludes, not what this test is about). The linger is
        // longer too, so that the kernel still holds the frames when the client reads, 2 s past close-timeout.
        await using var server = await TestServer.StartAsync(Budget + "\ntraderoom.websocket { close-timeout = 8s, slow-consumer-linger = 20s }");
        var (stalled, inode, published, sinceClose) = await StallUntilClosedAsync(server);
        using var _ = stalled;

        // After its close it floods pings, so the server stops reading from it (the 1008 for that comes too late: the 4008
        // is already on its way), until its input lies unread in the server's kernel: Linux resets a connection closed
        // with unread input, which would drop the frames the kernel holds for the client, so the server discards that
        // input before it lets go. Only a burst that has all arrived: while more is on its way when the server lets go
        // (a client that never stops sending), the kernel resets the connection whatever the server does.
        long sent = 0;
        while (ServerUnreadInput(server.WsPort, stalled.LocalPort) < 100 * 1024)
        {
            Assert.True(sent < 16L << 20, $"{sent} bytes of pings sent and none lies unread in the server's kernel");
            // About what the server's transport buffers once it stops reading (1 MiB) at first, then a little at a time.
            sent += stalled.SendPingsWhileTaken(maxBytes: sent == 0 ? 1 << 20 : 100 * 131);
            await Eventually.MatchAsync(() => Task.FromResult(ClientUnsent(stalled.LocalPort)), unsent => unsent == 0,
                "the client's pings all arrived at the server's kernel");
        }
        output.WriteLine($"the client sent {sent} bytes of pings; server side: {TcpQueues(server.WsPort, stalled.LocalPort)}");

        await ResumeAfterCloseTimeoutAndReadToCloseAsync(server, stalled, inode, published, sinceClose);
    }

    /// <summary>
    /// Right after the 4008 close: waits until the server has let go of its socket (within close-timeout), stays
    /// stalled past close-timeout (by <see cref="StallPastCloseTimeout"/>) after the close, then reads: whole frames in order, then the close 4008, then
    /// the end of the stream.
    /// </summary>
    private async Task ResumeAfterCloseTimeoutAndReadToCloseAsync(TestServer server, RawWsClient stalled, string inode, int published, Stopwatch sinceClose)
    {
        var settings = server.App.Services.GetRequiredService<TransportOptions>();

        // Closed means freed: the server's socket goes within close-timeout, though the client has read nothing.
        await Eventually.MatchAsync(() => Task.FromResult(ServerHolds(inode)), held => !held,
            $"the server's descriptor for socket {inode} closed", settings.CloseTimeout + TimeSpan.FromSeconds(5));
        output.WriteLine($"server descriptor gone {sinceClose.ElapsedMilliseconds} ms after the close; the kernel's side: {TcpQueues(server.WsPort, stalled.LocalPort)}");

        // The client stays stalled past close-timeout (this is the scenario, not a wait for the server), then reads.
        if (settings.CloseTimeout + StallPastCloseTimeout - sinceClose.Elapsed is { Ticks: > 0 } rest)
            await Task.Delay(rest);
        var frames = 0;
        var lastIndex = -1;
        using var reading = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        while (true)
        {
            // A frame cut short ends the stream mid-frame: ReadFrameAsync throws.
            var (opcode, payload) = await stalled.ReadFrameAsync(reading.Token);
            if (opcode == 0x8)
            {
                var code = (payload[0] << 8) | payload[1];
                var reason = Encoding.UTF8.GetString(payload, 2, payload.Length - 2);
                output.WriteLine($"read {frames} whole frames ({stalled.BytesRead} bytes), then close {code} \"{reason}\", {sinceClose.ElapsedMilliseconds} ms after the close");
                Assert.Equal(CloseCodes.SlowConsumer, code);
                Assert.Equal("slow consumer", reason);
                break;
            }
            if (opcode != 0x1)
                continue; // a keep-alive ping
            using var frame = JsonDocument.Parse(payload);
            Assert.Equal("ranking_changed", frame.RootElement.GetProperty("type").GetString());
            var index = frame.RootElement.GetProperty("data").GetProperty("i").GetInt32();
            Assert.True(index > lastIndex, $"event {index} after {lastIndex}");
            lastIndex = index;
            frames++;
        }
        // It was behind: its queue was dropped at the close.
        Assert.True(frames < published, $"the client got all {published} events; it was never behind");
        // After the close frame the connection ends in order (the kernel's FIN); only pongs, to pings the client sent
        // before it saw the close, may come between.
        await Assert.ThrowsAsync<EndOfStreamException>(async () =>
        {
            while (true)
                Assert.Equal(0xA, (await stalled.ReadFrameAsync(reading.Token)).Opcode);
        });
    }

    [Fact]
    public async Task A_reader_that_never_reads_again_is_given_up_by_the_kernel_after_slow_consumer_linger()
    {
        await using var server = await TestServer.StartAsync(Budget + """
            traderoom.websocket { close-timeout = 1s, slow-consumer-linger = 5s }
            """);
        var (stalled, inode, _, sinceClose) = await StallUntilClosedAsync(server);
        using var _ = stalled;

        // The server lets go of its socket at close-timeout; the kernel still holds the frames and the close for the client…
        await Eventually.MatchAsync(() => Task.FromResult(ServerHolds(inode)), held => !held,
            $"the server's descriptor for socket {inode} closed", TimeSpan.FromSeconds(10));
        var orphan = TcpQueues(server.WsPort, stalled.LocalPort);
        output.WriteLine($"server descriptor gone {sinceClose.ElapsedMilliseconds} ms after the close; the kernel's side: {orphan}");
        Assert.NotEqual("gone", orphan);

        // …but not for ever: once the client has read nothing for slow-consumer-linger, the kernel ends the connection and
        // frees what it held (without the limit it keeps probing a closed window for minutes: about 6 measured on loopback).
        await Eventually.MatchAsync(() => Task.FromResult(TcpQueues(server.WsPort, stalled.LocalPort)), queues => queues == "gone",
            "the kernel's side of the connection gone", TimeSpan.FromSeconds(60));
        output.WriteLine($"the kernel gave up {sinceClose.ElapsedMilliseconds} ms after the close");
    }

    /// <summary>The inode of the server's socket of the loopback connection between the two ports (/proc/net/tcp).</summary>
    private static string ServerSocketInode(int serverPort, int clientPort) =>
        ServerSocketLine(serverPort, clientPort)?[9] ?? throw new InvalidOperationException($"no connection {serverPort} -> {clientPort} in /proc/net/tcp");

    /// <summary>The kernel's send and receive queues of the server's side of the connection, and its TCP state (hex, as /proc/net/tcp has them).</summary>
    private static string TcpQueues(int serverPort, int clientPort) =>
        ServerSocketLine(serverPort, clientPort) is { } fields ? $"state {fields[3]}, tx:rx queues {fields[4]} (hex)" : "gone";

    private static string[]? ServerSocketLine(int serverPort, int clientPort)
    {
        foreach (var line in File.ReadLines("/proc/net/tcp").Skip(1))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (Port(fields[1]) == serverPort && Port(fields[2]) == clientPort)
                return fields;
        }
        return null;
    }

    /// <summary>Bytes the client sent that lie in the server's kernel, not yet read by the server.</summary>
    private static long ServerUnreadInput(int serverPort, int clientPort) =>
        ServerSocketLine(serverPort, clientPort) is { } fields ? Hex(fields[4].Split(':')[1]) : 0;

    /// <summary>Bytes the client's kernel still holds, not yet taken by the server's (the client's socket is IPv6, dual mode).</summary>
    private static long ClientUnsent(int clientPort)
    {
        foreach (var line in File.ReadLines("/proc/net/tcp6").Skip(1))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (Port(fields[1]) == clientPort)
                return Hex(fields[4].Split(':')[0]);
        }
        throw new InvalidOperationException($"no client socket on port {clientPort} in /proc/net/tcp6");
    }

    private static long Hex(string value) => long.Parse(value, NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    private static int Port(string address) => int.Parse(address[(address.IndexOf(':') + 1)..], NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    /// <summary>Whether this process (the server's) holds a descriptor for the socket.</summary>
    private static bool ServerHolds(string inode)
    {
        var target = $"socket:[{inode}]";
        foreach (var fd in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            try
            {
                if (new FileInfo(fd).LinkTarget == target)
                    return true;
            }
            catch (IOException)
            {
                // closed while we looked
            }
        }
        return false;
    }
}
