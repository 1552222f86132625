using System.Diagnostics;
using System.Globalization;
using System.Net.WebSockets;
using System.Text.Json;
using System.Threading.Channels;

namespace TradeRoom.Client;

/// <summary>
/// A subscriber of the TradeRoom WebSocket server: the .NET twin of clients/js/traderoom-client.js. It connects to
/// one of the server URLs, authenticates (and refreshes the token before it expires), follows bull pens and calls
/// back per event, and keeps each room's epoch and position so that after any reconnect it resumes exactly as
/// docs/protocol.md ("Resume") describes: nothing missed, nothing twice. It reconnects with exponential backoff and
/// full jitter, moving to the next URL each time, and notices dead links with an application-level ping.
/// </summary>
/// <remarks>
/// Callbacks (the client's events and the rooms' handlers) run one at a time, never concurrently, and those of one
/// connection in the order of its frames. They may call the client (subscribe, unsubscribe, close) but must not
/// block on its tasks. An exception in a callback is reported on <see cref="Error"/> (<c>callback_error</c>) and the
/// client carries on.
/// </remarks>
public sealed class TradeRoomClient : IAsyncDisposable
{
    /// <summary>Guards every field of the client and of its rooms. Never held while user code runs.</summary>
    internal readonly object Sync = new();

    /// <summary>Held while user code runs, so that callbacks never overlap.</summary>
    private readonly object _callbackGate = new();

    private static readonly TimeSpan CloseHandshakeTimeout = TimeSpan.FromSeconds(2);

    private readonly Uri[] _urls;
    private readonly Func<CancellationToken, ValueTask<string>>? _tokenProvider;
    private readonly TimeSpan _pingInterval;
    private readonly TimeSpan _pingTimeout;
    private readonly TimeSpan _connectTimeout;
    private readonly TimeSpan? _refreshBeforeExpiry;
    private readonly BackoffOptions _backoff;
    private readonly double _perSecond;
    private readonly int _burst;
    private readonly Func<double> _random;
    private readonly Action<ClientWebSocketOptions>? _configureWebSocket;
    private readonly Dictionary<string, Room> _rooms = new(StringComparer.Ordinal);

    private string? _token;
    private ClientState _state = ClientState.Idle;
    private bool _stopped = true;
    private bool _clientClosed;
    private int _urlIndex;
    private int _attempt;
    private string? _userId;
    private string? _node;
    private Link? _link;
    private TaskCompletionSource<AuthInfo>? _connecting;
    private List<TaskCompletionSource<AuthInfo>> _refreshWaiters = [];
    private CancellationTokenSource? _runStop;
    private Task _run = Task.CompletedTask;

    public TradeRoomClient(TradeRoomClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Urls is null || options.Urls.Count == 0)
            throw new ArgumentException("TradeRoomClientOptions.Urls must name at least one ws:// or wss:// URL", nameof(options));
        foreach (var url in options.Urls)
        {
            if (url is null || !url.IsAbsoluteUri || (url.Scheme != "ws" && url.Scheme != "wss"))
                throw new ArgumentException($"not a ws:// or wss:// URL: {url}", nameof(options));
        }
        if ((options.Token is null) == (options.TokenProvider is null))
            throw new ArgumentException("give TradeRoomClientOptions.Token or TokenProvider (one of them)", nameof(options));
        if (options.PingInterval < TimeSpan.Zero || options.PingTimeout <= TimeSpan.Zero || options.ConnectTimeout <= TimeSpan.Zero)
            throw new ArgumentException("PingInterval must be zero or more, PingTimeout and ConnectTimeout more than zero", nameof(options));
        if (options.RateLimit.PerSecond <= 0 || options.RateLimit.Burst < 1)
            throw new ArgumentException("RateLimit.PerSecond must be more than zero and Burst at least 1", nameof(options));

        _urls = [.. options.Urls];
        _token = options.Token;
        _tokenProvider = options.TokenProvider;
        _pingInterval = options.PingInterval;
        _pingTimeout = options.PingTimeout;
        _connectTimeout = options.ConnectTimeout;
        _refreshBeforeExpiry = options.RefreshBeforeExpiry;
        _backoff = new BackoffOptions
        {
            InitialDelay = options.Reconnect.InitialDelay,
            MaxDelay = options.Reconnect.MaxDelay,
            Multiplier = options.Reconnect.Multiplier,
        };
        _perSecond = options.RateLimit.PerSecond;
        _burst = options.RateLimit.Burst;
        _random = options.Random ?? Random.Shared.NextDouble;
        _configureWebSocket = options.ConfigureWebSocket;
    }

    /// <summary>Every change of <see cref="State"/>, with the reconnect attempt and its delay.</summary>
    public event Action<StateChange>? StateChanged;

    /// <summary>Every <c>auth_success</c>: after each (re)connect and after each token refresh.</summary>
    public event Action<AuthInfo>? Authenticated;

    /// <summary>The server's errors and the client's own (see <see cref="TradeRoomError"/>).</summary>
    public event Action<TradeRoomError>? Error;

    /// <summary>Every connection that ends, with its close code and what the client does next.</summary>
    public event Action<CloseInfo>? Closed;

    public ClientState State { get { lock (Sync) return _state; } }

    /// <summary>The authenticated user (from the last <c>auth_success</c>).</summary>
    public string? UserId { get { lock (Sync) return _userId; } }

    /// <summary>The server node of the current connection (<c>auth_success</c>'s <c>data.node</c>), for display and support; null while not connected.</summary>
    public string? Node { get { lock (Sync) return _node; } }

    /// <summary>The URL of the current connection, or of the attempt under way or next.</summary>
    public Uri Url { get { lock (Sync) return _urls[_urlIndex]; } }

    /// <summary>The server URLs, in the order the client tries them.</summary>
    public IReadOnlyList<Uri> Urls => _urls;

    /// <summary>
    /// Starts the client and completes on the first <c>auth_success</c>. While no server can be reached it keeps
    /// retrying (the task waits); it fails only if the client stops first: <see cref="CloseAsync"/> (code
    /// <c>closed</c>) or a fixed token the server refused (<c>invalid_token</c>, <c>token_expired</c>, with
    /// <see cref="TradeRoomClientException.CloseCode"/> 4001). Called again while connecting it returns the same wait;
    /// <paramref name="cancellationToken"/> only abandons the wait, not the client.
    /// </summary>
    public Task<AuthInfo> ConnectAsync(CancellationToken cancellationToken = default)
    {
        lock (Sync)
        {
            if (_connecting is not null)
                return _connecting.Task.WaitAsync(cancellationToken);
            if (!_stopped)
                return Task.FromResult(new AuthInfo(_userId ?? "", _node));
            _stopped = false;
            _clientClosed = false;
            _attempt = 0;
            _urlIndex = 0;
            _connecting = new TaskCompletionSource<AuthInfo>(TaskCreationOptions.RunContinuationsAsynchronously);
            _runStop = new CancellationTokenSource();
            var stop = _runStop.Token;
            _run = Task.Run(() => RunAsync(stop), CancellationToken.None);
            return _connecting.Task.WaitAsync(cancellationToken);
        }
    }

    /// <summary>
    /// Re-authenticates on the live connection (token refresh) and completes on <c>auth_success</c>; fails on
    /// <c>auth_error</c> or <c>user_mismatch</c> (<see cref="TradeRoomClientException.Code"/>). With a fixed token,
    /// <paramref name="newToken"/> also replaces it for later reconnects; with a token provider, call it without one to
    /// ask the provider. While disconnected it completes with the next connection's <c>auth_success</c>.
    /// </summary>
    public async Task<AuthInfo> RefreshTokenAsync(string? newToken = null)
    {
        var waiter = new TaskCompletionSource<AuthInfo>(TaskCreationOptions.RunContinuationsAsynchronously);
        Link? link;
        lock (Sync)
        {
            if (newToken is not null && _tokenProvider is null)
                _token = newToken;
            if (_stopped)
                throw new TradeRoomClientException(new TradeRoomError("not_connected", "the client is not running; call ConnectAsync"));
            link = _link;
            if (link is null || !link.AuthSent || link.Socket.State != WebSocketState.Open)
            {
                _refreshWaiters.Add(waiter);
                link = null;
            }
        }
        if (link is not null)
        {
            string token;
            try
            {
                token = newToken ?? await CurrentTokenAsync(link.Abandon.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (link.Abandon.IsCancellationRequested)
            {
                token = "";
            }
            catch (Exception e)
            {
                var error = new TradeRoomError("token_error", $"the token provider failed: {e.Message}") { Cause = e };
                Post(() => RaiseError(error));
                throw new TradeRoomClientException(error);
            }
            lock (Sync)
            {
                if (_link != link || token.Length == 0)
                    _refreshWaiters.Add(waiter); // the link changed meanwhile: the next one's auth answers
                else
                    SendAuth(link, token, [waiter]);
            }
        }
        return await waiter.Task.ConfigureAwait(false);
    }

    /// <summary>
    /// Follows a bull pen: a non-empty id of at most 128 UTF-16 code units with no control or format character.
    /// Returns its <see cref="Room"/> (the same one if already followed). <paramref name="setup"/> runs before the
    /// subscribe is sent: add the room's handlers there, so none misses the first <c>subscribed</c>. Works at any
    /// time; while not connected the subscribe is sent after the next <c>auth_success</c>, resuming from the room's
    /// position. A room the server refused is asked again.
    /// </summary>
    public Room Subscribe(string bullPenId, Action<Room>? setup = null)
    {
        ValidateRoomId(bullPenId);
        Room room;
        List<TaskCompletionSource>? cancelled = null;
        lock (Sync)
        {
            if (!_rooms.TryGetValue(bullPenId, out room!))
                _rooms[bullPenId] = room = new Room(this, bullPenId);
            if (!room.Wanted && room.Link != Room.LinkState.Unsubscribing)
            {
                // An unsubscribe not sent yet is cancelled by this subscribe: it is over for the old handlers.
                cancelled = room.UnsubscribeWaiters;
                room.UnsubscribeWaiters = [];
            }
            room.Wanted = true;
            room.RefusedBy = null;
        }
        cancelled?.ForEach(w => w.TrySetResult());
        setup?.Invoke(room);
        lock (Sync)
            Reconcile(room);
        return room;
    }

    /// <summary>Follows the bull pen with this integer id (the server takes <c>42</c> and <c>"42"</c> as the same room).</summary>
    public Room Subscribe(long bullPenId, Action<Room>? setup = null) =>
        Subscribe(bullPenId.ToString(CultureInfo.InvariantCulture), setup);

    /// <summary>The <see cref="Room"/> of a bull pen this client follows, or null.</summary>
    public Room? GetRoom(string bullPenId)
    {
        lock (Sync)
            return _rooms.TryGetValue(bullPenId, out var room) && room.Wanted ? room : null;
    }

    /// <summary>
    /// Closes the connection with 1000 and stops; completes once the client is <see cref="ClientState.Closed"/>.
    /// Rooms stay registered: a later <see cref="ConnectAsync"/> resubscribes them.
    /// </summary>
    public Task CloseAsync()
    {
        CancellationTokenSource? stop;
        Task run;
        lock (Sync)
        {
            run = _run;
            if (_stopped || _clientClosed)
                return run;
            _clientClosed = true;
            stop = _runStop;
        }
        stop?.Cancel();
        return run;
    }

    public async ValueTask DisposeAsync() => await CloseAsync().ConfigureAwait(false);

    // ------------------------------------------------------------------ the connection loop

    private async Task RunAsync(CancellationToken stop)
    {
        Post(() => RaiseState(ClientState.Connecting, 0, TimeSpan.Zero));
        while (true)
        {
            Link link;
            lock (Sync)
                _link = link = new Link(_urls[_urlIndex]);
            var (code, reason) = await RunLinkAsync(link, stop).ConfigureAwait(false);

            CloseInfo closed;
            var reconnect = false;
            lock (Sync)
            {
                _link = null;
                var node = _node;
                _node = null;
                // Refreshes whose auth got no answer wait for the next connection's auth.
                foreach (var request in link.AuthQueue)
                    _refreshWaiters.AddRange(request.Waiters);
                link.AuthQueue.Clear();
                foreach (var room in _rooms.Values.ToList())
                {
                    room.Link = Room.LinkState.None;
                    room.Sent = null;
                    if (!room.Wanted && room.UnsubscribeWaiters.Count == 0)
                        _rooms.Remove(room.BullPenId);
                }
                reconnect = ReconnectPolicy.ShouldReconnect(code, _clientClosed, link.LastAuthError, _tokenProvider is not null);
                closed = new CloseInfo(code, reason, reconnect, link.Url, node);
                // Every reconnect tries the next server: a node that is gone, leaving or unreachable is left behind,
                // and any node serves any room, so the resume works there as on the same one.
                if (reconnect)
                    _urlIndex = (_urlIndex + 1) % _urls.Length;
            }
            Post(() => Raise(Closed, closed));

            int attempt;
            TimeSpan delay;
            lock (Sync)
            {
                reconnect = reconnect && !_clientClosed; // a Closed handler may have closed the client
                attempt = reconnect ? ++_attempt : 0;
                delay = reconnect ? ReconnectPolicy.Delay(attempt, _backoff, _random()) : TimeSpan.Zero;
                if (reconnect)
                    _state = ClientState.Reconnecting;
            }
            if (!reconnect)
            {
                Finish(code, link.LastAuthError);
                return;
            }
            Post(() => RaiseState(ClientState.Reconnecting, attempt, delay));
            try
            {
                await Task.Delay(delay, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                Finish(code, null);
                return;
            }
        }
    }

    /// <summary>The client stops: whoever waits is told why, and the state becomes Closed.</summary>
    private void Finish(int code, string? authError)
    {
        TaskCompletionSource<AuthInfo>? connecting;
        List<TaskCompletionSource<AuthInfo>> waiters;
        List<TaskCompletionSource> unsubscribes = [];
        TradeRoomError why;
        bool clientClosed;
        lock (Sync)
        {
            _stopped = true;
            clientClosed = _clientClosed;
            why = _clientClosed
                ? new TradeRoomError("closed", "the client was closed")
                : new TradeRoomError(authError ?? "closed", $"the connection closed with {code}; not reconnecting");
            connecting = _connecting;
            _connecting = null;
            waiters = _refreshWaiters;
            _refreshWaiters = [];
            foreach (var room in _rooms.Values.ToList())
            {
                unsubscribes.AddRange(room.UnsubscribeWaiters);
                room.UnsubscribeWaiters = [];
                if (!room.Wanted)
                    _rooms.Remove(room.BullPenId);
            }
            _state = ClientState.Closed;
            _runStop = null; // not disposed: a CloseAsync racing with this stop may still cancel it
        }
        var failure = new TradeRoomClientException(why, clientClosed ? null : code);
        connecting?.TrySetException(failure);
        waiters.ForEach(w => w.TrySetException(failure));
        unsubscribes.ForEach(w => w.TrySetResult());
        Post(() => RaiseState(ClientState.Closed, 0, TimeSpan.Zero));
    }

    /// <summary>One connection, from the attempt to its end; returns its close code and reason.</summary>
    private async Task<(int Code, string Reason)> RunLinkAsync(Link link, CancellationToken stop)
    {
        var socket = link.Socket;
        using var onStop = stop.Register(() => _ = CloseByClientAsync(link));
        _ = ConnectDeadlineAsync(link);
        try
        {
            _configureWebSocket?.Invoke(socket.Options);
            try
            {
                await socket.ConnectAsync(link.Url, link.Abandon.Token).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                // Refused, unreachable, a failed TLS or upgrade, our own abort: this attempt is over.
                if (link.ClosedByClient)
                    return (CloseCodes.Normal, "client closed");
                if (link.DropCode is { } dropped)
                    return (CloseCodes.NoCloseFrame, dropped);
                var error = new TradeRoomError("transport_error", $"cannot connect to {link.Url}: {e.Message}") { Cause = e };
                Post(() => RaiseError(error));
                return (CloseCodes.NoCloseFrame, "connection failed");
            }
            if (link.ClosedByClient)
                return (CloseCodes.Normal, "client closed");

            link.SendLoop = SendLoopAsync(link);
            _ = AuthenticateAsync(link);
            return await ReceiveLoopAsync(link).ConfigureAwait(false);
        }
        finally
        {
            link.Abandon.Cancel();
            try
            {
                await link.SendLoop.ConfigureAwait(false);
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
            {
            }
            socket.Dispose();
        }
    }

    private async Task<(int Code, string Reason)> ReceiveLoopAsync(Link link)
    {
        var socket = link.Socket;
        var buffer = new byte[8 * 1024];
        try
        {
            while (true)
            {
                var length = 0;
                ValueWebSocketReceiveResult result;
                do
                {
                    if (buffer.Length - length < 1024)
                        Array.Resize(ref buffer, buffer.Length * 2);
                    result = await socket.ReceiveAsync(buffer.AsMemory(length), link.Abandon.Token).ConfigureAwait(false);
                    length += result.Count;
                }
                while (!result.EndOfMessage && result.MessageType != WebSocketMessageType.Close);

                if (result.MessageType == WebSocketMessageType.Close)
                {
                    var code = (int?)socket.CloseStatus ?? 1005;
                    var reason = socket.CloseStatusDescription ?? "";
                    // Answer the server's close (it waits for it), through the send loop that owns every write.
                    link.RequestClose();
                    try
                    {
                        await link.SendLoop.WaitAsync(CloseHandshakeTimeout).ConfigureAwait(false);
                    }
                    catch (TimeoutException)
                    {
                    }
                    return link.ClosedByClient ? (CloseCodes.Normal, "client closed") : (code, reason);
                }
                Volatile.Write(ref link.LastFrameAt, Stopwatch.GetTimestamp());
                if (result.MessageType == WebSocketMessageType.Text)
                    OnMessage(link, buffer.AsMemory(0, length));
                if (buffer.Length > 64 * 1024)
                    buffer = new byte[8 * 1024]; // a large replay frame does not pin its buffer for the link's life
            }
        }
        catch (Exception e)
        {
            // Whatever ends the receive (the server's reset, an abort of ours) ends the link.
            if (link.ClosedByClient)
                return (CloseCodes.Normal, "client closed");
            if (link.DropCode is { } dropped)
                return (CloseCodes.NoCloseFrame, dropped);
            var error = new TradeRoomError("transport_error", $"the connection failed: {e.Message}") { Cause = e };
            Post(() => RaiseError(error));
            return (CloseCodes.NoCloseFrame, "connection lost");
        }
    }

    /// <summary>The only writer of the socket: paced below the server's rate limit, and the close frame last.</summary>
    private async Task SendLoopAsync(Link link)
    {
        var tokens = (double)_burst;
        var refilledAt = Stopwatch.GetTimestamp();
        var reader = link.Outbox.Reader;
        var stop = link.SendStop.Token;
        try
        {
            while (!link.CloseRequested && await reader.WaitToReadAsync(stop).ConfigureAwait(false))
            {
                while (!link.CloseRequested && reader.TryPeek(out var message))
                {
                    var now = Stopwatch.GetTimestamp();
                    tokens = Math.Min(_burst, tokens + Stopwatch.GetElapsedTime(refilledAt, now).TotalSeconds * _perSecond);
                    refilledAt = now;
                    if (tokens < 1)
                    {
                        await Task.Delay(TimeSpan.FromSeconds((1 - tokens) / _perSecond), stop).ConfigureAwait(false);
                        continue;
                    }
                    reader.TryRead(out _);
                    tokens -= 1;
                    await link.Socket.SendAsync(message.Utf8, WebSocketMessageType.Text, true, CancellationToken.None).ConfigureAwait(false);
                    message.Written?.TrySetResult();
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e) when (e is WebSocketException or ObjectDisposedException or InvalidOperationException)
        {
            return; // the socket failed: the receive loop reports it
        }
        if (link.CloseRequested && !link.Abandon.IsCancellationRequested)
        {
            using var timeout = new CancellationTokenSource(CloseHandshakeTimeout);
            try
            {
                await link.Socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, link.ClosedByClient ? "client closed" : "",
                    timeout.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
            {
            }
        }
    }

    private async Task CloseByClientAsync(Link link)
    {
        link.ClosedByClient = true;
        if (link.Socket.State != WebSocketState.Open)
        {
            link.Abandon.Cancel();
            return;
        }
        link.RequestClose();
        try
        {
            // The server echoes the close and the receive loop ends; a server that does not is left behind.
            await Task.Delay(CloseHandshakeTimeout, link.Abandon.Token).ConfigureAwait(false);
            link.Abandon.Cancel();
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    private async Task ConnectDeadlineAsync(Link link)
    {
        try
        {
            await Task.Delay(_connectTimeout, link.Abandon.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
            return;
        }
        bool authed;
        lock (Sync)
            authed = link.Authed;
        if (!authed)
            DropLink(link, "connect_timeout", $"not connected and authenticated within {_connectTimeout.TotalMilliseconds:0} ms");
    }

    private async Task AuthenticateAsync(Link link)
    {
        string token;
        try
        {
            token = await CurrentTokenAsync(link.Abandon.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (link.Abandon.IsCancellationRequested && e is OperationCanceledException or ObjectDisposedException)
        {
            return;
        }
        catch (Exception e)
        {
            DropLink(link, "token_error", $"the token provider failed: {e.Message}", e);
            return;
        }
        lock (Sync)
        {
            if (_link != link)
                return;
            var waiters = _refreshWaiters;
            _refreshWaiters = [];
            SendAuth(link, token, waiters);
        }
    }

    private async ValueTask<string> CurrentTokenAsync(CancellationToken cancellationToken)
    {
        if (_tokenProvider is null)
        {
            lock (Sync)
                return _token!;
        }
        var token = await _tokenProvider(cancellationToken).ConfigureAwait(false);
        if (string.IsNullOrEmpty(token))
            throw new InvalidOperationException("the token provider returned no token");
        return token;
    }

    private async Task PingLoopAsync(Link link)
    {
        var stop = link.Abandon.Token;
        var wait = _pingInterval;
        try
        {
            while (true)
            {
                await Task.Delay(wait, stop).ConfigureAwait(false);
                var written = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                lock (Sync)
                {
                    if (_link != link)
                        return;
                    Send(link, ClientMessages.Ping(), written);
                }
                // Sending is paced: the deadline starts when the ping is on the wire.
                await written.Task.WaitAsync(stop).ConfigureAwait(false);
                var sentAt = Stopwatch.GetTimestamp();
                await Task.Delay(_pingTimeout, stop).ConfigureAwait(false);
                if (Volatile.Read(ref link.LastFrameAt) < sentAt)
                {
                    DropLink(link, "ping_timeout", $"no frame within {_pingTimeout.TotalMilliseconds:0} ms of a ping");
                    return;
                }
                wait = _pingInterval > _pingTimeout ? _pingInterval - _pingTimeout : TimeSpan.Zero;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    /// <summary>
    /// With a token provider, asks it for a new token before the current one expires: RefreshBeforeExpiry before its
    /// <c>exp</c>, or at half its remaining lifetime if that is sooner, so the server never closes the link with 4001.
    /// </summary>
    private void ScheduleAutoRefresh(Link link, string? token)
    {
        link.Refresh?.Cancel();
        link.Refresh = null;
        if (_tokenProvider is null || _refreshBeforeExpiry is not { } before || token is null || JwtExpiry(token) is not { } exp)
            return;
        var left = exp - DateTimeOffset.UtcNow;
        var early = before < left / 2 ? before : left / 2;
        var delay = left - early;
        if (delay < TimeSpan.Zero)
            delay = TimeSpan.Zero;
        if (delay.TotalMilliseconds > int.MaxValue)
            return; // beyond a timer's range (weeks): a reconnect before then schedules it again
        var refresh = CancellationTokenSource.CreateLinkedTokenSource(link.Abandon.Token);
        link.Refresh = refresh;
        _ = AutoRefreshAsync(delay, refresh.Token);
    }

    private async Task AutoRefreshAsync(TimeSpan delay, CancellationToken cancellationToken)
    {
        try
        {
            // Scheduled under the client's lock: the token provider must not run there, even for a zero delay.
            await Task.Yield();
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
            await RefreshTokenAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or TradeRoomClientException)
        {
            // Cancelled by a newer auth or the link's end; a refused refresh is reported on Error.
        }
    }

    /// <summary>The client gives up on a link (dead, or never authenticated): report why and abort it.</summary>
    private void DropLink(Link link, string code, string message, Exception? cause = null)
    {
        lock (Sync)
        {
            if (_link != link || link.DropCode is not null || link.ClosedByClient)
                return;
            link.DropCode = code;
        }
        var error = new TradeRoomError(code, message) { Cause = cause };
        Post(() => RaiseError(error));
        try
        {
            link.Abandon.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    // ------------------------------------------------------------------ frames (the receive loop, one at a time)

    private void OnMessage(Link link, ReadOnlyMemory<byte> utf8)
    {
        var calls = new List<Action>();
        lock (Sync)
        {
            if (_link != link)
                return;
            if (ServerFrame.Parse(utf8) is not { } frame)
            {
                var error = new TradeRoomError("invalid_frame", "the server sent a frame that is not a JSON object with a type");
                calls.Add(() => RaiseError(error));
            }
            else
            {
                switch (frame.Type)
                {
                    case "auth_success":
                        OnAuthSuccess(link, frame, calls);
                        break;
                    case "auth_error":
                        OnAuthError(link, frame, calls);
                        break;
                    case "error":
                        OnError(link, frame, calls);
                        break;
                    case "pong":
                        break;
                    case "subscribed":
                        OnSubscribed(frame, calls);
                        break;
                    case "unsubscribed":
                        OnUnsubscribed(frame);
                        break;
                    default:
                        if (frame.BullPenId is not null && frame.Seq is not null)
                            OnEvent(frame, calls);
                        break;
                }
            }
        }
        foreach (var call in calls)
            Post(call);
    }

    private void OnAuthSuccess(Link link, ServerFrame frame, List<Action> calls)
    {
        var first = !link.Authed;
        var request = link.AuthQueue.Count > 0 ? link.AuthQueue.Dequeue() : null;
        link.Authed = true;
        ScheduleAutoRefresh(link, request?.Token);
        _userId = frame.String("userId") ?? "";
        _node = frame.String("node") is { Length: > 0 } node ? node : null;
        var info = new AuthInfo(_userId, _node);
        if (first)
        {
            _attempt = 0;
            if (_pingInterval > TimeSpan.Zero)
                _ = PingLoopAsync(link);
            foreach (var room in _rooms.Values.ToList())
                Reconcile(room);
            var connecting = _connecting;
            _connecting = null;
            connecting?.TrySetResult(info);
            _state = ClientState.Connected;
            calls.Add(() => RaiseState(ClientState.Connected, 0, TimeSpan.Zero));
        }
        foreach (var waiter in request?.Waiters ?? [])
            waiter.TrySetResult(info);
        calls.Add(() => Raise(Authenticated, info));
    }

    private void OnAuthError(Link link, ServerFrame frame, List<Action> calls)
    {
        var code = frame.String("code") ?? "auth_error";
        link.LastAuthError = code;
        var error = new TradeRoomError(code, frame.String("message") ?? code) { Frame = "auth_error" };
        calls.Add(() => RaiseError(error));
        if (link.AuthQueue.Count > 0)
        {
            var failure = new TradeRoomClientException(error);
            foreach (var waiter in link.AuthQueue.Dequeue().Waiters)
                waiter.TrySetException(failure);
        }
    }

    private void OnError(Link link, ServerFrame frame, List<Action> calls)
    {
        var code = frame.String("code") ?? "unknown_error";
        var bullPenId = frame.Data.TryGetProperty("bullPenId", out var id) ? ServerFrame.RoomIdOf(id) : null;
        var error = new TradeRoomError(code, frame.String("message") ?? code) { Frame = "error", BullPenId = bullPenId };
        var room = bullPenId is not null && _rooms.TryGetValue(bullPenId, out var r) ? r : null;
        // A subscribe refused (limits, room authorization, storage), or a followed room that a refreshed token no
        // longer allows (forbidden; the server has left it, and the "unsubscribed" that follows changes nothing here).
        var refused = room is not null
            && (room.Link == Room.LinkState.Subscribing || (code == "forbidden" && room.Link == Room.LinkState.Subscribed));
        if (refused)
        {
            room!.Link = Room.LinkState.None;
            room.Sent = null;
            if (room.Wanted)
                room.RefusedBy = error;
        }
        // The room's delivery on that server stopped: the protocol says to subscribe again with sinceSeq and epoch.
        var lost = !refused && code == "room_unavailable" && room is not null && room.Link == Room.LinkState.Subscribed;
        calls.Add(() => RaiseError(error));
        if (code == "user_mismatch" && link.AuthQueue.Count > 0)
        {
            var failure = new TradeRoomClientException(error);
            foreach (var waiter in link.AuthQueue.Dequeue().Waiters)
                waiter.TrySetException(failure);
        }
        if (refused && !room!.Wanted && _rooms.TryGetValue(room.BullPenId, out var same) && same == room)
        {
            // Unsubscribed while the refused subscribe was in flight: nothing is left on the server.
            var waiters = room.UnsubscribeWaiters;
            room.UnsubscribeWaiters = [];
            waiters.ForEach(w => w.TrySetResult());
            _rooms.Remove(room.BullPenId);
        }
        if (lost)
        {
            room!.Link = Room.LinkState.None;
            Reconcile(room);
        }
    }

    private void OnSubscribed(ServerFrame frame, List<Action> calls)
    {
        var bullPenId = frame.Data.TryGetProperty("bullPenId", out var id) ? ServerFrame.RoomIdOf(id) : null;
        if (bullPenId is null || !_rooms.TryGetValue(bullPenId, out var room) || room.Link != Room.LinkState.Subscribing)
            return;
        var sent = room.Sent;
        room.Link = Room.LinkState.Subscribed;
        room.Sent = null;
        if (room.Wanted)
        {
            var seq = frame.Long("seq") ?? 0;
            // A resume asked for by handlers since removed by an unsubscribe is a fresh start for the new ones: they
            // get Recovered = false and the snapshot, and the replayed events (seq <= data.seq) are dropped as seen.
            var recovered = frame.Bool("recovered") && sent is { SinceSeq: { } } && sent.Value.Life == room.Life;
            // docs/protocol.md "Resume": position = recovered ? sinceSeq : seq; never backwards within an epoch.
            room.PositionValue = recovered ? Math.Max(room.PositionValue ?? 0, sent!.Value.SinceSeq!.Value) : seq;
            room.EpochValue = frame.String("epoch") ?? "";
            var info = new SubscribedInfo(room.BullPenId, seq, room.EpochValue, recovered, RoomSnapshot.Parse(frame.Data));
            var life = room.Life;
            foreach (var handler in room.SubscribedHandlers.ToArray())
                calls.Add(() => CallRoom(room, life, handler, info));
        }
        Reconcile(room);
    }

    private void OnUnsubscribed(ServerFrame frame)
    {
        var bullPenId = frame.Data.TryGetProperty("bullPenId", out var id) ? ServerFrame.RoomIdOf(id) : null;
        if (bullPenId is null || !_rooms.TryGetValue(bullPenId, out var room) || room.Link != Room.LinkState.Unsubscribing)
            return;
        room.Link = Room.LinkState.None;
        var waiters = room.UnsubscribeWaiters;
        room.UnsubscribeWaiters = [];
        waiters.ForEach(w => w.TrySetResult());
        Reconcile(room);
    }

    private void OnEvent(ServerFrame frame, List<Action> calls)
    {
        if (!_rooms.TryGetValue(frame.BullPenId!, out var room) || !room.Wanted || room.Link != Room.LinkState.Subscribed)
            return;
        var seq = frame.Seq!.Value;
        if (room.PositionValue is { } position && seq <= position)
            return; // already seen
        room.PositionValue = seq;
        var life = room.Life; // a callback may unsubscribe: none of the room's callbacks runs after that
        var evt = new EventFrame(frame.Type, room.BullPenId, seq, frame.Data);
        foreach (var handler in room.EventHandlers.ToArray())
            calls.Add(() => CallRoom(room, life, handler, evt));
        if (room.TypeHandlers.TryGetValue(frame.Type, out var typed))
        {
            foreach (var handler in typed.ToArray())
                calls.Add(() => CallRoom(room, life, handler, evt));
        }
    }

    // ------------------------------------------------------------------ rooms and sending (under Sync)

    /// <summary>Brings the room's subscription on the current connection to what the application wants, one request at a time.</summary>
    private void Reconcile(Room room)
    {
        var link = _link;
        if (link is null || !link.Authed)
            return;
        if (room.Link is Room.LinkState.Subscribing or Room.LinkState.Unsubscribing)
            return; // wait for the answer
        if (room.Wanted && room.Link == Room.LinkState.None)
        {
            if (room.RefusedBy is not null)
                return; // refused by the server: only a new Subscribe asks again
            var resume = room.EpochValue is not null && room.PositionValue is not null;
            room.Sent = new Room.SentSubscribe(resume ? room.PositionValue : null, room.Life);
            room.Link = Room.LinkState.Subscribing;
            Send(link, ClientMessages.Subscribe(room.BullPenId, resume ? room.PositionValue : null, resume ? room.EpochValue : null));
        }
        else if (!room.Wanted && (room.Link == Room.LinkState.Subscribed || room.UnsubscribeWaiters.Count > 0))
        {
            room.Link = Room.LinkState.Unsubscribing;
            Send(link, ClientMessages.Unsubscribe(room.BullPenId));
        }
        else if (!room.Wanted && room.Link == Room.LinkState.None)
        {
            _rooms.Remove(room.BullPenId);
        }
    }

    internal Task Unsubscribe(Room room)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (Sync)
        {
            if (!_rooms.TryGetValue(room.BullPenId, out var same) || same != room)
                return Task.CompletedTask;
            // A refused room has nothing on the server to undo (it is never resubscribed while refused).
            var refused = room.RefusedBy is not null && room.Wanted && room.Link == Room.LinkState.None;
            room.Wanted = false;
            room.Forget();
            room.UnsubscribeWaiters.Add(done);
            if (_stopped || refused)
            {
                var waiters = room.UnsubscribeWaiters;
                room.UnsubscribeWaiters = [];
                waiters.ForEach(w => w.TrySetResult());
                _rooms.Remove(room.BullPenId);
            }
            else
            {
                Reconcile(room);
            }
        }
        return done.Task;
    }

    private void SendAuth(Link link, string token, List<TaskCompletionSource<AuthInfo>> waiters)
    {
        link.AuthSent = true;
        link.AuthQueue.Enqueue(new AuthRequest(token, waiters));
        Send(link, ClientMessages.Auth(token));
    }

    private static void Send(Link link, byte[] utf8, TaskCompletionSource? written = null) =>
        link.Outbox.Writer.TryWrite(new Outgoing(utf8, written));

    // ------------------------------------------------------------------ callbacks (one at a time, never under Sync)

    private void Post(Action call)
    {
        lock (_callbackGate)
            call();
    }

    private void CallRoom<T>(Room room, int life, Action<T> handler, T value)
    {
        if (Volatile.Read(ref room.Life) != life)
            return;
        Call(handler, value);
    }

    private void Raise<T>(Action<T>? handlers, T value)
    {
        if (handlers is null)
            return;
        foreach (var handler in handlers.GetInvocationList())
            Call((Action<T>)handler, value);
    }

    private void RaiseState(ClientState state, int attempt, TimeSpan delay)
    {
        StateChange change;
        lock (Sync)
            change = new StateChange(state, attempt, delay, _urls[_urlIndex], _node);
        Raise(StateChanged, change);
    }

    private void RaiseError(TradeRoomError error)
    {
        if (Error is not { } handlers)
            return;
        foreach (var handler in handlers.GetInvocationList())
        {
            try
            {
                ((Action<TradeRoomError>)handler)(error);
            }
            catch (Exception e)
            {
                // Reporting it on Error again could loop.
                Trace.TraceError($"TradeRoomClient: an Error handler threw: {e}");
            }
        }
    }

    private void Call<T>(Action<T> handler, T value)
    {
        try
        {
            handler(value);
        }
        catch (Exception e)
        {
            RaiseError(new TradeRoomError("callback_error", $"a callback threw: {e.Message}") { Cause = e });
        }
    }

    internal void ReportPayloadError(EventFrame frame, Type type, JsonException? cause) =>
        RaiseError(new TradeRoomError("invalid_payload", $"the data of {frame.Type} seq {frame.Seq} does not read as {type.Name}: {cause?.Message ?? "null"}")
        {
            BullPenId = frame.BullPenId,
            Cause = cause,
        });

    // ------------------------------------------------------------------ helpers

    private static void ValidateRoomId(string bullPenId)
    {
        ArgumentNullException.ThrowIfNull(bullPenId);
        if (bullPenId.Length is 0 or > 128)
            throw new ArgumentException($"a bull pen id has 1 to 128 characters, got {bullPenId.Length}", nameof(bullPenId));
        for (var i = 0; i < bullPenId.Length; i++)
        {
            var c = bullPenId[i];
            var category = char.GetUnicodeCategory(c);
            var loneSurrogate = char.IsHighSurrogate(c)
                ? i + 1 >= bullPenId.Length || !char.IsLowSurrogate(bullPenId[++i])
                : char.IsLowSurrogate(c);
            if (loneSurrogate || category is UnicodeCategory.Control or UnicodeCategory.Format
                or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator)
                throw new ArgumentException("a bull pen id has no control or format character and no lone surrogate", nameof(bullPenId));
        }
    }

    /// <summary>The <c>exp</c> of a JWT, or null if it has none or cannot be read (the client does not check signatures).</summary>
    internal static DateTimeOffset? JwtExpiry(string token)
    {
        var parts = token.Split('.');
        if (parts.Length < 2)
            return null;
        try
        {
            var payload = parts[1].Replace('-', '+').Replace('_', '/');
            payload = payload.PadRight(payload.Length + (4 - payload.Length % 4) % 4, '=');
            using var document = JsonDocument.Parse(Convert.FromBase64String(payload));
            return document.RootElement.TryGetProperty("exp", out var exp) && exp.TryGetDouble(out var seconds)
                ? DateTimeOffset.FromUnixTimeMilliseconds((long)(seconds * 1000))
                : null;
        }
        catch (Exception e) when (e is FormatException or JsonException or ArgumentException or InvalidOperationException)
        {
            return null;
        }
    }

    private sealed record Outgoing(byte[] Utf8, TaskCompletionSource? Written);

    private sealed record AuthRequest(string Token, List<TaskCompletionSource<AuthInfo>> Waiters);

    /// <summary>One connection attempt and, if it opens, the connection.</summary>
    private sealed class Link
    {
        public Link(Uri url)
        {
            Url = url;
            SendStop = CancellationTokenSource.CreateLinkedTokenSource(Abandon.Token);
        }

        public Uri Url { get; }
        public ClientWebSocket Socket { get; } = new();
        public Channel<Outgoing> Outbox { get; } = Channel.CreateUnbounded<Outgoing>(new UnboundedChannelOptions { SingleReader = true });

        /// <summary>Cancelled when the link is given up (dropped, closed, ended): aborts the socket and stops its loops.</summary>
        public CancellationTokenSource Abandon { get; } = new();

        /// <summary>Stops the send loop before the close frame (and with <see cref="Abandon"/>).</summary>
        public CancellationTokenSource SendStop { get; }

        public Task SendLoop { get; set; } = Task.CompletedTask;

        // Guarded by the client's Sync.
        public bool Authed;
        public bool AuthSent;
        public readonly Queue<AuthRequest> AuthQueue = new();
        public string? LastAuthError;
        public string? DropCode;
        public CancellationTokenSource? Refresh;

        public volatile bool ClosedByClient;
        public long LastFrameAt;

        private int _closeRequested;

        public bool CloseRequested => Volatile.Read(ref _closeRequested) == 1;

        /// <summary>The send loop sends what it is sending, then the close frame, then stops.</summary>
        public void RequestClose()
        {
            if (Interlocked.Exchange(ref _closeRequested, 1) == 0)
            {
                try
                {
                    SendStop.Cancel();
                }
                catch (ObjectDisposedException)
                {
                }
            }
        }
    }
}
