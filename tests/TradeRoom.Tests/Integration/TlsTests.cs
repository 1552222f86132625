using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using TradeRoom.Server;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Integration;

/// <summary>traderoom.tls on the real host: wss:// only on the WebSocket port, HTTPS on the HTTP port, and no byte past TLS.</summary>
public sealed class TlsTests : IDisposable
{
    private readonly TestCertificate _certificate = TestCertificate.Create();

    public void Dispose() => _certificate.Dispose();

    [Fact]
    public async Task A_wss_fan_out_delivers_every_event_published_over_https_to_every_client_in_order()
    {
        await using var server = await TestServer.StartAsync(tls: _certificate);
        Assert.Equal("https", server.Http.BaseAddress!.Scheme);
        var clients = new List<WsClient>();
        for (var i = 0; i < 4; i++)
            clients.Add(await server.ConnectAndSubscribeAsync($"trader-{i}", "tls-pen"));

        var published = new List<long>();
        for (var i = 0; i < 10; i++)
            published.Add(await server.PublishAsync("tls-pen", "ranking_changed", new { step = i }));

        foreach (var client in clients)
        {
            for (var i = 0; i < published.Count; i++)
            {
                var frame = await client.ReceiveTypeAsync("ranking_changed");
                Assert.Equal(published[i], frame.Seq);
                Assert.Equal(i, frame.Data.GetProperty("step").GetInt32());
            }
            await client.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_PFX_certificate_serves_wss_while_tls_http_off_leaves_the_http_port_plain()
    {
        await using var server = await TestServer.StartAsync(
            "traderoom.tls { certificate = \"\", key = \"\", http = off }\n" + _certificate.PfxHocon, tls: _certificate);
        Assert.Equal("http", server.Http.BaseAddress!.Scheme);
        await using var client = await server.ConnectAndSubscribeAsync("pfx-user", "pfx-pen");

        var seq = await server.PublishAsync("pfx-pen", "ranking_changed", new { via = "plain http" });

        Assert.Equal(seq, (await client.ReceiveTypeAsync("ranking_changed")).Seq);
    }

    [Fact]
    public async Task A_plaintext_ws_client_fails_against_the_TLS_WebSocket_port()
    {
        await using var server = await TestServer.StartAsync(tls: _certificate);

        var plain = new Uri($"ws://127.0.0.1:{server.WsPort}/ws?token={server.UserToken("plain")}");
        await Assert.ThrowsAsync<WebSocketException>(() => WsClient.ConnectAsync(plain));
    }

    [Fact]
    public async Task The_dashboard_config_served_over_https_points_the_page_at_wss()
    {
        await using var server = await TestServer.StartAsync(tls: _certificate);

        var config = await ApiResponse.ReadAsync(server.Http.GetAsync("/api/dashboard/config"));

        Assert.Equal(HttpStatusCode.OK, config.Status);
        Assert.StartsWith("wss://", config.Json.GetProperty("wsUrl").GetString(), StringComparison.Ordinal);
    }

    /// <summary>
    /// Captures every byte the server sends through a TCP proxy: under TLS the handshake answer, the frames and the
    /// event's JSON never appear in it as plaintext (the socket feature still names the raw socket under TLS, so a
    /// direct socket write would send them in clear and break the client's TLS).
    /// </summary>
    [Fact]
    public async Task Every_byte_a_TLS_connection_sends_goes_through_TLS_never_plaintext_to_the_raw_socket()
    {
        await using var server = await TestServer.StartAsync(tls: _certificate);
        await using var proxy = await CapturingProxy.StartAsync(server.WsPort);
        const string marker = "plaintext-marker-7f3a9c";

        Exception? failure = null;
        long seq = 0;
        string? received = null;
        try
        {
            await using var client = await WsClient.ConnectAsync(new Uri($"wss://127.0.0.1:{proxy.Port}/ws"), _certificate.Validate);
            await client.SendAsync(new { type = "auth", data = new { token = server.UserToken("wire") } });
            Assert.Equal("auth_success", (await client.ReceiveAsync()).Type);
            await client.SendAsync(new { type = "subscribe_room", data = new { bullPenId = "wire-pen" } });
            Assert.Equal("subscribed", (await client.ReceiveAsync()).Type);
            seq = await server.PublishAsync("wire-pen", "ranking_changed", new { note = marker });
            var frame = await client.ReceiveTypeAsync("ranking_changed");
            Assert.Equal(seq, frame.Seq);
            received = frame.Raw;
        }
        catch (Exception e)
        {
            failure = e;
        }

        var wire = Encoding.Latin1.GetString(proxy.FromServer());
        foreach (var plaintext in new[] { "HTTP/1.1 101", "Sec-WebSocket-Accept", "auth_success", "subscribed", marker })
            Assert.DoesNotContain(plaintext, wire, StringComparison.Ordinal);
        Assert.Null(failure);
        Assert.Contains(marker, received!, StringComparison.Ordinal);
        // TLS application data records (content type 23, version 3.3) carried the frames.
        Assert.Contains("\u0017\u0003\u0003", wire, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("certificate = \"/nonexistent/server.crt\", key = \"/nonexistent/server.key\"", "/nonexistent/server.crt")]
    [InlineData("pfx = \"/nonexistent/server.pfx\"", "/nonexistent/server.pfx")]
    [InlineData("certificate = \"/nonexistent/server.crt\"", "key")]
    public async Task A_bad_tls_setting_stops_startup_saying_what_is_wrong(string tls, string expected)
    {
        var e = await Assert.ThrowsAsync<StartupException>(() => TestServer.StartAsync($"traderoom.tls {{ {tls} }}"));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_wrong_PFX_password_stops_startup_naming_the_password()
    {
        var e = await Assert.ThrowsAsync<StartupException>(() =>
            TestServer.StartAsync($"traderoom.tls {{ pfx = \"{_certificate.PfxPath}\", pfx-password = \"wrong\" }}"));
        Assert.Contains("wrong password", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_key_that_does_not_match_the_certificate_stops_startup()
    {
        using var other = TestCertificate.Create();
        var e = await Assert.ThrowsAsync<StartupException>(() =>
            TestServer.StartAsync($"traderoom.tls {{ certificate = \"{_certificate.CertificatePath}\", key = \"{other.KeyPath}\" }}"));
        Assert.Contains(_certificate.CertificatePath, e.Message, StringComparison.Ordinal);
    }

    /// <summary>A TCP proxy to 127.0.0.1:<c>target</c> that keeps a copy of everything the server sends.</summary>
    private sealed class CapturingProxy : IAsyncDisposable
    {
        private readonly TcpListener _listener;
        private readonly MemoryStream _fromServer = new();
        private readonly CancellationTokenSource _stop = new();
        private readonly List<Task> _tasks = [];

        private CapturingProxy(TcpListener listener) => _listener = listener;

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public static Task<CapturingProxy> StartAsync(int target)
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var proxy = new CapturingProxy(listener);
            proxy._tasks.Add(proxy.AcceptAsync(target));
            return Task.FromResult(proxy);
        }

        public byte[] FromServer()
        {
            lock (_fromServer)
                return _fromServer.ToArray();
        }

        private async Task AcceptAsync(int target)
        {
            try
            {
                while (true)
                {
                    var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                    var upstream = new TcpClient();
                    await upstream.ConnectAsync(IPAddress.Loopback, target, _stop.Token);
                    lock (_tasks)
                    {
                        _tasks.Add(PumpAsync(client.GetStream(), upstream.GetStream(), capture: null, upstream));
                        _tasks.Add(PumpAsync(upstream.GetStream(), client.GetStream(), capture: _fromServer, client));
                    }
                }
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }
        }

        private async Task PumpAsync(Stream from, Stream to, MemoryStream? capture, TcpClient closeWhenDone)
        {
            var buffer = new byte[16 * 1024];
            try
            {
                int read;
                while ((read = await from.ReadAsync(buffer, _stop.Token)) > 0)
                {
                    if (capture is not null)
                    {
                        lock (capture)
                            capture.Write(buffer, 0, read);
                    }
                    await to.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException)
            {
            }
            finally
            {
                closeWhenDone.Dispose();
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            Task[] tasks;
            lock (_tasks)
                tasks = [.. _tasks];
            await Task.WhenAll(tasks);
            _stop.Dispose();
        }
    }
}
