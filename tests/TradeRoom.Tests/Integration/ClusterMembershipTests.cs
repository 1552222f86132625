using System.Diagnostics;
using System.Net;
using TradeRoom.Tests.Support;
using Xunit.Abstractions;

namespace TradeRoom.Tests.Integration;

/// <summary>
/// Issue 12, membership and operations: real server processes in cluster mode on loopback, sharing one PostgreSQL
/// journal. They form one cluster through the seed, /api/ready says which nodes should get traffic, a SIGTERMed node
/// leaves before it closes its clients with 1001, and a SIGKILLed one is downed by the split brain resolver.
/// </summary>
[Collection(ProcessEnvironmentCollection.Name)]
public sealed class ClusterMembershipTests(PostgresServer postgres, ITestOutputHelper output) : IClassFixture<PostgresServer>
{
    /// <summary>Bound on failure detection plus the resolver's stable-after (about 8-10 s on an idle machine) on a busy one.</summary>
    private static readonly TimeSpan DownedWithin = TimeSpan.FromSeconds(45);

    [Fact]
    public async Task Three_nodes_form_one_cluster_and_each_is_ready_naming_itself()
    {
        await using var cluster = await ClusterNodes.StartAsync(3, await postgres.CreateDatabaseAsync());
        var addresses = cluster.Nodes.Select(n => n.Address).Order(StringComparer.Ordinal).ToArray();

        foreach (var node in cluster.Nodes)
        {
            var view = (await node.ClusterViewAsync())!;
            Assert.Equal(node.Address, view.Self);
            Assert.Equal("up", view.Status);
            Assert.Equal(addresses, view.Members.Select(m => m.Address).Order(StringComparer.Ordinal));
            Assert.All(view.Members, m => Assert.Equal("up", m.Status));
            Assert.All(view.Members, m => Assert.Equal(["traderoom"], m.Roles));
            Assert.Empty(view.Unreachable);

            var ready = await node.GetAsync("/api/ready");
            Assert.Equal(HttpStatusCode.OK, ready.Status);
            Assert.True(ready.Json.GetProperty("ready").GetBoolean());
            Assert.Equal(node.Address, ready.Json.GetProperty("node").GetString());

            var metrics = MetricsScrape.Parse(await node.Http.GetStringAsync("/metrics"));
            Assert.Equal(3, metrics["traderoom_cluster_members{status=\"up\"}"]);
            Assert.Equal(0, metrics["traderoom_cluster_members{status=\"joining\"}"]);
            Assert.Equal(0, metrics["traderoom_cluster_unreachable_members"]);
        }
    }

    [Fact]
    public async Task A_node_is_not_ready_until_it_has_joined_and_ready_once_its_seed_is_up()
    {
        await using var cluster = ClusterNodes.Create(2, await postgres.CreateDatabaseAsync());
        // Node 1 seeds from node 0, which is not running: it serves HTTP but is in no cluster.
        var waiting = cluster.Start(1, [cluster[0].Address]);
        await Eventually.MatchAsync(() => waiting.ClusterViewAsync(), view => view is not null, "node 1 answering /api/health", ClusterNodes.StartTimeout);

        var notReady = await waiting.GetAsync("/api/ready");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, notReady.Status);
        Assert.Equal("not_ready", notReady.ErrorCode);
        Assert.Contains("not joined", notReady.ErrorMessage, StringComparison.Ordinal);
        Assert.Contains(cluster[0].Address, notReady.ErrorMessage, StringComparison.Ordinal);
        Assert.DoesNotContain(waiting.Address, (await waiting.ClusterViewAsync())!.Up);

        cluster.Start(0, [cluster[0].Address]);
        await cluster.WaitUntilFormedAsync();
        Assert.Equal(HttpStatusCode.OK, (await waiting.GetAsync("/api/ready")).Status);
    }

    [Fact]
    public async Task A_terminated_node_leaves_the_cluster_then_closes_its_clients_with_1001_and_exits_0()
    {
        await using var cluster = await ClusterNodes.StartAsync(3, await postgres.CreateDatabaseAsync());
        var leaving = cluster[2];
        var survivors = new[] { cluster[0], cluster[1] };
        var (alice, aliceAuth) = await leaving.ConnectAsync("alice");
        var (bob, _) = await leaving.ConnectAsync("bob");
        var (carol, _) = await cluster[0].ConnectAsync("carol");
        await using var _1 = alice;
        await using var _2 = bob;
        await using var _3 = carol;
        Assert.Equal(leaving.Address, aliceAuth.Data.GetProperty("node").GetString());

        var closes = new[] { alice.ReceiveCloseAsync(TimeSpan.FromSeconds(30)), bob.ReceiveCloseAsync(TimeSpan.FromSeconds(30)) };
        using var stopPolling = new CancellationTokenSource();
        // What a load balancer polling the leaving node sees until it is gone.
        var readiness = Task.Run(async () =>
        {
            var answers = new List<string>();
            while (!stopPolling.IsCancellationRequested)
            {
                var ready = await leaving.GetAsync("/api/ready");
                if (ready.Text.Length > 0)
                    answers.Add(ready.Status == HttpStatusCode.OK ? "ready" : ready.ErrorCode);
                await Task.Delay(20);
            }
            return answers;
        });
        var watch = Stopwatch.StartNew();
        var exited = cluster.TerminateAsync(leaving.Index);

        await Task.WhenAny(closes);
        var closedAfter = watch.ElapsedMilliseconds;
        // The sockets close only once the node is out: every survivor has already seen it leave.
        foreach (var survivor in survivors)
        {
            var view = (await survivor.ClusterViewAsync())!;
            Assert.True(!view.Up.Contains(leaving.Address), $"node {survivor.Index} still has the leaving node up when its clients were closed: {view}");
        }
        var codes = await Task.WhenAll(closes);
        Assert.Equal(new[] { 1001, 1001 }, codes);
        Assert.Equal(0, await exited);
        await stopPolling.CancelAsync();
        var answers = await readiness;
        Assert.Contains("not_ready", answers);
        Assert.Equal("not_ready", answers[^1]);
        output.WriteLine($"SIGTERM -> first 1001: {closedAfter} ms; -> process exit: {watch.ElapsedMilliseconds} ms");
        output.WriteLine(leaving.Output);

        await cluster.WaitUntilFormedAsync(TimeSpan.FromSeconds(20));
        foreach (var survivor in survivors)
            Assert.Equal(2, (await survivor.ClusterViewAsync())!.Members.Count);
        // A client of a survivor never noticed.
        await carol.SendAsync(new { type = "ping" });
        Assert.Equal("pong", (await carol.ReceiveAsync()).Type);
    }

    [Fact]
    public async Task A_killed_seed_is_seen_unreachable_then_downed_and_removed_while_the_survivors_stay_ready_and_rejoins_on_restart()
    {
        await using var cluster = await ClusterNodes.StartAsync(3, await postgres.CreateDatabaseAsync());
        // Node 0: the seed, and the first member (the leader, as long as its address sorts first).
        var killed = cluster[0];
        var survivors = new[] { cluster[1], cluster[2] };

        using var stopPolling = new CancellationTokenSource();
        var readiness = survivors.Select(node => Task.Run(async () =>
        {
            var answers = new List<string>();
            while (!stopPolling.IsCancellationRequested)
            {
                var ready = await node.GetAsync("/api/ready");
                if (ready.Status != HttpStatusCode.OK)
                    answers.Add(ready.ToString());
                await Task.Delay(100);
            }
            return answers;
        })).ToArray();

        var watch = Stopwatch.StartNew();
        await cluster.KillAsync(killed.Index);

        foreach (var survivor in survivors)
        {
            // Unreachable, or (on a busy machine, polled late) already past it: downed and removed.
            var unreachable = await Eventually.MatchAsync(() => survivor.ClusterViewAsync(),
                v => v is not null && (v.Unreachable.Contains(killed.Address) || v.Members.All(m => m.Address != killed.Address)),
                $"node {survivor.Index} seeing the killed node unreachable", DownedWithin);
            output.WriteLine($"node {survivor.Index}: unreachable after {watch.ElapsedMilliseconds} ms: {unreachable}");
            // Room queries leave an unreachable node out instead of waiting for it past the caller's timeout.
            var rooms = await survivor.GetAsServiceAsync("/api/rooms");
            Assert.True(rooms.Status == HttpStatusCode.OK, $"node {survivor.Index}: /api/rooms with a member unreachable: {rooms}");
        }
        foreach (var survivor in survivors)
        {
            var removed = await Eventually.MatchAsync(() => survivor.ClusterViewAsync(),
                v => v is not null && v.Members.Count == 2 && v.Unreachable.Count == 0 && v.Up.Count == 2,
                $"node {survivor.Index} having downed and removed the killed node", DownedWithin);
            output.WriteLine($"node {survivor.Index}: removed after {watch.ElapsedMilliseconds} ms: {removed}");
            Assert.DoesNotContain(removed!.Members, m => m.Address == killed.Address);
        }

        await stopPolling.CancelAsync();
        foreach (var answers in await Task.WhenAll(readiness))
            Assert.Empty(answers);

        // Back on the same address, seeded by the survivors: one cluster of three again, not an island of its own.
        await cluster.RestartAsync(killed.Index);
        foreach (var node in cluster.Nodes)
            Assert.Equal(3, (await node.ClusterViewAsync())!.Up.Count);
    }
}
