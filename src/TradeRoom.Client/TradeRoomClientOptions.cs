using System.Net.WebSockets;

namespace TradeRoom.Client;

/// <summary>
/// The settings of a <see cref="TradeRoomClient"/>. Give the server URLs and either <see cref="Token"/> or
/// <see cref="TokenProvider"/>; every other setting has a default that suits the server's own defaults.
/// </summary>
public sealed class TradeRoomClientOptions
{
    /// <summary>
    /// The server's WebSocket URLs (<c>ws://host:4001/ws</c>, or <c>wss://</c> against a server with a certificate),
    /// e.g. one per node of a cluster. Required, at least one. The first connect tries the first; every reconnect
    /// moves to the next, round the list. Any node serves any room, so a resume on the next node works as on the same one.
    /// </summary>
    public IList<Uri> Urls { get; init; } = [];

    /// <summary>
    /// A fixed JWT. If the server refuses it (<c>auth_error</c> then close 4001) the client stops: the same token
    /// would fail again. Give this or <see cref="TokenProvider"/>, not both.
    /// </summary>
    public string? Token { get; set; }

    /// <summary>
    /// Asked for a JWT on every (re)connect and for every refresh. With a provider a refused token is not the end:
    /// the client reconnects (with backoff) and asks again, and it refreshes the token before it expires (see
    /// <see cref="RefreshBeforeExpiry"/>). The token is cancelled when the link it is for is abandoned.
    /// </summary>
    public Func<CancellationToken, ValueTask<string>>? TokenProvider { get; set; }

    /// <summary>
    /// Time between application-level <c>ping</c>s while connected (default 15 s; <see cref="TimeSpan.Zero"/>: no
    /// ping). With <see cref="PingTimeout"/> it notices a dead link that TCP would not report for minutes.
    /// </summary>
    public TimeSpan PingInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>No frame at all within this time after a ping (default 10 s): the link is dead; it is dropped and the client reconnects.</summary>
    public TimeSpan PingTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Time a connection has from the start of the attempt to <c>auth_success</c> (default 10 s), else it is dropped and retried.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// With a <see cref="TokenProvider"/>: ask for a fresh token and send it this long before the current token's
    /// <c>exp</c>, or at half its remaining lifetime if that is sooner (default 30 s; null: never), so the server never
    /// closes the connection for expiry. The protocol allows a new <c>auth</c> for the same user at any time.
    /// </summary>
    public TimeSpan? RefreshBeforeExpiry { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The reconnect backoff (see <see cref="BackoffOptions"/>).</summary>
    public BackoffOptions Reconnect { get; set; } = new();

    /// <summary>
    /// The pace of outgoing messages: at most <see cref="RateLimitOptions.PerSecond"/> after a burst of
    /// <see cref="RateLimitOptions.Burst"/> (defaults 15 and 40), below the server's default limit (20 a second,
    /// bursts of 50), so that resubscribing many rooms after a reconnect is never <c>rate_limited</c>. A server
    /// configured lower needs lower values.
    /// </summary>
    public RateLimitOptions RateLimit { get; set; } = new();

    /// <summary>The random source of the backoff jitter, a number in [0, 1) (default <see cref="System.Random.Shared"/>; tests inject their own).</summary>
    public Func<double>? Random { get; set; }

    /// <summary>Changes to each <see cref="ClientWebSocket"/>'s options before it connects, e.g. a certificate check for <c>wss://</c> or a proxy.</summary>
    public Action<ClientWebSocketOptions>? ConfigureWebSocket { get; set; }
}

/// <summary>
/// Exponential backoff with full jitter: reconnect attempt n (1, 2, …) waits
/// <c>random() × min(MaxDelay, InitialDelay × Multiplier^(n-1))</c>. The attempt count restarts at every
/// <c>auth_success</c>, so a client that was connected for a while retries fast first.
/// </summary>
public sealed class BackoffOptions
{
    /// <summary>The cap of the first attempt's delay (default 500 ms).</summary>
    public TimeSpan InitialDelay { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>The largest cap (default 15 s).</summary>
    public TimeSpan MaxDelay { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How much the cap grows per attempt (default 2).</summary>
    public double Multiplier { get; set; } = 2;
}

/// <summary>The pace of outgoing messages (a token bucket).</summary>
public sealed class RateLimitOptions
{
    /// <summary>Messages a second once the burst is spent (default 15).</summary>
    public double PerSecond { get; set; } = 15;

    /// <summary>Messages that may go at once (default 40).</summary>
    public int Burst { get; set; } = 40;
}
