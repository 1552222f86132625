using System.Security.Cryptography;
using System.Text;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Integration;

/// <summary>A server that allows one browser origin, shared by <see cref="WebSocketHandshakeTests"/>.</summary>
public sealed class OriginRestrictedServerFixture : IAsyncLifetime
{
    public const string GoodOrigin = "http://good.example";

    public TestServer Server { get; private set; } = null!;

    public async Task InitializeAsync() =>
        Server = await TestServer.StartAsync($"traderoom.websocket.allowed-origins = [\"{GoodOrigin}\"]");

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>The opening handshake on the WebSocket port, over raw TCP: failures are HTTP answers with a JSON error body.</summary>
public class WebSocketHandshakeTests(OriginRestrictedServerFixture fixture) : IClassFixture<OriginRestrictedServerFixture>
{
    private TestServer Server => fixture.Server;

    [Fact]
    public async Task Plain_GET_without_upgrade_answers_426_with_a_json_error()
    {
        var response = await E2E.RawHttpAsync(Server.WsPort, "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");

        Assert.Equal(426, response.Status);
        Assert.Contains("Content-Type: application/json", response.Head, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("Upgrade: websocket", response.Head, StringComparison.OrdinalIgnoreCase);
        Assert.Equal("upgrade_required", response.ErrorCode);
    }

    [Theory]
    [InlineData("GET /ws\r\nHost: x\r\n\r\n", 400, "bad_request")]
    [InlineData("GET /ws HTTP/1.0\r\nHost: x\r\n\r\n", 400, "bad_request")]
    [InlineData("GET /ws HTTP/1.1\r\nno colon here\r\n\r\n", 400, "bad_request")]
    [InlineData("POST /ws HTTP/1.1\r\nHost: x\r\n\r\n", 405, "method_not_allowed")]
    [InlineData("GET /%2E%2E/ws HTTP/1.1\r\nHost: x\r\n\r\n", 404, "not_found")]
    [InlineData("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n", 400, "bad_request")]
    [InlineData("BIG", 431, "handshake_too_large")]
    public async Task Every_refused_handshake_is_an_HTTP_answer_with_a_JSON_error_body(string request, int status, string code)
    {
        if (request == "BIG")
            request = E2E.UpgradeRequest(extraHeaders: $"X-Big: {new string('x', 9000)}\r\n");

        var response = await E2E.RawHttpAsync(Server.WsPort, request);

        Assert.Equal(status, response.Status);
        Assert.Contains("Content-Type: application/json", response.Head, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(code, response.ErrorCode);
        Assert.False(string.IsNullOrEmpty(response.Json.GetProperty("error").GetProperty("message").GetString()));
    }

    [Theory]
    [InlineData("/socket")]
    [InlineData("/ws/extra")]
    [InlineData("/api/health")]
    public async Task Upgrade_on_a_wrong_path_answers_404_with_a_json_error(string path)
    {
        var response = await E2E.RawHttpAsync(Server.WsPort, E2E.UpgradeRequest(path));

        Assert.Equal(404, response.Status);
        Assert.Equal("not_found", response.ErrorCode);
    }

    [Theory]
    [InlineData("8")]
    [InlineData("12")]
    [InlineData("14")]
    public async Task Upgrade_with_an_unsupported_websocket_version_answers_426_with_a_json_error(string version)
    {
        var response = await E2E.RawHttpAsync(Server.WsPort, E2E.UpgradeRequest(version: version));

        Assert.Equal(426, response.Status);
        Assert.Contains("Sec-WebSocket-Version: 13", response.Head, StringComparison.OrdinalIgnoreCase);
        Assert.Equal("unsupported_version", response.ErrorCode);
    }

    [Fact]
    public async Task Upgrade_from_a_disallowed_origin_answers_403_with_a_json_error()
    {
        var response = await E2E.RawHttpAsync(Server.WsPort, E2E.UpgradeRequest(extraHeaders: "Origin: http://evil.example\r\n"));

        Assert.Equal(403, response.Status);
        Assert.Equal("origin_not_allowed", response.ErrorCode);
    }

    [Theory]
    [InlineData("Origin: " + OriginRestrictedServerFixture.GoodOrigin + "\r\n")]
    [InlineData("")]
    public async Task Upgrade_from_an_allowed_origin_or_without_origin_answers_101(string originHeader)
    {
        var response = await E2E.RawHttpAsync(Server.WsPort, E2E.UpgradeRequest(extraHeaders: originHeader));

        Assert.Equal(101, response.Status);
        var expectedAccept = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes("dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));
        Assert.Contains($"Sec-WebSocket-Accept: {expectedAccept}", response.Head, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Client_from_an_allowed_origin_completes_the_protocol()
    {
        using var socket = new System.Net.WebSockets.ClientWebSocket();
        socket.Options.SetRequestHeader("Origin", OriginRestrictedServerFixture.GoodOrigin);
        using var timeout = new CancellationTokenSource(WsClient.DefaultTimeout);
        await socket.ConnectAsync(Server.WsUri, timeout.Token);
        await socket.SendAsync("""{"type":"ping","data":{"hello":"origin"}}"""u8.ToArray(), System.Net.WebSockets.WebSocketMessageType.Text, true, timeout.Token);

        var buffer = new byte[4096];
        var result = await socket.ReceiveAsync(buffer, timeout.Token);

        Assert.Equal("""{"type":"pong","data":{"hello":"origin"}}""", Encoding.UTF8.GetString(buffer, 0, result.Count));
        await socket.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, "", timeout.Token);
    }
}
