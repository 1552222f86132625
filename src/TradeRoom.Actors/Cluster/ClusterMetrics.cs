using Akka.Cluster;
using Prometheus;

namespace TradeRoom.Actors.Cluster;

/// <summary>
/// The cluster gauges on <c>/metrics</c> (cluster mode only): members by status and members this node cannot reach,
/// as this node sees them. Read from Akka.Cluster's snapshot at each scrape, so nothing counts between scrapes.
/// </summary>
public static class ClusterMetrics
{
    public static void Register(CollectorRegistry registry, Akka.Cluster.Cluster cluster)
    {
        var factory = Prometheus.Metrics.WithCustomRegistry(registry);
        var members = factory.CreateGauge("traderoom_cluster_members", "Cluster members as this node sees them, by status.", ["status"]);
        var byStatus = ClusterView.MemberStatuses.ToDictionary(s => s, s => members.WithLabels(ClusterView.StatusName(s)));
        var unreachable = factory.CreateGauge("traderoom_cluster_unreachable_members", "Cluster members this node's failure detector finds unreachable.");
        registry.AddBeforeCollectCallback(() =>
        {
            var state = cluster.State;
            foreach (var (status, gauge) in byStatus)
                gauge.Set(state.Members.Count(m => m.Status == status));
            unreachable.Set(state.Unreachable.Count);
        });
    }
}
