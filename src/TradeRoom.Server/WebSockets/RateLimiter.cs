namespace TradeRoom.Server.WebSockets;

/// <summary>
/// A connection's inbound rate: a token bucket (<c>perSecond</c> on average, <c>burst</c> at once) that also tells a
/// client still flooding after being refused: more than <c>floodLimit</c> refused within one second. Shared by the
/// receive loop (one take per message) and the stream (one per control frame); both run in the one receive flow,
/// never at once.
/// </summary>
internal sealed class RateLimiter(int perSecond, int burst, int floodLimit)
{
    private double _tokens = burst;
    private long _lastMs = Environment.TickCount64;
    private long _refusedSinceMs;
    private int _refused;

    public bool Flooding => _refused > floodLimit;

    public bool TryTake(long nowMs)
    {
        _tokens = Math.Min(burst, _tokens + (nowMs - _lastMs) * perSecond / 1000.0);
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
