using System.Diagnostics;
using Akka;
using Akka.Actor;
using TradeRoom.Protocol;
using TradeRoom.Transport;

namespace TradeRoom.Server.Cluster;

/// <summary>
/// The order a cluster node stops in (SIGTERM, or the host stopping for any reason): first it leaves the cluster and
/// hands its shards off to the other nodes, then it closes its WebSocket connections with 1001, then the actor system
/// and the web server stop. A client closed with 1001 so reconnects to another node, whose rooms are already there.
/// </summary>
/// <remarks>
/// The whole sequence is Akka's CoordinatedShutdown: its <c>cluster-sharding-shutdown-region</c> phase hands the
/// shards off, <c>cluster-leave</c> and <c>cluster-exiting</c> leave, and the sockets close in a task of
/// <c>cluster-exiting-done</c>, once this node is out. It runs here, in <see cref="StoppingAsync"/>, before any
/// hosted service stops: the web server (a hosted service too) would otherwise stop first and wait on the open sockets.
/// The same task closes the sockets when the cluster downs this node (split brain resolver): then the actor system
/// terminates, and Akka.Hosting stops the host.
/// </remarks>
internal sealed class ClusterShutdown(ActorSystem system, ILogger<ClusterShutdown> logger) : IHostedLifecycleService
{
    /// <summary>Adds the socket-closing task to <paramref name="system"/>'s CoordinatedShutdown.</summary>
    public static void CloseSocketsAfterLeaving(ActorSystem system, OpenSockets sockets, ILogger logger)
    {
        var watch = new Stopwatch();
        var coordinated = CoordinatedShutdown.Get(system);
        coordinated.AddTask(CoordinatedShutdown.PhaseClusterLeave, "traderoom-log-leaving", () =>
        {
            watch.Start();
            logger.LogInformation("Leaving the cluster ({Reason}); {Sockets} WebSocket connections stay open until this node is out",
                coordinated.ShutdownReason?.GetType().Name ?? "unknown reason", sockets.Count);
            return Task.FromResult(Done.Instance);
        });
        coordinated.AddTask(CoordinatedShutdown.PhaseClusterExitingDone, "traderoom-close-websockets", () =>
        {
            logger.LogInformation("Out of the cluster after {LeftMs} ms (shards handed off); closing {Sockets} WebSocket connections with 1001",
                watch.ElapsedMilliseconds, sockets.Count);
            sockets.CloseAll(CloseCodes.GoingAway, "server shutting down");
            return Task.FromResult(Done.Instance);
        });
    }

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        var watch = Stopwatch.StartNew();
        try
        {
            await CoordinatedShutdown.Get(system).Run(CoordinatedShutdown.ClrExitReason.Instance).WaitAsync(cancellationToken);
            logger.LogInformation("Coordinated shutdown done in {ElapsedMs} ms", watch.ElapsedMilliseconds);
        }
        catch (OperationCanceledException)
        {
            // Akka.Hosting's own stop awaits the same run to its end (each phase has its own timeout); the host goes on meanwhile.
            logger.LogWarning("Coordinated shutdown still running after traderoom.shutdown-timeout ({ElapsedMs} ms); stopping the rest of the server meanwhile",
                watch.ElapsedMilliseconds);
        }
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
