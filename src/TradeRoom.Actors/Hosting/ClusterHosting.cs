using System.Globalization;
using Akka.Cluster.Hosting;
using Akka.Cluster.Hosting.SBR;
using Akka.Hosting;
using Akka.Remote.Hosting;
using TradeRoom.Actors.Cluster;
using TradeRoom.Actors.Monitoring;

namespace TradeRoom.Actors.Hosting;

public static class ClusterHosting
{
    /// <summary>
    /// Cluster mode: remoting on <c>hostname:port</c>, Akka.Cluster joining through the seeds, every node with the
    /// <see cref="ClusterSettings.ServerRole"/> role, and the split brain resolver on with keep-majority. Call it only
    /// when <see cref="ClusterSettings.Enabled"/>: without it the actor system stays local (no remoting at all).
    /// </summary>
    /// <remarks>
    /// Keep-majority, not lease-majority: a lease needs infrastructure this server does not have (a Kubernetes API or
    /// another lock service), and keep-majority needs nothing but the members. On a partition the side with more
    /// nodes downs the other; on an even split (2 and 2, or a 2-node cluster losing its peer) the side holding the
    /// node with the lowest address stays and the other downs itself, so a 2-node cluster survives only the loss of
    /// its higher-addressed node. Run an odd number of nodes.
    /// </remarks>
    /// <param name="metrics">Where the cluster gauges go (<see cref="ClusterMetrics"/>); none when null.</param>
    public static AkkaConfigurationBuilder AddTradeRoomCluster(this AkkaConfigurationBuilder builder, ClusterSettings cluster,
        TradeRoomMetrics? metrics = null)
    {
        if (!cluster.Enabled)
            throw new ArgumentException("cluster mode is off (traderoom.cluster.enabled); do not add the cluster", nameof(cluster));
        builder
            .WithRemoting(cluster.Hostname, cluster.Port)
            .WithClustering(new ClusterOptions
            {
                Roles = [ClusterSettings.ServerRole],
                SeedNodes = [.. cluster.Seeds],
                SplitBrainResolver = new KeepMajorityOption(),
            });
        if (metrics is not null)
        {
            metrics.AddClusterCounters();
            builder.WithActors((system, _) => ClusterMetrics.Register(metrics.Registry, Akka.Cluster.Cluster.Get(system)));
        }
        // After WithClustering, and prepended: these win over what it and Akka's reference config set.
        return builder.AddHocon(
            $"""
            akka.cluster.failure-detector.heartbeat-interval = {Millis(cluster.HeartbeatInterval)}
            akka.cluster.failure-detector.acceptable-heartbeat-pause = {Millis(cluster.AcceptableHeartbeatPause)}
            akka.cluster.split-brain-resolver.stable-after = {Millis(cluster.StableAfter)}
            """, HoconAddMode.Prepend);
    }

    private static string Millis(TimeSpan span) => ((long)span.TotalMilliseconds).ToString(CultureInfo.InvariantCulture) + "ms";
}
