namespace TradeRoom.Server.WebSockets;

/// <summary>
/// A connection's inbound rate: a token bucket (<c>perSecond</c> on average, <c>burst</c> at once) that also tells a
/// client still flooding after being refused: more than <c>floodLimit</c> refused within one second. Shared by the
/// receive loop (one take per message) and the stream (one per control frame); both run in the one receive flow,
/// never at once.
/// Messages are counted when the server reads them, not when they arrived. So while the server runs late
/// (<see cref="ServerLag"/>) the bucket may hold up to <c>burst + perSecond × lag</c> (the lag counted up to
/// <c>maxLagCreditMs</c>): the tokens a client earned while the server was not reading are kept, and the messages
/// that queued meanwhile are not refused. The credit only keeps what time already gave, so over any interval a client
/// still gets at most <c>burst + perSecond × (maxLagCredit + interval)</c>; on a server that keeps up it is the plain bucket.
/// </summary>
internal sealed class RateLimiter(int perSecond, int burst, int floodLimit, ServerLag lag, long maxLagCreditMs, long nowMs)
{
    private double _tokens = burst;
    private long _lastMs = nowMs;
    private long _refusedSinceMs;
    private int _refused;

    public bool Flooding => _refused > floodLimit;

    public bool TryTake(long nowMs)
    {
        var tokens = _tokens + (nowMs - _lastMs) * perSecond / 1000.0;
        if (tokens > burst)
            tokens = Math.Min(tokens, burst + Math.Min(lag.LagMs(nowMs), maxLagCreditMs) * perSecond / 1000.0);
        _tokens = tokens;
        _lastMs = nowMs;
        if (_tokens >= 1)
        {
            _tokens -= 1;
            return true;
        }
        if (nowMs - _refusedSinceMs > 1000)
            (_refusedSinceMs, _refused) = (nowMs, 0);
        _refused++;
        return false;
    }
}
