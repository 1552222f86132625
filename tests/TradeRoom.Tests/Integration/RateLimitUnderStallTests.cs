using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using TradeRoom.Actors.Auth;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Integration;

/// <summary>
/// Issue 10: the rate limiter counts at arrival, not at processing. Clients well within the rate must never be refused
/// because the server stalled and then read what they sent meanwhile all at once. Against the real server process at
/// its shipped limits (20 a second, bursts of 50), stalled from the outside with SIGSTOP: before, each client that sent
/// 15 a second through a 5 s stall had about 26 messages refused with rate_limited.
/// </summary>
[Collection(ProcessEnvironmentCollection.Name)]
public sealed class RateLimitUnderStallTests
{
    private const string Secret = "rate-limit-under-stall-secret-0123456789-abc";
    private const int Burst = 50;
    private const int Rate = 20;

    [Fact]
    public async Task Clients_at_15_a_second_are_never_refused_across_a_5_second_server_stall()
    {
        using var server = await StartServerAsync();
        var tokens = new TokenIssuer(Secret);
        var clients = await Task.WhenAll(Enumerable.Range(0, 10).Select(i =>
            PacedClient.ConnectAsync(server.WsPort, tokens.UserToken($"steady-{i}", TimeSpan.FromMinutes(10)))));
        try
        {
            using var stop = new CancellationTokenSource();
            var sending = clients.Select(c => c.SendPingsAsync(perSecond: 15, stop.Token)).ToArray();

            // Two seconds of steady sending, answered: the buckets are full and the clients well within the rate.
            await Eventually.MatchAsync(() => Task.FromResult(clients.Min(c => c.Pongs)), n => n >= 30, "30 pongs each before the stall", TimeSpan.FromSeconds(30));

            server.Signal("STOP");
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(5)); // the stall itself: what the clients send meanwhile waits in the kernel
            }
            finally
            {
                server.Signal("CONT");
            }
            var atResume = clients.Select(c => c.Sent).ToArray();
            await Eventually.MatchAsync(() => Task.FromResult(clients.Select((c, i) => c.Sent - atResume[i]).Min()), n => n >= 30,
                "two more seconds of sending after the stall", TimeSpan.FromSeconds(30));
            await stop.CancelAsync();
            await Task.WhenAll(sending);

            // Every ping answered, or something else came instead.
            await Eventually.MatchAsync(() => Task.FromResult(clients.Count(c => c.Pongs + c.Errors.Count < c.Sent && c.CloseCode is null)),
                n => n == 0, "every ping answered", TimeSpan.FromSeconds(30));
            foreach (var (client, i) in clients.Select((c, i) => (c, i)))
            {
                Assert.True(client.Errors.IsEmpty && client.CloseCode is null,
                    $"client {i} sent {client.Sent} pings at 15 a second: {client.Errors.Count} errors ({string.Join(", ", client.Errors.Distinct())}), close {client.CloseCode}");
                Assert.Equal(client.Sent, client.Pongs);
            }
        }
        finally
        {
            foreach (var client in clients)
                await client.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_client_at_100_a_second_to_a_server_that_keeps_up_is_refused_then_closed_1008_as_before()
    {
        using var server = await StartServerAsync();
        var tokens = new TokenIssuer(Secret);
        await using var client = await PacedClient.ConnectAsync(server.WsPort, tokens.UserToken("hasty", TimeSpan.FromMinutes(10)));

        using var stop = new CancellationTokenSource();
        var sending = client.SendPingsAsync(perSecond: 100, stop.Token);
        await Eventually.MatchAsync(() => Task.FromResult(client.CloseCode), code => code is not null, "the close", TimeSpan.FromSeconds(30));
        await stop.CancelAsync();
        await sending;

        Assert.Equal(1008, client.CloseCode);
        Assert.NotEmpty(client.Errors);
        Assert.All(client.Errors, answer => Assert.Equal("error rate_limited", answer));
        // The burst and what the rate refilled while it sent, no more: a server that keeps up gives no lag credit. The
        // slack of one second's worth covers the server running a little late on a busy machine, far below the 10 s
        // of credit it would give if its lag clock were wrong.
        var seconds = client.SendingTime.TotalSeconds;
        Assert.InRange(client.Pongs, Burst, Burst + (int)(Rate * seconds) + Rate);
    }

    private sealed class RunningServer(ServerProcess process, int wsPort) : IDisposable
    {
        public int WsPort { get; } = wsPort;

        public void Signal(string signal)
        {
            using var kill = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { $"-{signal}", process.Process.Id.ToString(CultureInfo.InvariantCulture) }, UseShellExecute = false })!;
            kill.WaitForExit();
            Assert.Equal(0, kill.ExitCode);
        }

        public void Dispose() => process.Dispose();
    }

    /// <summary>The real server at its shipped limits.</summary>
    private static async Task<RunningServer> StartServerAsync()
    {
        var wsPort = ServerProcess.FreePort();
        var server = ServerProcess.Start(new Dictionary<string, string>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["JWT_SECRET"] = Secret,
            ["WS_PORT"] = wsPort.ToString(CultureInfo.InvariantCulture),
            ["API_PORT"] = ServerProcess.FreePort().ToString(CultureInfo.InvariantCulture),
            ["BIND_ADDRESS"] = "127.0.0.1",
        });
        try
        {
            await server.WaitForLineAsync(l => l.Contains("TradeRoom listening", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        }
        catch
        {
            server.Dispose();
            throw;
        }
        return new RunningServer(server, wsPort);
    }

    /// <summary>A client that sends pings at a steady pace and counts what comes back.</summary>
    private sealed class PacedClient : IAsyncDisposable
    {
        private readonly ClientWebSocket _socket;
        private readonly Task _reading;
        private readonly Stopwatch _sending = new();
        private int _sent;
        private int _pongs;
        private int _closeCode;

        private PacedClient(ClientWebSocket socket)
        {
            _socket = socket;
            _reading = ReadAsync();
        }

        public int Sent => Volatile.Read(ref _sent);
        public int Pongs => Volatile.Read(ref _pongs);
        public ConcurrentQueue<string> Errors { get; } = new();
        public int? CloseCode => Volatile.Read(ref _closeCode) is var code and not 0 ? code : null;

        /// <summary>From the first ping sent to the close received.</summary>
        public TimeSpan SendingTime => _sending.Elapsed;

        public static async Task<PacedClient> ConnectAsync(int port, string token)
        {
            var socket = new ClientWebSocket();
            using (var timeout = new CancellationTokenSource(WsClient.DefaultTimeout))
                await socket.ConnectAsync(new Uri($"ws://127.0.0.1:{port}/ws?token={Uri.EscapeDataString(token)}"), timeout.Token);
            // The first frame is auth_success: read here, before the reader starts.
            var reader = new MessageReader(socket);
            using (var timeout = new CancellationTokenSource(WsClient.DefaultTimeout))
            {
                var (_, count) = await reader.ReadAsync(timeout.Token);
                Assert.Contains("\"auth_success\"", Encoding.UTF8.GetString(reader.Buffer, 0, count), StringComparison.Ordinal);
            }
            return new PacedClient(socket);
        }

        /// <summary>
        /// Pings at <paramref name="perSecond"/> until stopped or closed. A late timer tick does not send the missed
        /// pings in a rush, so the client never goes faster than the pace.
        /// </summary>
        public async Task SendPingsAsync(int perSecond, CancellationToken stop)
        {
            using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1.0 / perSecond));
            _sending.Start();
            try
            {
                while (CloseCode is null && await timer.WaitForNextTickAsync(stop))
                {
                    var ping = Encoding.UTF8.GetBytes("{\"type\":\"ping\",\"data\":{\"n\":" + Sent.ToString(CultureInfo.InvariantCulture) + "}}");
                    await _socket.SendAsync(ping, WebSocketMessageType.Text, endOfMessage: true, stop);
                    Interlocked.Increment(ref _sent);
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
            }
            catch (WebSocketException) when (CloseCode is not null)
            {
                // the server closed while a ping was on its way
            }
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
                    {
                        _sending.Stop();
                        Volatile.Write(ref _closeCode, (int)_socket.CloseStatus!.Value);
                        return;
                    }
                    using var frame = JsonDocument.Parse(reader.Message(count));
                    var root = frame.RootElement;
                    if (root.GetProperty("type").GetString() == "pong")
                        Interlocked.Increment(ref _pongs);
                    else
                        Errors.Enqueue($"{root.GetProperty("type").GetString()} {root.GetProperty("data").GetProperty("code").GetString()}");
                }
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
            {
                // disposed by the test, or the connection dropped: CloseCode stays unset
            }
        }

        public async ValueTask DisposeAsync()
        {
            _socket.Abort();
            _socket.Dispose();
            await _reading;
        }
    }
}
