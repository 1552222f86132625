namespace TradeRoom.Transport;

/// <summary>
/// What the WebSocket transport enforces, from <c>traderoom.websocket</c> (hocon/traderoom.conf holds every default,
/// README.md's "Settings" table documents each key). The server fills it from its HOCON; nothing here has a default.
/// </summary>
public sealed record TransportOptions
{
    /// <summary><c>max-handshake-size</c>: the upgrade request head, at most (431 over it).</summary>
    public required int MaxHandshakeSize { get; init; }

    /// <summary><c>handshake-timeout</c>: the upgrade request (and a TLS handshake) must arrive within it.</summary>
    public required TimeSpan HandshakeTimeout { get; init; }

    /// <summary><c>allowed-origins</c>: the Origin headers accepted (<c>*</c>: any); a request without Origin is always accepted.</summary>
    public required IReadOnlyList<string> AllowedOrigins { get; init; }

    /// <summary><c>close-timeout</c>: once a close is asked, the connection ends within it, whatever the client does.</summary>
    public required TimeSpan CloseTimeout { get; init; }

    /// <summary><c>ping-interval</c>: the server pings every socket this often.</summary>
    public required TimeSpan PingInterval { get; init; }

    /// <summary><c>heartbeat-timeout</c>: a socket that sent nothing for this long (not even a pong) is closed with 4000.</summary>
    public required TimeSpan HeartbeatTimeout { get; init; }

    /// <summary><c>outbound-queue-limit</c>: the byte budget of one socket's queue (frames not yet written to the kernel).</summary>
    public required long OutboundQueueLimit { get; init; }

    /// <summary><c>slow-consumer-grace</c>: over the budget for longer than this closes the socket with 4008.</summary>
    public required TimeSpan SlowConsumerGrace { get; init; }

    /// <summary><c>slow-consumer-hard-limit</c>: over this at any moment closes the socket with 4008 at once.</summary>
    public required long SlowConsumerHardLimit { get; init; }

    /// <summary><c>slow-consumer-linger</c>: how long the kernel keeps a slow consumer's last frames and close for it.</summary>
    public required TimeSpan SlowConsumerLinger { get; init; }

    /// <summary><c>conflated-event-types</c>: state events of which only the newest per room waits while a socket is behind.</summary>
    public required IReadOnlySet<string> ConflatedEventTypes { get; init; }

    /// <summary><c>write-buffer-size</c>: frames gathered into one socket write, at most, before a flush is forced.</summary>
    public required int WriteBufferSize { get; init; }

    /// <summary><c>gc-after-closes</c>: how many freed connections, at least, make a wave of closes that earns a full collection (0: never).</summary>
    public required int GcAfterCloses { get; init; }
}
