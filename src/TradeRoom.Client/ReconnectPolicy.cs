namespace TradeRoom.Client;

/// <summary>What the client does when a connection ends, and how long it waits before the next attempt.</summary>
public static class ReconnectPolicy
{
    /// <summary>
    /// True if the client reconnects after a connection closed with <paramref name="closeCode"/>. It stops only when
    /// the application closed it, or on 4001 after an <c>auth_error</c> (other than <c>too_many_connections</c>) with a
    /// fixed token, which would be refused again. Everything else (1000 from the server, 1001 shutdown, 1006 dropped
    /// link, 4000 heartbeat, 4001 authentication timeout, 4008 slow consumer, 4009 too many connections, …)
    /// reconnects and resumes: the server is restarting or moving the rooms, the link failed, or the cause passes.
    /// </summary>
    /// <param name="closeCode">The connection's close code (1006 when there was no close frame).</param>
    /// <param name="clientClosed">Whether the application closed the client.</param>
    /// <param name="authError">The code of an <c>auth_error</c> received on that connection, if any.</param>
    /// <param name="hasTokenProvider">Whether a token provider can supply a new token.</param>
    public static bool ShouldReconnect(int closeCode, bool clientClosed, string? authError, bool hasTokenProvider)
    {
        if (clientClosed)
            return false;
        return !(closeCode == CloseCodes.AuthenticationFailed && authError is not null
            && authError != ErrorCodes.TooManyConnections && !hasTokenProvider);
    }

    /// <summary>The delay before reconnect attempt <paramref name="attempt"/> (1 for the first): see <see cref="BackoffOptions"/>.</summary>
    /// <param name="attempt">The attempt, 1 for the first after a connection ended.</param>
    /// <param name="backoff">The backoff settings.</param>
    /// <param name="random">A number in [0, 1).</param>
    public static TimeSpan Delay(int attempt, BackoffOptions backoff, double random)
    {
        var cap = Math.Min(backoff.MaxDelay.TotalMilliseconds,
            backoff.InitialDelay.TotalMilliseconds * Math.Pow(backoff.Multiplier, Math.Max(0, attempt - 1)));
        var r = double.IsNaN(random) ? 0 : Math.Clamp(random, 0, 1);
        return TimeSpan.FromMilliseconds(Math.Floor(r * cap));
    }
}
