using Akka.Actor;
using Akka.Configuration;

namespace TradeRoom.Actors.Cluster;

/// <summary>
/// Cluster mode: <c>traderoom.cluster</c> in the HOCON. With <see cref="Enabled"/> off the server is one process
/// (no remoting); on, <see cref="Hosting.ClusterHosting.AddTradeRoomCluster"/> joins it to the other server nodes.
/// </summary>
/// <param name="Hostname">Remoting binds to it, and it is the host in this node's address: peers must reach it there.</param>
/// <param name="Seeds">The seed nodes' addresses (<c>akka.tcp://traderoom@host:port</c>), in the order they are tried.</param>
/// <param name="HeartbeatInterval">How often the cluster's failure detector heartbeats each monitored node.</param>
/// <param name="AcceptableHeartbeatPause">Heartbeats missing for about this long make a node unreachable.</param>
/// <param name="StableAfter">The split brain resolver downs the unreachable side once membership and reachability stayed unchanged this long.</param>
public sealed record ClusterSettings(
    bool Enabled,
    string Hostname,
    int Port,
    IReadOnlyList<string> Seeds,
    TimeSpan HeartbeatInterval,
    TimeSpan AcceptableHeartbeatPause,
    TimeSpan StableAfter)
{
    /// <summary>The actor system's name: part of every node's address, so the seeds must name it.</summary>
    public const string SystemName = "traderoom";

    /// <summary>The role every server node has; rooms' shards live on the nodes with it.</summary>
    public const string ServerRole = "traderoom";

    /// <summary>This node's address as its peers and its seeds list write it.</summary>
    public string SelfAddress => $"akka.tcp://{SystemName}@{Hostname}:{Port}";

    /// <param name="traderoom">The <c>traderoom</c> section.</param>
    public static ClusterSettings FromConfig(Config traderoom)
    {
        var c = traderoom.GetConfig("cluster") ?? throw new ConfigurationException("the HOCON has no traderoom.cluster section");
        var settings = new ClusterSettings(
            c.GetBoolean("enabled"),
            c.GetString("hostname") ?? "",
            c.GetInt("port"),
            c.GetStringList("seeds").ToArray(),
            c.GetTimeSpan("heartbeat-interval"),
            c.GetTimeSpan("acceptable-heartbeat-pause"),
            c.GetTimeSpan("stable-after"));
        if (settings.Enabled)
            settings.Validate();
        return settings;
    }

    /// <summary>Settings the cluster could not run with are refused at start, naming the key and the fix.</summary>
    private void Validate()
    {
        if (string.IsNullOrWhiteSpace(Hostname))
            throw new ConfigurationException("traderoom.cluster.hostname is empty; set CLUSTER_HOSTNAME to the address other nodes reach this one at");
        if (Port is < 1 or > 65535)
            throw new ConfigurationException($"traderoom.cluster.port is {Port}; set CLUSTER_PORT to a port from 1 to 65535");
        if (Seeds.Count == 0)
            throw new ConfigurationException(
                $"traderoom.cluster.seeds is empty; set CLUSTER_SEEDS to the seed nodes' addresses, e.g. {SelfAddress} for a node that starts the cluster");
        foreach (var seed in Seeds)
        {
            if (!Address.TryParse(seed, out var address) || address.Protocol != "akka.tcp" || address.System != SystemName
                || address.Host is null || address.Port is null)
                throw new ConfigurationException(
                    $"traderoom.cluster.seeds has \"{seed}\", which is not a node address; write akka.tcp://{SystemName}@host:port");
        }
    }
}
