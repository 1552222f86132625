using TradeRoom.Actors;

namespace TradeRoom.Server.WebSockets;

/// <summary>
/// One timer for all sockets (rather than one per socket): a few times a second it closes sockets that have sent
/// nothing, not even a pong, within the heartbeat timeout (4000) and those over their outbound budget for longer
/// than the grace period (4008).
/// </summary>
internal sealed class SocketSweeper(OpenSockets sockets, TradeRoomSettings settings) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var period = TimeSpan.FromMilliseconds(Math.Clamp(
            Math.Min(settings.HeartbeatTimeout.TotalMilliseconds, settings.SlowConsumerGrace.TotalMilliseconds) / 4, 20, 1000));
        using var timer = new PeriodicTimer(period);
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            sockets.CheckAll(Environment.TickCount64);
    }
}
