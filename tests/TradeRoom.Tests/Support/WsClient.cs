using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace TradeRoom.Tests.Support;

/// <summary>One frame the server sent: its type and the parsed JSON.</summary>
public sealed record Frame(string Type, JsonElement Root, string Raw)
{
    public JsonElement Data => Root.GetProperty("data");
    public string? Code => Data.TryGetProperty("code", out var c) ? c.GetString() : null;
    public long Seq => Root.GetProperty("seq").GetInt64();
    public string? BullPenId => Root.TryGetProperty("bullPenId", out var b) ? b.GetString() : null;
}

/// <summary>A real <see cref="ClientWebSocket"/> with helpers to send JSON and read frames with timeouts.</summary>
public sealed class WsClient : IAsyncDisposable
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    private readonly MessageReader _reader;

    private WsClient(ClientWebSocket socket)
    {
        Socket = socket;
        _reader = new MessageReader(socket);
    }

    public ClientWebSocket Socket { get; }

    /// <param name="validate">For wss://: the check of the server's certificate (e.g. <see cref="TestCertificate.Validate"/>).</param>
    public static async Task<WsClient> ConnectAsync(Uri uri, System.Net.Security.RemoteCertificateValidationCallback? validate = null)
    {
        var socket = new ClientWebSocket();
        if (validate is not null)
            socket.Options.RemoteCertificateValidationCallback = validate;
        using var timeout = new CancellationTokenSource(DefaultTimeout);
        await socket.ConnectAsync(uri, timeout.Token);
        return new WsClient(socket);
    }

    public Task SendAsync(object message) => SendTextAsync(JsonSerializer.Serialize(message));

    public async Task SendTextAsync(string text)
    {
        using var timeout = new CancellationTokenSource(DefaultTimeout);
        await Socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, timeout.Token);
    }

    /// <summary>The next frame; fails the test if none comes within the timeout or the socket closes.</summary>
    public async Task<Frame> ReceiveAsync(TimeSpan? timeout = null)
    {
        var (type, text) = await ReceiveRawAsync(timeout ?? DefaultTimeout);
        if (type == WebSocketMessageType.Close)
            throw new InvalidOperationException($"socket closed: {(int?)Socket.CloseStatus} {Socket.CloseStatusDescription}");
        var root = JsonDocument.Parse(text).RootElement.Clone();
        return new Frame(root.GetProperty("type").GetString()!, root, text);
    }

    /// <summary>The next frame of <paramref name="type"/>, skipping others.</summary>
    public async Task<Frame> ReceiveTypeAsync(string type, TimeSpan? timeout = null)
    {
        using var deadline = new CancellationTokenSource(timeout ?? DefaultTimeout);
        while (true)
        {
            var frame = await ReceiveAsync(timeout);
            if (frame.Type == type)
                return frame;
            deadline.Token.ThrowIfCancellationRequested();
        }
    }

    /// <summary>Reads until the server closes; returns the close code (frames before it are skipped).</summary>
    public async Task<int> ReceiveCloseAsync(TimeSpan? timeout = null)
    {
        while (true)
        {
            var (type, _) = await ReceiveRawAsync(timeout ?? DefaultTimeout);
            if (type == WebSocketMessageType.Close)
                return (int)Socket.CloseStatus!.Value;
        }
    }

    /// <summary>True if no frame arrives within <paramref name="wait"/>.</summary>
    public async Task<Frame?> TryReceiveAsync(TimeSpan wait)
    {
        try
        {
            return await ReceiveAsync(wait);
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    private Task<(WebSocketMessageType, string)>? _pending;

    private async Task<(WebSocketMessageType Type, string Text)> ReceiveRawAsync(TimeSpan timeout)
    {
        // A receive that timed out is kept and awaited by the next call, so no frame is lost between calls.
        _pending ??= ReadMessageAsync();
        var finished = await Task.WhenAny(_pending, Task.Delay(timeout));
        if (finished != _pending)
            throw new OperationCanceledException($"no frame within {timeout.TotalSeconds:0.#} s");
        var result = await _pending;
        _pending = null;
        return result;
    }

    private async Task<(WebSocketMessageType, string)> ReadMessageAsync()
    {
        var (type, count) = await _reader.ReadAsync();
        return (type, type == WebSocketMessageType.Close ? "" : Encoding.UTF8.GetString(_reader.Buffer, 0, count));
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (Socket.State == WebSocketState.Open)
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await Socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", timeout.Token);
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException)
        {
        }
        Socket.Dispose();
    }
}
