using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Net.WebSockets;
using Akka.Actor;
using Akka.Hosting;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using TradeRoom.Actors;
using TradeRoom.Actors.Auth;
using TradeRoom.Actors.Connections;
using TradeRoom.Actors.Monitoring;
using TradeRoom.Actors.Protocol;

namespace TradeRoom.Server.WebSockets;

/// <summary>
/// Runs one client on the WebSocket port: the opening handshake, then a receive loop that parses each message
/// (checking tokens itself, so the actor never waits) and tells the connection's <see cref="ConnectionActor"/>.
/// Idle sockets wait with zero-byte reads and so hold no receive buffer.
/// Logs one line when a connection opens and one when it closes, and keeps the open and authenticated counts.
/// </summary>
internal sealed class WebSocketConnectionHandler(
    TradeRoomSettings settings,
    JwtValidator validator,
    IRequiredActor<ConnectionManager> connectionManager,
    OpenSockets openSockets,
    ServerLag serverLag,
    ILogger<WebSocketConnectionHandler> log)
{
    private const int InitialReceiveBuffer = 1024;

    public async Task HandleAsync(ConnectionContext connection)
    {
        // Frames go straight to the socket where the transport exposes it (Kestrel's socket transport does), but never
        // under TLS: the socket feature still names the raw socket there, and only the transport's pipe encrypts.
        var direct = connection.Features.Get<ITlsHandshakeFeature>() is null ? connection.Features.Get<IConnectionSocketFeature>()?.Socket : null;
        if (direct is not null)
            direct.Blocking = false;
        var stream = new DuplexPipeStream(connection.Transport, direct);
        UpgradeRequest? request;
        using (var handshakeTimeout = CancellationTokenSource.CreateLinkedTokenSource(connection.ConnectionClosed))
        {
            handshakeTimeout.CancelAfter(settings.HandshakeTimeout);
            try
            {
                request = await WebSocketHandshake.AcceptAsync(connection.Transport, stream, settings.MaxHandshakeSize, settings.AllowedOrigins, handshakeTimeout.Token);
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
            // Ping frames every ping-interval; the sweeper closes a socket silent for heartbeat-timeout with 4000.
            // The WebSocket's own pong timeout is only a backstop behind it.
            KeepAliveInterval = settings.PingInterval,
            KeepAliveTimeout = settings.HeartbeatTimeout + settings.PingInterval,
        });
        var socket = new ClientSocket(webSocket, stream, settings, () => connection.Abort(new ConnectionAbortedException("closed by the server")));
        // Pings (any control frame) count against the same rate as messages. The WebSocket answers pings by itself, so
        // a ping flood is closed here, and the stream stops reading: no more pongs are made while the close goes out.
        var rate = new RateLimiter(settings.MessagesPerSecond, settings.MessageBurst, settings.FloodCloseAfter,
            serverLag, (long)settings.MaxLagCredit.TotalMilliseconds, Environment.TickCount64);
        stream.OnControlFrame = () =>
        {
            if (rate.TryTake(Environment.TickCount64) || !rate.Flooding)
                return;
            socket.Close(CloseCodes.PolicyViolation, "rate limit exceeded (control frames)");
            stream.StopReading();
        };
        IActorRef actor;
        try
        {
            actor = await connectionManager.ActorRef.Ask<IActorRef>(new OpenConnection(socket), settings.HandshakeTimeout);
        }
        catch (Exception e) when (e is AskTimeoutException or OperationCanceledException)
        {
            // The actor system is stopping (or overloaded): nobody can serve this socket.
            log.LogWarning("Socket {ConnectionId} refused: no connection actor ({Reason})", connection.ConnectionId, e.Message);
            socket.Close(CloseCodes.GoingAway, "server unavailable");
            await socket.FlushAsync(settings.CloseTimeout);
            socket.Dispose();
            return;
        }
        openSockets.Add(socket);
        var opened = Stopwatch.GetTimestamp();
        Metrics.OpenConnections.Inc();
        log.LogInformation("Connection {ConnectionId} opened from {RemoteAddress}", connection.ConnectionId, RemoteAddress(connection));
        try
        {
            if (request.Token is not null)
                await AuthenticateAsync(request.Token, actor, socket, connection.ConnectionId);
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
            openSockets.Remove(socket);
            await socket.FlushAsync(settings.CloseTimeout);
            socket.Dispose();
            Closed(connection.ConnectionId, socket, webSocket, Stopwatch.GetElapsedTime(opened));
            openSockets.Release();
        }
    }

    private TradeRoomMetrics Metrics => settings.Metrics;

    private void Closed(string connectionId, ClientSocket socket, WebSocket webSocket, TimeSpan duration)
    {
        var (code, reason, byClient) = socket.CloseInfo;
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

    private async Task AuthenticateAsync(string token, IActorRef actor, ClientSocket socket, string connectionId)
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
            var admission = await connectionManager.ActorRef.Ask<UserAdmission>(new AdmitUser(outcome.UserId!, actor), settings.HandshakeTimeout);
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

    private async Task ReceiveLoopAsync(WebSocket webSocket, ClientSocket socket, IActorRef actor, string connectionId, RateLimiter rate)
    {
        while (true)
        {
            // Wait for the next message without holding a buffer.
            var probe = await webSocket.ReceiveAsync(Memory<byte>.Empty, CancellationToken.None);
            switch (probe.MessageType)
            {
                case WebSocketMessageType.Close:
                    socket.ClosedByClient((int?)webSocket.CloseStatus ?? CloseCodes.Normal);
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
                        socket.ClosedByClient((int?)webSocket.CloseStatus ?? CloseCodes.Normal);
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
