using TradeRoom.Actors.Integration;
using TradeRoom.Contracts;

namespace TradeRoom.Server.Demo;

/// <summary>
/// Runs the demo trade room: every tick it publishes one step of <see cref="DemoMarket"/> to the demo bull pen
/// through <see cref="TradeRoomIntegration"/>, the same path (validation, rooms, fan-out) as a real trade service.
/// Registered only when <c>traderoom.demo.enabled</c> is on.
/// </summary>
internal sealed class DemoFeed(DemoSettings settings, IServiceProvider services, IHostApplicationLifetime lifetime,
    ILogger<DemoFeed> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!await StartedAsync(stoppingToken))
            return;
        // Resolved only now: the facade needs the integration actor, which exists once the actor system has started.
        var integration = services.GetRequiredService<TradeRoomIntegration>();
        logger.LogInformation("Demo trade room: publishing to bull pen \"{BullPenId}\" every {TickInterval} ({Traders} traders, rounds of {RoundLength})",
            settings.BullPenId, settings.TickInterval, settings.Traders, settings.RoundLength);

        var market = new DemoMarket(settings.Traders, settings.RoundTicks, settings.TickInterval);
        using var timer = new PeriodicTimer(settings.TickInterval);
        var lastRejection = "";
        try
        {
            do
            {
                var batch = market.Tick(DateTimeOffset.UtcNow)
                    .Select(e => new PublishEvent(settings.BullPenId, e.Type, TradeRoomIntegration.ToJson(e.Data)))
                    .ToList();
                if (batch.Count == 0)
                    continue;
                var result = await integration.PublishBatchAsync(batch, stoppingToken);
                // A rejection (e.g. a timeout while the server is busy) is logged once until it changes; the next tick tries again.
                var rejection = result.Rejection is { } r ? $"{r.Code}: {r.Message}" : "";
                if (rejection.Length > 0 && rejection != lastRejection)
                    logger.LogWarning("Demo trade room: a step was not published ({Rejection})", rejection);
                lastRejection = rejection;
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Waits until the host has started (the actor system is up); false if it is stopping instead.</summary>
    private async Task<bool> StartedAsync(CancellationToken stoppingToken)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var onStarted = lifetime.ApplicationStarted.Register(() => started.TrySetResult());
        using var onStopping = stoppingToken.Register(() => started.TrySetCanceled(stoppingToken));
        try
        {
            await started.Task;
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
