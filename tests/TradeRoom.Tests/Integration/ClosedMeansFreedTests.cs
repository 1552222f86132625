using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using TradeRoom.Actors.Auth;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Integration;

/// <summary>
/// Issue 10, defect 1: a socket the server closes (auth timeout, heartbeat timeout, a close never answered) is freed
/// within close-timeout whatever the client does, and the server process gives back its file descriptors and memory.
/// Measured from the outside, on the real server process: its socket descriptors (/proc/PID/fd) and its VmRSS.
/// </summary>
[Collection(ProcessEnvironmentCollection.Name)]
public sealed class ClosedMeansFreedTests : IDisposable
{
    private const string Secret = "closed-means-freed-secret-0123456789-abcdef";
    private const int Sockets = 300;

    /// <summary>
    /// How far above the baseline (<see cref="SettledBaselineAsync"/>: after start-up and one full handshake, before
    /// any hostile socket) resident memory may stay once a wave is freed: what the first wave adds for good, the code
    /// it runs compiled and its pages mapped (JIT code, more of the framework's files), and the runtime's structures
    /// that grow with a burst of work (thread pool threads, their native arenas). Measured 10 MiB after the first wave
    /// and 13 MiB after the second on this machine once; later 17 MiB after the first and up to 28 MiB after the second
    /// in full-suite runs (the same before and after the sweeper took over pings), so the margin is 40 MiB. The defect
    /// this guards against left about 1 MiB per socket of the wave's peak resident (Kestrel's pool of unread input,
    /// then uncollected garbage): 80 to 120 MiB for a wave of 300, well above it.
    /// </summary>
    private const long RssToleranceBytes = 40L * 1024 * 1024;

    /// <summary>How long resident memory may take to come back after the last socket is freed: it comes back at once (close-timeout after it).</summary>
    private static readonly TimeSpan RssDeadline = TimeSpan.FromSeconds(20);

    private readonly string _configFile = Path.Combine(Path.GetTempPath(), $"traderoom-freed-{Guid.NewGuid():N}.conf");
    private readonly List<Socket> _clients = [];

    public void Dispose()
    {
        foreach (var client in _clients)
            client.Dispose();
        File.Delete(_configFile);
    }

    [Fact]
    public async Task Sockets_without_a_token_that_ping_and_never_read_are_freed_after_auth_timeout_plus_close_timeout_and_give_back_their_memory()
    {
        using var server = await StartServerAsync();
        var baseline = await SettledBaselineAsync(server);

        await OpenWaveAsync(server, baseline);
        await AssertFreedAsync(server, baseline, "auth timeout (4001)");
        await AssertRssBackToBaselineAsync(server, baseline, "first wave");

        await OpenWaveAsync(server, baseline);
        await AssertFreedAsync(server, baseline, "auth timeout (4001), second wave");
        await AssertRssBackToBaselineAsync(server, baseline, "second wave");
    }

    [Fact]
    public async Task Authenticated_sockets_that_ping_and_never_read_are_freed_after_heartbeat_timeout_plus_close_timeout()
    {
        using var server = await StartServerAsync();
        var baseline = await SettledBaselineAsync(server);
        var tokens = new TokenIssuer(Secret);

        var opening = Stopwatch.StartNew();
        _clients.AddRange(await Task.WhenAll(Enumerable.Range(0, Sockets).Select(i =>
            OpenStalledPingerAsync(server, tokens.UserToken($"stalled-{i}", TimeSpan.FromMinutes(10))))));
        Assert.True(opening.Elapsed < TimeSpan.FromSeconds(9), $"opening took {opening.Elapsed}: longer than the heartbeat timeout allows");
        await AssertAllHeldAsync(server, baseline);

        await AssertFreedAsync(server, baseline, "heartbeat timeout (4000) or flood (1008)");
    }

    [Fact]
    public async Task A_client_that_reads_but_never_answers_the_close_is_freed_after_close_timeout_and_saw_4001()
    {
        using var server = await StartServerAsync();
        var baseline = await SettledBaselineAsync(server);

        var client = await HandshakeAsync(server.WsPort, token: null, receiveBuffer: null);
        _clients.Add(client);
        await AssertAllHeldAsync(server, baseline, expected: 1);
        // One ping 2 s in: the socket is not silent, so its heartbeat timeout comes 2 s after its auth timeout (both
        // 10 s here), and the close it sees is the auth timeout's 4001, never whichever the sweeper met first.
        await Task.Delay(TimeSpan.FromSeconds(2));
        client.Send(MaskedFrame(0x89, []));

        // The auth timeout closes it with 4001 (after the server's pings); the client reads the close frame and says nothing back.
        client.ReceiveTimeout = 15_000;
        var (opcode, payload) = ReadFrame(client);
        while (opcode is 0x9 or 0xA) // the server's pings, and the pong to ours
            (opcode, payload) = ReadFrame(client);
        Assert.Equal(0x8, opcode);
        Assert.Equal(4001, (payload[0] << 8) | payload[1]);

        await Eventually.MatchAsync(() => Task.FromResult(SocketDescriptors(server.Process.Id)), n => n <= baseline.Sockets,
            $"server socket descriptors back to {baseline.Sockets}", TimeSpan.FromSeconds(10));
        // The server ended the TCP connection: the client sees the end of the stream (or a reset).
        client.ReceiveTimeout = 10_000;
        try
        {
            Assert.Equal(0, client.Receive(new byte[1]));
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
        }
    }

    private async Task OpenWaveAsync(RunningServer server, Baseline baseline)
    {
        foreach (var client in _clients)
            client.Dispose();
        _clients.Clear();
        var opening = Stopwatch.StartNew();
        _clients.AddRange(await Task.WhenAll(Enumerable.Range(0, Sockets).Select(_ => OpenStalledPingerAsync(server, token: null))));
        Assert.True(opening.Elapsed < TimeSpan.FromSeconds(9), $"opening took {opening.Elapsed}: longer than the auth timeout allows");
        await AssertAllHeldAsync(server, baseline);
    }

    /// <summary>Resident memory comes back to within <see cref="RssToleranceBytes"/> of the baseline (polled; the server collects once a wave is over).</summary>
    private static async Task AssertRssBackToBaselineAsync(RunningServer server, Baseline baseline, string wave)
    {
        var peak = Rss(server.Process.Id);
        await Eventually.MatchAsync(() => Task.FromResult(Rss(server.Process.Id)), rss => rss <= baseline.Rss + RssToleranceBytes,
            $"resident memory back to the baseline of {baseline.Rss >> 20} MiB (+{RssToleranceBytes >> 20} MiB) after the {wave}, from {peak >> 20} MiB when its sockets were freed",
            RssDeadline);
    }

    private sealed record Baseline(int Sockets, long Rss);

    private sealed class RunningServer(ServerProcess process, int wsPort) : IDisposable
    {
        public ServerProcess Server { get; } = process;
        public Process Process => Server.Process;
        public int WsPort { get; } = wsPort;
        public void Dispose() => Server.Dispose();
    }

    private async Task<RunningServer> StartServerAsync()
    {
        // Timeouts short enough for a test, long enough that all sockets are open before the first one times out.
        File.WriteAllText(_configFile, """
            traderoom.websocket {
              auth-timeout = 10s
              close-timeout = 1s
              ping-interval = 1s
              heartbeat-timeout = 10s
            }
            # Pings count against the message rate and a ping flood is closed (ControlFrameRateTests); here the
            # sockets must live until the timeouts, so that what is tested is a close whose writes are stuck.
            traderoom.limits { messages-per-second = 1000000, message-burst = 1000000, flood-close-after = 1000000 }
            """);
        var wsPort = ServerProcess.FreePort();
        var server = ServerProcess.Start(new Dictionary<string, string>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["JWT_SECRET"] = Secret,
            ["WS_PORT"] = wsPort.ToString(CultureInfo.InvariantCulture),
            ["API_PORT"] = ServerProcess.FreePort().ToString(CultureInfo.InvariantCulture),
            ["BIND_ADDRESS"] = "127.0.0.1",
            ["TRADEROOM_CONFIG"] = _configFile,
        });
        var running = new RunningServer(server, wsPort);
        await Eventually.MatchAsync(async () =>
        {
            using var probe = new TcpClient();
            try
            {
                await probe.ConnectAsync(IPAddress.Loopback, wsPort);
                return true;
            }
            catch (SocketException)
            {
                return false;
            }
        }, up => up, "server listening", TimeSpan.FromSeconds(30));
        return running;
    }

    /// <summary>
    /// Warms the server up with one full handshake, then waits until its socket count has stayed the same for 2 s: the
    /// probe connection of startup and the warm-up's are gone. (Right after start the server also starts its journal in
    /// the background; on a busy machine it then closed those two connections more than 200 ms late, and a baseline
    /// taken over 200 ms counted them.)
    /// </summary>
    private static async Task<Baseline> SettledBaselineAsync(RunningServer server)
    {
        using (var warm = await HandshakeAsync(server.WsPort, token: null, receiveBuffer: null))
        {
        }
        var sockets = await Eventually.MatchAsync(async () =>
        {
            var counts = new List<int>();
            for (var i = 0; i < 10; i++)
            {
                counts.Add(SocketDescriptors(server.Process.Id));
                await Task.Delay(200);
            }
            return counts;
        }, counts => counts.Distinct().Count() == 1, "a socket count steady for 2 s", TimeSpan.FromSeconds(30));
        return new Baseline(sockets[0], Rss(server.Process.Id));
    }

    private static async Task AssertAllHeldAsync(RunningServer server, Baseline baseline, int expected = Sockets) =>
        await Eventually.MatchAsync(() => Task.FromResult(SocketDescriptors(server.Process.Id)), n => n >= baseline.Sockets + expected,
            $"all {expected} sockets open on the server (baseline {baseline.Sockets})", TimeSpan.FromSeconds(10));

    private static async Task AssertFreedAsync(RunningServer server, Baseline baseline, string why)
    {
        // Timeout + close-timeout is 11 s here; allow generous slack for a busy machine, far below the ~120 s a leak held.
        await Eventually.MatchAsync(() => Task.FromResult(SocketDescriptors(server.Process.Id)), n => n <= baseline.Sockets,
            $"server socket descriptors back to baseline {baseline.Sockets} after {why}", TimeSpan.FromSeconds(30));
    }

    /// <summary>
    /// A client that completes the handshake, then sends ping frames without ever reading, with a small receive
    /// buffer so the server's pongs back up: until the kernel stops taking its pings.
    /// </summary>
    private static async Task<Socket> OpenStalledPingerAsync(RunningServer server, string? token)
    {
        var client = await HandshakeAsync(server.WsPort, token, receiveBuffer: 2048);
        client.Blocking = false;
        var pings = new byte[100 * 131];
        for (var i = 0; i < 100; i++)
            MaskedFrame(0x89, new byte[125]).CopyTo(pings, i * 131);
        for (var round = 0; round < 1000; round++)
        {
            var sent = client.Send(pings, 0, pings.Length, SocketFlags.None, out var error);
            if (error != SocketError.Success || sent < pings.Length)
                break; // the kernel stopped taking them: the server's side is backed up
        }
        return client;
    }

    private static async Task<Socket> HandshakeAsync(int port, string? token, int? receiveBuffer)
    {
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        if (receiveBuffer is { } size)
            client.ReceiveBufferSize = size; // before connecting, so the advertised window stays small
        await client.ConnectAsync(IPAddress.Loopback, port);
        var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
        var path = token is null ? "/ws" : $"/ws?token={Uri.EscapeDataString(token)}";
        var request = $"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
                      $"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n";
        await client.SendAsync(Encoding.ASCII.GetBytes(request));
        // Read the 101 answer byte by byte, so nothing after it is consumed.
        var answer = new StringBuilder();
        var one = new byte[1];
        while (!answer.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            Assert.Equal(1, await client.ReceiveAsync(one));
            answer.Append((char)one[0]);
        }
        Assert.StartsWith("HTTP/1.1 101", answer.ToString(), StringComparison.Ordinal);
        return client;
    }

    /// <summary>One unmasked frame from the server: its opcode and payload (blocking reads).</summary>
    private static (int Opcode, byte[] Payload) ReadFrame(Socket client)
    {
        var header = ReadExactly(client, 2);
        long length = header[1] & 0x7F;
        if (length == 126)
            length = System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(ReadExactly(client, 2));
        else if (length == 127)
            length = (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(ReadExactly(client, 8));
        return (header[0] & 0x0F, ReadExactly(client, (int)length));
    }

    private static byte[] ReadExactly(Socket client, int count)
    {
        var bytes = new byte[count];
        for (var at = 0; at < count;)
        {
            var read = client.Receive(bytes, at, count - at, SocketFlags.None);
            Assert.True(read > 0, "connection ended mid-frame");
            at += read;
        }
        return bytes;
    }

    private static byte[] MaskedFrame(byte first, byte[] payload)
    {
        var frame = new byte[2 + 4 + payload.Length];
        frame[0] = first;
        frame[1] = (byte)(0x80 | payload.Length);
        RandomNumberGenerator.Fill(frame.AsSpan(2, 4));
        for (var i = 0; i < payload.Length; i++)
            frame[6 + i] = (byte)(payload[i] ^ frame[2 + (i % 4)]);
        return frame;
    }

    private static int SocketDescriptors(int pid)
    {
        var count = 0;
        foreach (var fd in Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd"))
        {
            try
            {
                if (new FileInfo(fd).LinkTarget?.StartsWith("socket:", StringComparison.Ordinal) == true)
                    count++;
            }
            catch (IOException)
            {
                // closed while we looked
            }
        }
        return count;
    }

    private static long Rss(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        }
        throw new InvalidOperationException("no VmRSS");
    }
}
