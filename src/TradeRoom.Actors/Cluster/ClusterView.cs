using Akka.Cluster;

namespace TradeRoom.Actors.Cluster;

/// <summary>One member as <c>/api/health</c> shows it.</summary>
public sealed record ClusterMemberView(string Address, string Status, IReadOnlyList<string> Roles);

/// <summary>
/// This node's view of the cluster, read from Akka.Cluster's own snapshot of its gossip (no message to any actor):
/// this node's address and status, the members in address order, and the addresses it cannot reach now.
/// </summary>
public sealed record ClusterView(string Self, string Status, IReadOnlyList<ClusterMemberView> Members, IReadOnlyList<string> Unreachable)
{
    /// <summary>The statuses a member in the gossip can have, in the order it goes through them (a removed member is no longer in it).</summary>
    public static readonly IReadOnlyList<MemberStatus> MemberStatuses =
        [MemberStatus.Joining, MemberStatus.WeaklyUp, MemberStatus.Up, MemberStatus.Leaving, MemberStatus.Exiting, MemberStatus.Down];

    public static ClusterView Of(Akka.Cluster.Cluster cluster)
    {
        var state = cluster.State;
        return new ClusterView(
            cluster.SelfAddress.ToString(),
            StatusName(cluster.SelfMember.Status),
            state.Members.Select(m => new ClusterMemberView(m.Address.ToString(), StatusName(m.Status), m.Roles.Order(StringComparer.Ordinal).ToArray())).ToArray(),
            state.Unreachable.Select(m => m.Address.ToString()).Order(StringComparer.Ordinal).ToArray());
    }

    public static string StatusName(MemberStatus status) => status switch
    {
        MemberStatus.Joining => "joining",
        MemberStatus.WeaklyUp => "weakly_up",
        MemberStatus.Up => "up",
        MemberStatus.Leaving => "leaving",
        MemberStatus.Exiting => "exiting",
        MemberStatus.Down => "down",
        MemberStatus.Removed => "removed",
        _ => status.ToString().ToLowerInvariant(),
    };
}
