using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Net.WebSockets;
using Akka.Actor;
using Akka.Hosting;
using Microsoft.AspNetCore.Connections;
using TradeRoom.Actors;
using TradeRoom.Actors.Auth;
using TradeRoom.Actors.Connections;
using TradeRoom.Actors.Monitoring;
using TradeRoom.Actors.Rooms;
using TradeRoom.Protocol;
using TradeRoom.Transport;

namespace TradeRoom.Server.WebSockets;

/// <summary>
/// Glues each socket the transport opens to a <see cref="ConnectionActor"/>: a receive loop that parses each message
/// (checking tokens itself, so the actor never waits) and tells the actor, which answers through the socket's
/// outbound queue (<see cref="ConnectionSocket"/>).
/// Logs one line when a connection opens and one when it closes, and keeps the open and authenticated counts.
/// </summary>
internal sealed class ConnectionBridge(
    TradeRoomSettings settings,
    TransportOptions transport,
    JwtValidator validator,
    IServiceProvider services,
    ServerLag serverLag,
    ILogger<ConnectionBridge> log) : IWebSocketApplication
{
    private const int InitialReceiveBuffer = 1024;

    private IActorRef? _connectionManager;

    /// <summary>
    /// Looked up at the first connection, not when made: Kestrel makes its connection handler, and so this, while the
    /// host is being built, and the actor system must start with the host (where a failure to start is reported), not then.
    /// </summary>
    private IActorRef ConnectionManagerRef => _connectionManager ??= services.GetRequiredService<IRequiredActor<ConnectionManager>>().ActorRef;

    public async Task RunAsync(WebSocketSession session)
    {
        var connection = session.Connection;
        var webSocket = session.WebSocket;
        var socket = new ConnectionSocket(session.Socket);
        // Pings (any control frame) count against the same rate as messages. The WebSocket answers pings by itself, so
        // a ping flood is closed here, and the stream stops reading: no more pongs are made while the close goes out.
        var rate = new RateLimiter(settings.MessagesPerSecond, settings.MessageBurst, settings.FloodCloseAfter,
            serverLag, (long)settings.MaxLagCredit.TotalMilliseconds, Environment.TickCount64);
        session.OnControlFrame = () =>
        {
            if (rate.TryTake(Environment.TickCount64) || !rate.Flooding)
                return;
            socket.Close(CloseCodes.PolicyViolation, "rate limit exceeded (control frames)");
            session.StopReading();
        };
        IActorRef actor;
        try
        {
            actor = await ConnectionManagerRef.Ask<IActorRef>(new OpenConnection(socket), transport.HandshakeTimeout);
        }
        catch (Exception e) when (e is AskTimeoutException or OperationCanceledException)
        {
            // The actor system is stopping (or overloaded): nobody can serve this socket.
            log.LogWarning("Socket {ConnectionId} refused: no connection actor ({Reason})", connection.ConnectionId, e.Message);
            socket.Close(CloseCodes.GoingAway, "server unavailable");
            return;
        }
        socket.Opened = Stopwatch.GetTimestamp();
        session.State = socket;
        Metrics.OpenConnections.Inc();
        log.LogInformation("Connection {ConnectionId} opened from {RemoteAddress}", connection.ConnectionId, RemoteAddress(connection));
        try
        {
            if (session.Token is not null)
                await AuthenticateAsync(session.Token, actor, socket, connection.ConnectionId);
            await ReceiveLoopAsync(webSocket, socket, actor, connection.ConnectionId, rate);
        }
        catch (Exception e) when (e is WebSocketException or IOException or OperationCanceledException or ConnectionResetException)
        {
            log.LogDebug("Socket {ConnectionId} ended: {Reason}", connection.ConnectionId, e.Message);
        }
        catch (Exception e)
        {
            // A bug of ours, not the client's: say so with 1011 rather than drop the socket.
            log.LogError(e, "Socket {ConnectionId} failed in its receive loop", connection.ConnectionId);
            socket.Close(CloseCodes.InternalError, "internal error");
        }
        finally
        {
            actor.Tell(SocketClosed.Instance);
        }
    }

    /// <summary>A socket whose actor was made has ended: its close log line and counts. (One refused before that has neither.)</summary>
    public void OnEnded(WebSocketSession session)
    {
        if (session.State is ConnectionSocket socket)
            Closed(session.Connection.ConnectionId, socket, session.WebSocket, Stopwatch.GetElapsedTime(socket.Opened));
    }

    private TradeRoomMetrics Metrics => settings.Metrics;

    private void Closed(string connectionId, ConnectionSocket socket, WebSocket webSocket, TimeSpan duration)
    {
        var (code, reason, byClient) = socket.Socket.CloseInfo;
        if (byClient && reason.Length == 0)
            reason = webSocket.CloseStatusDescription ?? "";
        Metrics.OpenConnections.Dec();
        if (socket.UserId is not null)
            Metrics.AuthenticatedConnections.Dec();
        Metrics.Closed(code);
        log.LogInformation(
            "Connection {ConnectionId} closed by {ClosedBy} with {CloseCode} {CloseName} ({CloseReason}) after {DurationSeconds:0.000} s, user {UserId}",
            connectionId, byClient ? "client" : "server", code, TradeRoomMetrics.CloseReason(code), TextRules.ForLog(reason), duration.TotalSeconds,
            TextRules.ForLog(socket.UserId) ?? "none");
    }

    private static string RemoteAddress(ConnectionContext connection) => connection.RemoteEndPoint switch
    {
        IPEndPoint ip => ip.ToString(),
        { } other => other.ToString() ?? "unknown",
        null => "unknown",
    };

    private async Task AuthenticateAsync(string token, IActorRef actor, ConnectionSocket socket, string connectionId)
    {
        var outcome = await validator.ValidateAsync(token);
        if (!outcome.IsValid)
        {
            // The reason only: never the token.
            log.LogInformation("Connection {ConnectionId} failed authentication: {AuthError} ({AuthMessage})",
                connectionId, outcome.ErrorCode, TextRules.ForLog(outcome.ErrorMessage));
            actor.Tell(new AuthFailed(outcome.ErrorCode!, outcome.ErrorMessage!));
            return;
        }
        if (outcome.IsService && !settings.AllowServiceTokens)
        {
            log.LogInformation("Connection {ConnectionId} failed authentication: {AuthError} (a service token, user {UserId})",
                connectionId, ErrorCodes.InvalidToken, TextRules.ForLog(outcome.UserId));
            actor.Tell(new AuthFailed(ErrorCodes.InvalidToken,
                "a service token cannot open a trader's session; connect with the trader's own token (traderoom.websocket.allow-service-tokens)"));
            return;
        }
        if (settings.MaxConnectionsPerUser > 0)
        {
            var admission = await ConnectionManagerRef.Ask<UserAdmission>(new AdmitUser(outcome.UserId!, actor), transport.HandshakeTimeout);
            if (!admission.Admitted)
            {
                log.LogInformation("Connection {ConnectionId} failed authentication: {AuthError} (user {UserId})",
                    connectionId, ErrorCodes.TooManyConnections, TextRules.ForLog(outcome.UserId));
                actor.Tell(new AuthFailed(ErrorCodes.TooManyConnections,
                    $"user {outcome.UserId} already has {settings.MaxConnectionsPerUser} connections", CloseCodes.TooManyConnections));
                return;
            }
        }
        if (socket.UserId is null)
        {
            // The first user a connection authenticates as is the one it stays (another user's token gets user_mismatch).
            socket.UserId = outcome.UserId;
            Metrics.AuthenticatedConnections.Inc();
        }
        actor.Tell(new AuthSucceeded(outcome.UserId!, outcome.Expires, outcome.Rooms));
    }

    private async Task ReceiveLoopAsync(WebSocket webSocket, ConnectionSocket socket, IActorRef actor, string connectionId, RateLimiter rate)
    {
        while (true)
        {
            // Wait for the next message without holding a buffer.
            var probe = await webSocket.ReceiveAsync(Memory<byte>.Empty, CancellationToken.None);
            switch (probe.MessageType)
            {
                case WebSocketMessageType.Close:
                    socket.Socket.ClosedByClient((int?)webSocket.CloseStatus ?? CloseCodes.Normal);
                    return;
                case WebSocketMessageType.Binary:
                    actor.Tell(new CloseConnection(CloseCodes.UnsupportedData, "binary frames are not supported; send JSON text frames"));
                    await DrainAsync(webSocket);
                    return;
            }

            var buffer = ArrayPool<byte>.Shared.Rent(InitialReceiveBuffer);
            try
            {
                var count = 0;
                var endOfMessage = probe.EndOfMessage;
                while (!endOfMessage)
                {
                    if (count == buffer.Length)
                        buffer = Grow(buffer, Math.Min(buffer.Length * 2, settings.MaxMessageSize + 1));
                    var received = await webSocket.ReceiveAsync(buffer.AsMemory(count), CancellationToken.None);
                    if (received.MessageType == WebSocketMessageType.Close)
                    {
                        socket.Socket.ClosedByClient((int?)webSocket.CloseStatus ?? CloseCodes.Normal);
                        return;
                    }
                    count += received.Count;
                    endOfMessage = received.EndOfMessage;
                    if (count > settings.MaxMessageSize)
                    {
                        actor.Tell(new CloseConnection(CloseCodes.MessageTooBig, $"message over {settings.MaxMessageSize} bytes"));
                        await DrainAsync(webSocket);
                        return;
                    }
                }

                if (!rate.TryTake(Environment.TickCount64))
                {
                    if (rate.Flooding)
                    {
                        actor.Tell(new CloseConnection(CloseCodes.PolicyViolation, "rate limit exceeded"));
                        await DrainAsync(webSocket);
                        return;
                    }
                    // Through the actor, so the answer keeps its place among the answers to earlier messages.
                    actor.Tell(new RejectedMessage(null, ErrorCodes.RateLimited,
                        $"over {settings.MessagesPerSecond} messages per second (burst {settings.MessageBurst}); this message was dropped"));
                    continue;
                }

                var message = ClientMessageParser.Parse(buffer.AsMemory(0, count));
                if (message is AuthenticateMessage auth)
                    await AuthenticateAsync(auth.Token, actor, socket, connectionId);
                else
                    actor.Tell(message);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    private static byte[] Grow(byte[] buffer, int size)
    {
        var larger = ArrayPool<byte>.Shared.Rent(size);
        buffer.AsSpan().CopyTo(larger);
        ArrayPool<byte>.Shared.Return(buffer);
        return larger;
    }

    /// <summary>After closing for a protocol violation: discard input until the client's close arrives or the close timeout aborts the socket.</summary>
    private static async Task DrainAsync(WebSocket webSocket)
    {
        var scratch = ArrayPool<byte>.Shared.Rent(4096);
        try
        {
            while ((await webSocket.ReceiveAsync(scratch.AsMemory(), CancellationToken.None)).MessageType != WebSocketMessageType.Close)
            {
            }
        }
        catch (Exception e) when (e is WebSocketException or IOException or OperationCanceledException)
        {
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }
}

/// <summary>
/// A <see cref="ConnectionActor"/>'s view of its socket (<see cref="IClientSocket"/>) over the transport's
/// <see cref="ClientSocket"/>, with what the bridge keeps per connection for its log lines.
/// </summary>
internal sealed class ConnectionSocket(ClientSocket socket) : IClientSocket
{
    public ClientSocket Socket => socket;

    /// <summary>The user this connection authenticated as (first success wins), for its close log line; set by the receive loop.</summary>
    public string? UserId { get; set; }

    /// <summary>When its actor was made (<see cref="Stopwatch.GetTimestamp"/>), for the duration in its close log line.</summary>
    public long Opened { get; set; }

    public long QueuedBytes => socket.QueuedBytes;

    public bool Send(byte[] frame) => socket.Send(frame);

    public bool Queue(RoomEvent e) => socket.Queue(new OutboundFrame(e.Frame, e.BullPenId, e.Type, e.PublishedAt));

    public void Flush() => socket.Flush();

    public void NotifyWhenBelow(long bytes, Action callback) => socket.NotifyWhenBelow(bytes, callback);

    public void CallAt(long atMs, Action<object>? callback, object? state) => socket.CallAt(atMs, callback, state);

    public void Close(int code, string reason) => socket.Close(code, reason);
}

/// <summary>The transport counts its writes into the server's metrics.</summary>
internal sealed class TransportMetrics(TradeRoomMetrics metrics) : ITransportMetrics
{
    public void Written(int eventFrames, long bytes) => metrics.Written(eventFrames, bytes);

    public void Delivered(long publishedAt, long writtenAt) => metrics.Delivered(publishedAt, writtenAt);
}
