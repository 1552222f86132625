using System.Diagnostics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace TradeRoom.Transport;

/// <summary>
/// One timer for all sockets (rather than one per socket): a few times a second (and at least once per ping-interval) it
/// closes sockets that have sent nothing, not even a pong, within the heartbeat timeout (4000) and those over their
/// outbound budget for longer than the grace period (4008), pings each socket every ping-interval, and makes the
/// calls sockets were asked for (<see cref="ClientSocket.CallAt"/>: a connection's token expiry). After a wave of
/// closes it gives the freed memory back to the OS (see <see cref="CollectAfterWaveOfCloses"/>).
/// </summary>
public sealed class SocketSweeper(OpenSockets sockets, TransportOptions options, ILogger<SocketSweeper> log)
    : BackgroundService
{
    private long _releasedAtLastTick;
    private long _lastReleaseMs;
    private long _releasedAtCollection;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var period = TimeSpan.FromMilliseconds(Math.Clamp(Math.Min(options.PingInterval.TotalMilliseconds,
            Math.Min(options.HeartbeatTimeout.TotalMilliseconds, options.SlowConsumerGrace.TotalMilliseconds) / 4), 20, 1000));
        using var timer = new PeriodicTimer(period);
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            sockets.CheckAll(Environment.TickCount64);
            CollectAfterWaveOfCloses(Environment.TickCount64);
        }
    }

    /// <summary>
    /// The GC neither runs nor gives memory back while the server is idle, so what a wave of freed connections held
    /// (their buffers, up to about 1 MiB of unread input each, their objects, the GC's room for them) would stay
    /// resident. A wave of closes: since the last collection, at least <c>gc-after-closes</c>
    /// connections were released, more than are still held (so what they held is a large share of the heap), and none
    /// for a close-timeout (the wave is over: a closing socket is freed within close-timeout). It gets one full,
    /// compacting collection that returns the free memory to the OS: a pause paid once per wave. A busy server's
    /// ordinary churn needs as many closes as it holds connections between two such pauses.
    /// </summary>
    private void CollectAfterWaveOfCloses(long nowMs)
    {
        var released = sockets.Released;
        if (released != _releasedAtLastTick)
            (_releasedAtLastTick, _lastReleaseMs) = (released, nowMs);
        var quiet = nowMs - _lastReleaseMs >= (long)options.CloseTimeout.TotalMilliseconds;
        var freed = released - _releasedAtCollection;
        var held = sockets.Held;
        if (options.GcAfterCloses == 0 || !quiet || freed < Math.Max(options.GcAfterCloses, held))
            return;

        _releasedAtCollection = released;
        var before = Environment.WorkingSet;
        var started = Stopwatch.GetTimestamp();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        log.LogInformation(
            "{Freed} connections freed, {Held} held: full collection in {Milliseconds:0} ms, resident memory {BeforeMiB} -> {AfterMiB} MiB",
            freed, held, Stopwatch.GetElapsedTime(started).TotalMilliseconds, before >> 20, Environment.WorkingSet >> 20);
    }
}
