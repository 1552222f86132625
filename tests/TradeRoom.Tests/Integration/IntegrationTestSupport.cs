using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Integration;

/// <summary>What /api/health answered.</summary>
public sealed record Health(string Status, int Connections, int Rooms, long UptimeSeconds);

/// <summary>A raw HTTP answer read off a plain TCP socket.</summary>
public sealed record RawResponse(int Status, string Head, string Body)
{
    public JsonElement Json => JsonDocument.Parse(Body).RootElement.Clone();
    public string? ErrorCode => Json.GetProperty("error").GetProperty("code").GetString();
}

/// <summary>Helpers for the end-to-end tests in this folder, over <see cref="TestServer"/> and <see cref="WsClient"/>.</summary>
internal static class E2E
{
    public static readonly TimeSpan PollTimeout = TimeSpan.FromSeconds(15);

    /// <summary>A room id no other test uses.</summary>
    public static string Room(string prefix) => $"{prefix}-{Guid.NewGuid():N}";

    public static Task SendAuthAsync(this WsClient client, string token) =>
        client.SendAsync(new { type = "auth", data = new { token } });

    public static Task SubscribeAsync(this WsClient client, string bullPenId) =>
        client.SendAsync(new { type = "subscribe_room", data = new { bullPenId } });

    public static Task UnsubscribeAsync(this WsClient client, string bullPenId) =>
        client.SendAsync(new { type = "unsubscribe_room", data = new { bullPenId } });

    /// <summary>
    /// Sends a ping with a unique marker and returns every frame that arrived before its pong. Everything the server
    /// queued for this connection before the ping was handled comes first, so this is a barrier, not a sleep.
    /// </summary>
    public static async Task<List<Frame>> BarrierAsync(this WsClient client)
    {
        var marker = Guid.NewGuid().ToString("N");
        await client.SendAsync(new { type = "ping", data = new { barrier = marker } });
        var before = new List<Frame>();
        while (true)
        {
            var frame = await client.ReceiveAsync();
            if (frame.Type == "pong" && frame.Data.ValueKind == JsonValueKind.Object
                && frame.Data.TryGetProperty("barrier", out var b) && b.GetString() == marker)
                return before;
            before.Add(frame);
        }
    }

    /// <summary>A socket on <paramref name="path"/> (default /ws) with an optional <c>?token=</c>; nothing read yet.</summary>
    public static Task<WsClient> ConnectRawAsync(this TestServer server, string? token = null, string path = "/ws")
    {
        var query = token is null ? "" : "?token=" + Uri.EscapeDataString(token);
        return WsClient.ConnectAsync(new Uri($"ws://127.0.0.1:{server.WsPort}{path}{query}"));
    }

    public static async Task<Health> HealthAsync(this TestServer server)
    {
        var text = await server.Http.GetStringAsync("/api/health");
        var root = JsonDocument.Parse(text).RootElement;
        return new Health(root.GetProperty("status").GetString()!, root.GetProperty("connections").GetInt32(),
            root.GetProperty("rooms").GetInt32(), root.GetProperty("uptimeSeconds").GetInt64());
    }

    /// <summary>Polls /api/health until <paramref name="condition"/> holds; fails with the last answer at the deadline.</summary>
    public static async Task<Health> WaitForHealthAsync(this TestServer server, Func<Health, bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + PollTimeout;
        while (true)
        {
            var health = await server.HealthAsync();
            if (condition(health))
                return health;
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"timed out waiting for {what}; last health: {health}");
            await Task.Delay(20);
        }
    }

    /// <summary>Sends a single text frame of exactly these bytes.</summary>
    public static async Task SendBytesAsync(this WsClient client, byte[] bytes, WebSocketMessageType type = WebSocketMessageType.Text)
    {
        using var timeout = new CancellationTokenSource(WsClient.DefaultTimeout);
        await client.Socket.SendAsync(bytes, type, endOfMessage: true, timeout.Token);
    }

    /// <summary>Sends <paramref name="request"/> on a plain TCP connection and reads the HTTP answer (head, and body by Content-Length).</summary>
    public static async Task<RawResponse> RawHttpAsync(int port, string request)
    {
        using var tcp = new TcpClient();
        using var timeout = new CancellationTokenSource(WsClient.DefaultTimeout);
        await tcp.ConnectAsync(IPAddress.Loopback, port, timeout.Token);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request), timeout.Token);

        var received = new List<byte>();
        var buffer = new byte[4096];
        int headEnd;
        while ((headEnd = IndexOfHeadEnd(received)) < 0)
        {
            var n = await stream.ReadAsync(buffer, timeout.Token);
            if (n == 0)
                throw new InvalidOperationException($"connection closed before the response head: {Encoding.ASCII.GetString(received.ToArray())}");
            received.AddRange(buffer.AsSpan(0, n));
        }
        var head = Encoding.ASCII.GetString(received.ToArray(), 0, headEnd);
        var status = int.Parse(head.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        var length = 0;
        foreach (var line in head.Split("\r\n"))
        {
            if (line.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
                length = int.Parse(line["Content-Length:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture);
        }
        var bodyStart = headEnd + 4;
        if (head.Contains("Transfer-Encoding: chunked", StringComparison.OrdinalIgnoreCase))
            return new RawResponse(status, head, await ReadChunkedAsync(stream, received.GetRange(bodyStart, received.Count - bodyStart), timeout.Token));
        while (received.Count < bodyStart + length)
        {
            var n = await stream.ReadAsync(buffer, timeout.Token);
            if (n == 0)
                break;
            received.AddRange(buffer.AsSpan(0, n));
        }
        var body = Encoding.UTF8.GetString(received.ToArray(), bodyStart, Math.Min(length, received.Count - bodyStart));
        return new RawResponse(status, head, body);
    }

    /// <summary>A well-formed upgrade request with the given extra header lines (each ending in CRLF).</summary>
    public static string UpgradeRequest(string path = "/ws", string version = "13", string extraHeaders = "") =>
        $"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        $"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: {version}\r\n{extraHeaders}\r\n";

    /// <summary>A chunked body, decoded: reads to the last (empty) chunk.</summary>
    private static async Task<string> ReadChunkedAsync(System.IO.Stream stream, List<byte> received, CancellationToken cancellationToken)
    {
        var buffer = new byte[4096];
        var body = new List<byte>();
        var at = 0;
        while (true)
        {
            var lineEnd = IndexOfCrLf(received, at);
            while (lineEnd < 0)
            {
                var n = await stream.ReadAsync(buffer, cancellationToken);
                if (n == 0)
                    throw new InvalidOperationException("connection closed inside a chunked body");
                received.AddRange(buffer.AsSpan(0, n));
                lineEnd = IndexOfCrLf(received, at);
            }
            var size = Convert.ToInt32(Encoding.ASCII.GetString(received.ToArray(), at, lineEnd - at).Split(';')[0].Trim(), 16);
            if (size == 0)
                return Encoding.UTF8.GetString(body.ToArray());
            var dataStart = lineEnd + 2;
            while (received.Count < dataStart + size + 2)
            {
                var n = await stream.ReadAsync(buffer, cancellationToken);
                if (n == 0)
                    throw new InvalidOperationException("connection closed inside a chunk");
                received.AddRange(buffer.AsSpan(0, n));
            }
            body.AddRange(received.GetRange(dataStart, size));
            at = dataStart + size + 2;
        }
    }

    private static int IndexOfCrLf(List<byte> bytes, int from)
    {
        for (var i = from; i + 1 < bytes.Count; i++)
        {
            if (bytes[i] == '\r' && bytes[i + 1] == '\n')
                return i;
        }
        return -1;
    }

    private static int IndexOfHeadEnd(List<byte> bytes)
    {
        for (var i = 0; i + 3 < bytes.Count; i++)
        {
            if (bytes[i] == '\r' && bytes[i + 1] == '\n' && bytes[i + 2] == '\r' && bytes[i + 3] == '\n')
                return i;
        }
        return -1;
    }
}
