using System.Globalization;
using System.Text;
using System.Text.Json;

namespace TradeRoom.LoadTest;

/// <summary>
/// The "Cluster mode (issue 12)" section of docs/benchmarks.md from the cluster-* results of bench/run.sh: part of the
/// full page (<see cref="BenchmarkReport"/>), or on its own (<c>report-cluster</c>) replacing only that section and the
/// analysis after it, when the other scenarios' results are not at hand.
/// </summary>
internal static class ClusterReport
{
    public const string Heading = "## Cluster mode (issue 12)";
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static string? Section(string dir)
    {
        T? Load<T>(string name) where T : class
        {
            var path = Path.Combine(dir, name + ".json");
            return File.Exists(path) ? JsonSerializer.Deserialize<T>(File.ReadAllText(path), Json) : null;
        }
        string Args(string name) => File.Exists(Path.Combine(dir, name + ".args")) ? File.ReadAllText(Path.Combine(dir, name + ".args")).Trim() : "";
        string LoadAverage(string name)
        {
            var path = Path.Combine(dir, name + ".txt");
            var line = File.Exists(path) ? File.ReadLines(path).LastOrDefault(l => l.StartsWith("machine load average", StringComparison.Ordinal)) : null;
            return line is null ? "–" : line["machine load average at the end: ".Length..];
        }
        static string F(double? v, string format = "0.00") => v is { } x ? x.ToString(format, CultureInfo.InvariantCulture) : "–";
        string Cmd(string name) => $"`bash bench/run.sh {name}` (`{Args(name)}`)";

        var one = Load<LoadTestResult>("cluster-1node");
        var three = Load<LoadTestResult>("cluster-3nodes");
        var host = Load<LoadTestResult>("cluster-cross-host");
        var remote = Load<LoadTestResult>("cluster-cross-remote");
        var failover = Load<ClusterFailover.FailoverResult>("cluster-failover");
        if (one is null && three is null && host is null && remote is null && failover is null)
            return null;

        var s = new StringBuilder();
        s.AppendLine(Heading);
        s.AppendLine();
        s.AppendLine("Every node is a server process in cluster mode (`TRADEROOM_CLUSTER=on`) on **this one 2-core machine**, with the load tester");
        s.AppendLine("and PostgreSQL (the shared journal, a fresh database per scenario) on the same 2 cores: 3 nodes here compete for the");
        s.AppendLine("cores a single node has to itself, so these rows show the cost of the cluster's work per delivery and per event,");
        s.AppendLine("not the capacity of 3 machines. Per node CPU is user + system time of its process from `/proc` while publishing and");
        s.AppendLine("draining, divided by the event frames that node wrote (its `traderoom_frames_delivered_total`); cross-node events are");
        s.AppendLine("the nodes' `traderoom_cluster_events_sent_total` / `_received_total` over the same time. Load average: 1, 5, 15 min at the");
        s.AppendLine("end of the scenario.");
        s.AppendLine();
        s.AppendLine("| scenario | command | measured | load average |");
        s.AppendLine("|---|---|---|---|");
        string Fanout(LoadTestResult r)
        {
            var perNode = r.Nodes is { Count: > 0 } nodes
                ? "; per node: " + string.Join(", ", nodes.Select((n, i) => $"node {i + 1} {F(n.CpuMicrosecondsPerDelivery)} µs ({n.Connections:N0} conns, {n.FramesDelivered:N0} frames, {F(n.CpuSeconds)} s CPU)"))
                : "";
            return $"{F(r.ServerCpuMicrosecondsPerDelivery)} µs CPU per delivery, all nodes summed ({F(r.ServerCpuSecondsInPublishPhase)} s for {r.Delivered:N0} deliveries){perNode}; " +
                   $"latency p50 {F(r.LatencyMs.P50, "0.0")} ms, p99 {F(r.LatencyMs.P99, "0.0")} ms; lost {r.Lost}, dup/reordered {r.DuplicatedOrOutOfOrder}, gaps {r.Gaps}; " +
                   $"{r.EventsPublished:N0} events; cross-node events {r.ServerCrossNodeEventsSent:N0} sent, {r.ServerCrossNodeEventsReceived:N0} received";
        }
        if (one is not null)
            s.AppendLine($"| fan-out, 1 node (cluster mode, one member): {one.ConnectionsOpened:N0} connections, {one.Rooms} rooms | {Cmd("cluster-1node")} | {Fanout(one)} | {LoadAverage("cluster-1node")} |");
        if (three is not null)
            s.AppendLine($"| fan-out, 3 nodes, connections spread evenly, publishes taking turns over the nodes: {three.ConnectionsOpened:N0} connections, {three.Rooms} rooms | {Cmd("cluster-3nodes")} | {Fanout(three)} | {LoadAverage("cluster-3nodes")} |");
        if (one?.ServerCpuMicrosecondsPerDelivery is { } c1 && three?.ServerCpuMicrosecondsPerDelivery is { } c3)
            s.AppendLine($"| 3 nodes against 1 | | CPU per delivery, summed over the nodes, ×{F(c3 / c1)} ({F(c1)} → {F(c3)} µs); p99 {F(one.LatencyMs.P99, "0.0")} → {F(three.LatencyMs.P99, "0.0")} ms | |");

        string Cross(LoadTestResult r)
        {
            var events = Math.Max(1, r.EventsPublished);
            var perNode = r.Nodes is { Count: > 0 } nodes
                ? string.Join(", ", nodes.Select((n, i) => $"node {i + 1} {F(n.CpuSeconds * 1e6 / events, "0")} µs ({n.Connections:N0} conns)"))
                : "–";
            return $"latency p50 {F(r.LatencyMs.P50, "0.0")} ms, p99 {F(r.LatencyMs.P99, "0.0")} ms; CPU per event (all its deliveries) {F(r.ServerCpuSecondsInPublishPhase * 1e6 / events, "0")} µs summed: {perNode}; " +
                   $"{F(r.ServerCpuMicrosecondsPerDelivery)} µs per delivery; {r.EventsPublished:N0} events, {r.Delivered:N0} deliveries, lost {r.Lost}, dup/reordered {r.DuplicatedOrOutOfOrder}; " +
                   $"cross-node events {r.ServerCrossNodeEventsSent:N0} sent, {r.ServerCrossNodeEventsReceived:N0} received";
        }
        if (host is not null)
            s.AppendLine($"| cross-node event, baseline: 2 nodes, each room's subscribers on the room's own node | {Cmd("cluster-cross-host")} | {Cross(host)} | {LoadAverage("cluster-cross-host")} |");
        if (remote is not null)
            s.AppendLine($"| cross-node event: 2 nodes, each room's subscribers all on the other node | {Cmd("cluster-cross-remote")} | {Cross(remote)} | {LoadAverage("cluster-cross-remote")} |");
        if (host is not null && remote is not null)
        {
            var perEventHost = host.ServerCpuSecondsInPublishPhase * 1e6 / Math.Max(1, host.EventsPublished);
            var perEventRemote = remote.ServerCpuSecondsInPublishPhase * 1e6 / Math.Max(1, remote.EventsPublished);
            s.AppendLine($"| the cost of crossing nodes: remote minus host | | latency p50 {F(remote.LatencyMs.P50 - host.LatencyMs.P50, "+0.0;-0.0")} ms, " +
                         $"p99 {F(remote.LatencyMs.P99 - host.LatencyMs.P99, "+0.0;-0.0")} ms; CPU per event {F(perEventRemote - perEventHost, "+0;-0")} µs summed over both nodes " +
                         $"({F(perEventHost, "0")} → {F(perEventRemote, "0")} µs) | |");
        }
        if (failover is not null)
        {
            var rooms = string.Join(", ", failover.PerRoom.Where(r => r.Affected).Select(r => $"{r.Room} {F(r.BackAfterMs / 1000)} s"));
            s.AppendLine($"| failover: 3 nodes, {failover.Rooms} rooms, publishing through the 2 survivors every {failover.IntervalMs} ms per room, `kill -9` of the node hosting the most rooms | " +
                         $"{Cmd("cluster-failover")} | **{F(failover.FailoverMs / 1000)} s** from the kill until the last of its {failover.VictimRooms} rooms accepted (202) a request sent after the kill " +
                         $"(median room {F(failover.FailoverMedianMs / 1000)} s; {rooms}); the other rooms' longest wait for a 202: {F(failover.UnaffectedLongestWaitMs / 1000)} s; " +
                         $"{failover.Accepted:N0} accepted, {failover.Refused:N0} refused ({string.Join(", ", failover.RefusalReasons.Select(x => $"{x.Value} × {x.Key}"))}), " +
                         $"{failover.Failed} unanswered; seqs handed out twice: {failover.DuplicateSeqs} | {LoadAverage("cluster-failover")} |");
        }
        foreach (var (name, count) in new[] { ("cluster-idle-1node", 1), ("cluster-idle-3nodes", 3) })
        {
            var path = Path.Combine(dir, name + ".txt");
            if (!File.Exists(path))
                continue;
            var nodes = File.ReadLines(path).Where(l => l.StartsWith("node ", StringComparison.Ordinal)).ToArray();
            s.AppendLine($"| idle: {count} node(s) up, no client, no publish: each node's own CPU (gossip, heartbeats, timers), to set beside the rows above | " +
                         $"`bash bench/run.sh cluster-idle` (`{Args(name)}`) | {string.Join("; ", nodes)} | {LoadAverage(name)} |");
        }
        s.AppendLine();
        foreach (var name in new[] { "cluster-1node", "cluster-3nodes", "cluster-cross-host", "cluster-cross-remote", "cluster-failover" })
        {
            var path = Path.Combine(dir, name + ".txt");
            if (!File.Exists(path))
                continue;
            s.AppendLine($"### {name}: `{Args(name)}` (run {File.GetLastWriteTimeUtc(path):yyyy-MM-dd HH:mm} UTC)");
            s.AppendLine();
            s.AppendLine("```");
            s.AppendLine(File.ReadAllText(path).TrimEnd());
            s.AppendLine("```");
            s.AppendLine();
        }
        return s.ToString();
    }

    /// <summary>Replaces (or adds, before "## Every run in full") the cluster section of the page, and its analysis tail with bench/analysis.md.</summary>
    public static async Task WriteSectionAsync(string dir, string page)
    {
        var section = Section(dir) ?? throw new LoadTestException($"no cluster-* results in {dir}");
        var lines = (await File.ReadAllTextAsync(page)).Split('\n').ToList();
        var start = lines.IndexOf(Heading);
        if (start >= 0)
        {
            var end = lines.FindIndex(start + 1, l => l.StartsWith("## ", StringComparison.Ordinal));
            lines.RemoveRange(start, (end < 0 ? lines.Count : end) - start);
        }
        var at = lines.IndexOf("## Every run in full");
        if (at < 0)
            at = lines.Count;
        lines.Insert(at, section.TrimEnd('\n', '\r') + "\n");
        var text = string.Join('\n', lines);
        var analysis = Path.Combine("bench", "analysis.md");
        if (File.Exists(analysis))
        {
            var tail = (await File.ReadAllTextAsync(analysis)).TrimEnd();
            var first = tail.Split('\n')[0];
            var from = text.IndexOf("\n" + first + "\n", StringComparison.Ordinal);
            text = (from >= 0 ? text[..(from + 1)] : text.TrimEnd() + "\n\n") + tail + "\n";
        }
        await File.WriteAllTextAsync(page, text);
    }
}
