namespace TradeRoom.Server.WebSockets;

/// <summary>
/// How far behind the whole server runs, for the rate limiter: Kestrel gives no time of arrival for the bytes a client
/// sent, so the limiter cannot tell a client that sent a burst from one whose steady messages waited while the server
/// was not running (CPU saturated, a GC pause, thread-pool starvation, a stopped process). A timer asks to run every
/// <see cref="PeriodMs"/>; its callback goes through the same thread pool as socket reads, so it runs late by about
/// as long as a message waits between arriving and being read.
/// The lag is the largest lateness of the last <see cref="WindowTicks"/> ticks (5 s on time, longer when late, so it
/// still counts while the backlog of a stall is read), or how overdue the next tick already is, whichever is larger:
/// a stall shows at once, before the late tick has run.
/// One per server; <see cref="LagMs"/> is two volatile reads, cheap enough for every message.
/// </summary>
internal sealed class ServerLag : IDisposable
{
    public const long PeriodMs = 100;
    private const int WindowTicks = 50;

    private readonly long[] _lateness = new long[WindowTicks];
    private int _next;
    private long _lastTickMs;
    private long _recentMaxMs;
    private Timer? _timer;

    /// <summary>A monitor that ticks only when told (<see cref="Tick"/>): tests drive it with their own clock.</summary>
    public ServerLag(long nowMs) => _lastTickMs = nowMs;

    /// <summary>A monitor ticking on <see cref="Environment.TickCount64"/>, the clock the rate limiter reads.</summary>
    public static ServerLag Start()
    {
        var lag = new ServerLag(Environment.TickCount64);
        // One-shot and re-armed after each tick, so a late tick is measured from the one before it and late ticks never
        // pile up. Armed only once stored: a first tick that found no timer to re-arm would stop the clock for good.
        lag._timer = new Timer(static state => ((ServerLag)state!).OnTimer(), lag, Timeout.Infinite, Timeout.Infinite);
        lag._timer.Change(PeriodMs, Timeout.Infinite);
        return lag;
    }

    private void OnTimer()
    {
        Tick(Environment.TickCount64);
        try
        {
            _timer?.Change(PeriodMs, Timeout.Infinite);
        }
        catch (ObjectDisposedException)
        {
            // the server is stopping
        }
    }

    /// <summary>The tick asked for <see cref="PeriodMs"/> after the last one runs now. Never called concurrently.</summary>
    public void Tick(long nowMs)
    {
        _lateness[_next] = Math.Max(0, nowMs - _lastTickMs - PeriodMs);
        _next = (_next + 1) % WindowTicks;
        var max = 0L;
        foreach (var lateness in _lateness)
            max = Math.Max(max, lateness);
        // The maximum first: a reader that sees this tick's time (which ends the overdue term) also sees its lateness.
        Volatile.Write(ref _recentMaxMs, max);
        Volatile.Write(ref _lastTickMs, nowMs);
    }

    /// <summary>How late the server runs at <paramref name="nowMs"/>, in milliseconds (0 when on time).</summary>
    public long LagMs(long nowMs)
    {
        var overdue = nowMs - Volatile.Read(ref _lastTickMs) - PeriodMs;
        return Math.Max(Volatile.Read(ref _recentMaxMs), overdue);
    }

    public void Dispose() => _timer?.Dispose();
}
