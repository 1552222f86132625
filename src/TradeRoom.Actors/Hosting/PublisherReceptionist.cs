using Akka.Cluster.Hosting;
using Akka.Cluster.Tools.Client;
using Akka.Hosting;
using TradeRoom.Actors.Cluster;
using TradeRoom.Actors.Integration;

namespace TradeRoom.Actors.Hosting;

public static class PublisherReceptionist
{
    /// <summary>
    /// Cluster mode: lets trade services in other processes reach this node's <see cref="IntegrationActor"/> through
    /// Akka's <c>ClusterClient</c> (TradeRoom.Contracts.Client's <c>TradeRoomPublisher</c>). The receptionist runs at
    /// <c>/system/receptionist</c> on every server node, and the integration actor is registered with it under its path,
    /// <c>/user/integration</c>. Call it after <see cref="TradeRoomActorsExtensions.AddTradeRoomActors"/>.
    /// </summary>
    /// <remarks>
    /// Publishers are clients, not members: a publisher that joined the cluster (with a role of its own) would count in
    /// the split brain resolver's majority, be heartbeated by every node, and its crash would make the cluster wait
    /// for it to be downed; a ClusterClient does none of that, and any number of them scale with the cluster unaware.
    /// </remarks>
    public static AkkaConfigurationBuilder AddTradeRoomPublisherReceptionist(this AkkaConfigurationBuilder builder) =>
        builder
            .WithClusterClientReceptionist(role: ClusterSettings.ServerRole)
            .WithActors((system, registry) => ClusterClientReceptionist.Get(system).RegisterService(registry.Get<IntegrationActor>()));
}
