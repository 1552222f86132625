using System.Net.WebSockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace TradeRoom.Transport;

/// <summary>
/// What the server does with a socket once it is open: its receive loop and whatever serves it (the actors). The
/// transport owns the rest of the socket's life: the handshake before, and after <see cref="RunAsync"/> returns,
/// writing what is queued and the close (within <c>close-timeout</c>), then <see cref="OnEnded"/>.
/// </summary>
public interface IWebSocketApplication
{
    /// <summary>Serves one socket until its receive side is done: the client's close, a dropped connection, a protocol error.</summary>
    Task RunAsync(WebSocketSession session);

    /// <summary>The socket has ended: its close is written (or timed out) and <see cref="ClientSocket.CloseInfo"/> is final.</summary>
    void OnEnded(WebSocketSession session);
}

/// <summary>One open socket, as the transport hands it to the <see cref="IWebSocketApplication"/>.</summary>
public sealed class WebSocketSession
{
    private readonly DuplexPipeStream _stream;

    internal WebSocketSession(ConnectionContext connection, WebSocket webSocket, ClientSocket socket, DuplexPipeStream stream, string? token)
    {
        Connection = connection;
        WebSocket = webSocket;
        Socket = socket;
        _stream = stream;
        Token = token;
    }

    public ConnectionContext Connection { get; }

    /// <summary>The socket's receive side (and its own pings, pongs and close). Frames to the client go through <see cref="Socket"/>.</summary>
    public WebSocket WebSocket { get; }

    /// <summary>The socket's outbound queue: every frame to the client, and its close.</summary>
    public ClientSocket Socket { get; }

    /// <summary>The upgrade request's <c>?token=</c>, if it had one.</summary>
    public string? Token { get; }

    /// <summary>What the application keeps for this socket until <see cref="IWebSocketApplication.OnEnded"/>; null until it sets it.</summary>
    public object? State { get; set; }

    /// <summary>Called for each control frame (ping, pong, close) the client sends, as its header arrives.</summary>
    public Action? OnControlFrame
    {
        get => _stream.OnControlFrame;
        set => _stream.OnControlFrame = value;
    }

    /// <summary>Reads nothing more from the client (a flood); the close the server sends still goes out.</summary>
    public void StopReading() => _stream.StopReading();
}

/// <summary>
/// Serves the WebSocket port as a Kestrel <see cref="ConnectionHandler"/> (<c>UseConnectionHandler</c>): the RFC 6455
/// opening handshake, done here so that no HTTP request objects stay alive per socket, then the
/// <see cref="IWebSocketApplication"/>, then the socket's end. Idle sockets wait with zero-byte reads and so hold no
/// receive buffer; the write side holds a buffer only while frames wait in it (<see cref="FrameWriter"/>).
/// </summary>
public sealed class WebSocketConnectionHandler(TransportOptions options, OpenSockets sockets, IWebSocketApplication application, ITransportMetrics metrics)
    : ConnectionHandler
{
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        // Frames go straight to the socket where the transport exposes it (Kestrel's socket transport does), but never
        // under TLS: the socket feature still names the raw socket there, and only the transport's pipe encrypts.
        var direct = connection.Features.Get<ITlsHandshakeFeature>() is null ? connection.Features.Get<IConnectionSocketFeature>()?.Socket : null;
        if (direct is not null)
            direct.Blocking = false;
        var stream = new DuplexPipeStream(connection.Transport.Input, new FrameWriter(connection.Transport.Output, direct, options.WriteBufferSize));
        UpgradeRequest? request;
        using (var handshakeTimeout = CancellationTokenSource.CreateLinkedTokenSource(connection.ConnectionClosed))
        {
            handshakeTimeout.CancelAfter(options.HandshakeTimeout);
            try
            {
                request = await WebSocketHandshake.AcceptAsync(connection.Transport, stream, options.MaxHandshakeSize, options.AllowedOrigins, handshakeTimeout.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or ConnectionResetException or System.Net.Sockets.SocketException or ObjectDisposedException)
            {
                return;
            }
        }
        if (request is null)
            return;

        using var webSocket = WebSocket.CreateFromStream(stream, new WebSocketCreationOptions
        {
            IsServer = true,
            // The sweeper pings every socket each ping-interval and closes one silent for heartbeat-timeout with 4000
            // (ClientSocket.CheckHealth): the WebSocket's own keep-alive would cost every connection a timer.
            KeepAliveInterval = TimeSpan.Zero,
        });
        var socket = new ClientSocket(webSocket, stream, options, metrics, () => connection.Abort(new ConnectionAbortedException("closed by the server")));
        var session = new WebSocketSession(connection, webSocket, socket, stream, request.Token);
        sockets.Add(socket);
        try
        {
            await application.RunAsync(session);
        }
        finally
        {
            sockets.Remove(socket);
            await socket.WaitUntilWrittenAsync(options.CloseTimeout);
            socket.Dispose();
            application.OnEnded(session);
            sockets.Release();
        }
    }
}
