using System.Diagnostics;
using System.Globalization;
using Akka.Actor;
using Akka.Configuration;
using TradeRoom.Contracts;
using TradeRoom.Contracts.Client;
using TradeRoom.Tests.Support;
using Xunit.Abstractions;

namespace TradeRoom.Tests.Integration;

/// <summary>
/// Issue 12, publishing from other processes by actor messages: the real server binary in cluster mode (three nodes
/// on one PostgreSQL journal), real WebSocket clients on every node, and publishers in other processes: the sample
/// trade service (<c>samples/TradeService</c>, its own process) and <see cref="TradeRoomPublisher"/> in this one,
/// both through ClusterClient to a node's receptionist and its <c>/user/integration</c>.
/// </summary>
[Collection(ProcessEnvironmentCollection.Name)]
public sealed class ActorPublishingTests(ActorPublishingTests.PublishingCluster node) : IClassFixture<ActorPublishingTests.PublishingCluster>
{
    [Fact]
    public async Task The_sample_trade_service_publishes_from_its_own_process_and_clients_on_all_three_nodes_receive_every_event_in_order()
    {
        const string room = "sample-stream";
        const int events = 40;
        // One client per node: the room runs on one of them, and its events reach the other two across the network.
        await using var alice = await node.SubscribeAsync("alice", room, nodeIndex: 0);
        await using var bob = await node.SubscribeAsync("bob", room, nodeIndex: 1);
        await using var carol = await node.SubscribeAsync("carol", room, nodeIndex: 2);

        var sample = await RunSampleAsync("--contacts", string.Join(",", node.Addresses), "--room", room, "--count", events.ToString(CultureInfo.InvariantCulture),
            "--interval", "0", "--trader", "alice");

        Assert.True(sample.ExitCode == 0, $"the sample exited with {sample.ExitCode}:\n{sample.Output}");
        // One acknowledgement per event, in order, each with the seq the room gave it.
        var acks = sample.Lines.Where(l => l.StartsWith("ack ", StringComparison.Ordinal)).ToList();
        Assert.Equal(Enumerable.Range(1, events).Select(i => $"ack {i} {(i % 2 == 1 ? "order_executed" : "leaderboard_update")} room={room} seq={i}"), acks);

        // alice, the trader of the orders, receives all of them in order; bob only the public leaderboard updates.
        var aliceFrames = await ReadEventsAsync(alice, events);
        Assert.Equal(Enumerable.Range(1, events).Select(i => (long)i), aliceFrames.Select(f => f.Seq));
        Assert.Equal(Enumerable.Range(1, events).Select(i => i % 2 == 1 ? "order_executed" : "leaderboard_update"), aliceFrames.Select(f => f.Type));
        Assert.Equal(Enumerable.Range(1, events / 2).Select(i => $"o-{2 * i - 1}"),
            aliceFrames.Where(f => f.Type == "order_executed").Select(f => f.Data.GetProperty("orderId").GetString()));
        Assert.All(aliceFrames, f => Assert.Equal(room, f.BullPenId));

        // bob and carol, on the other nodes, only the public leaderboard updates, the same frames byte for byte.
        var bobFrames = await ReadEventsAsync(bob, events);
        Assert.Equal(Enumerable.Range(1, events / 2).Select(i => (long)(2 * i)), bobFrames.Select(f => f.Seq));
        Assert.All(bobFrames, f => Assert.Equal("leaderboard_update", f.Type));
        var carolFrames = await ReadEventsAsync(carol, events);
        Assert.Equal(bobFrames.Select(f => f.Raw), carolFrames.Select(f => f.Raw));
        Assert.Equal(aliceFrames.Where(f => f.Type == "leaderboard_update").Select(f => f.Raw), bobFrames.Select(f => f.Raw));
    }

    [Fact]
    public async Task An_invalid_event_from_the_sample_is_rejected_and_never_numbered_or_delivered()
    {
        const string room = "sample-rejected";
        await using var alice = await node.SubscribeAsync("alice", room);

        var sample = await RunSampleAsync("--contacts", string.Join(",", node.Addresses), "--room", room, "--count", "1", "--type", "order_placed");

        Assert.True(sample.ExitCode == 1, $"the sample exited with {sample.ExitCode}:\n{sample.Output}");
        Assert.Contains(sample.Lines, l => l.StartsWith($"rejected 1 order_placed room={room} code=unknown_type: unknown event type \"order_placed\"", StringComparison.Ordinal));
        Assert.DoesNotContain(sample.Lines, l => l.StartsWith("ack ", StringComparison.Ordinal));

        // The next valid event is the room's first: the rejected one took no seq and reached no one.
        await using var publisher = TradeRoomPublisher.Start([node.Address]);
        var ack = await publisher.PublishAsync(room, "ranking_changed", new { userId = "alice", from = 2, to = 1 }, TimeSpan.FromSeconds(20));
        Assert.Equal((room, 1L), (ack.BullPenId, ack.Seq));
        var first = await alice.ReceiveAsync();
        Assert.Equal(("ranking_changed", 1L), (first.Type, first.Seq));
    }

    [Fact]
    public async Task A_publisher_in_another_process_gets_each_rejection_as_an_exception_with_the_servers_code()
    {
        await using var publisher = TradeRoomPublisher.Start([node.Address]);
        var timeout = TimeSpan.FromSeconds(20);

        var badRoom = await Assert.ThrowsAsync<PublishRejectedException>(() => publisher.PublishAsync("", "ranking_changed", new { }, timeout));
        Assert.Equal("invalid_room", badRoom.Code);
        var noUser = await Assert.ThrowsAsync<PublishRejectedException>(() => publisher.PublishAsync("r-rejects", "order_executed", new { symbol = "AAPL" }, timeout));
        Assert.Equal(("missing_user", "r-rejects"), (noUser.Code, noUser.Rejection.BullPenId));
        var notObject = await Assert.ThrowsAsync<PublishRejectedException>(() => publisher.PublishAsync("r-rejects", "ranking_changed", "[1,2]"u8.ToArray(), timeout));
        Assert.Equal("invalid_message", notObject.Code);

        // And a good one after them is acknowledged.
        Assert.Equal(1, (await publisher.PublishAsync("r-rejects", "ranking_changed", new { from = 2, to = 1 }, timeout)).Seq);
    }

    [Fact]
    public async Task An_event_as_large_as_http_takes_crosses_from_a_publisher_to_a_client()
    {
        const string room = "large-event";
        // The publisher reaches node 0, the client follows on node 1: the event crosses between nodes on its way.
        await using var alice = await node.SubscribeAsync("alice", room, nodeIndex: 1);
        await using var publisher = TradeRoomPublisher.Start([node.Address]);

        var pad = new string('x', 900_000);
        var ack = await publisher.PublishAsync(room, "snapshot_created", new { pad }, TimeSpan.FromSeconds(20));

        Assert.Equal(1, ack.Seq);
        var frame = await alice.ReceiveAsync();
        Assert.Equal(("snapshot_created", 1L), (frame.Type, frame.Seq));
        Assert.Equal(pad, frame.Data.GetProperty("pad").GetString());
    }

    [Fact]
    public async Task A_publisher_runs_in_an_actor_system_the_trade_service_already_has()
    {
        // The trade service's own system: remoting and the contracts' binding in its HOCON, nothing of ClusterClient's.
        using var system = ActorSystem.Create("trade-service", ConfigurationFactory.ParseString(
            "akka.actor.provider = remote\nakka.remote.dot-netty.tcp { hostname = 127.0.0.1, port = 0 }\n" + ContractsConfig.Serialization));
        await using (var publisher = TradeRoomPublisher.ForSystem(system, [node.Address]))
        {
            Assert.Same(system, publisher.ActorSystem);
            Assert.Equal(1, (await publisher.PublishAsync("own-system", "ranking_changed", new { from = 2, to = 1 }, TimeSpan.FromSeconds(20))).Seq);
            Assert.Equal(2, (await publisher.PublishAsync("own-system", "ranking_changed", new { from = 1, to = 2 }, TimeSpan.FromSeconds(20))).Seq);
        }
        // Disposing the publisher leaves the caller's system running.
        Assert.False(system.WhenTerminated.IsCompleted);
    }

    [Fact]
    public void A_given_actor_system_without_the_contracts_binding_is_refused()
    {
        using var system = ActorSystem.Create("no-binding", ConfigurationFactory.ParseString("akka.actor.provider = remote\nakka.remote.dot-netty.tcp.port = 0"));
        var e = Assert.Throws<ArgumentException>(() => TradeRoomPublisher.ForSystem(system, [node.Address]));
        Assert.Contains("ContractsConfig.Serialization", e.Message);
    }

    [Fact]
    public async Task Data_larger_than_a_remote_frame_is_refused_before_sending()
    {
        await using var publisher = TradeRoomPublisher.Start([node.Address]);
        var e = await Assert.ThrowsAsync<ArgumentException>(() =>
            publisher.PublishAsync("r1", "snapshot_created", new byte[2 * 1024 * 1024], TimeSpan.FromSeconds(5)));
        Assert.Contains("maximum-frame-size", e.Message);
    }

    [Fact]
    public async Task With_no_node_to_answer_a_publish_times_out_saying_it_may_have_been_published()
    {
        // A port nothing listens on: the client keeps looking for a receptionist and buffers the event.
        await using var publisher = TradeRoomPublisher.Start([$"akka.tcp://traderoom@127.0.0.1:{ServerProcess.FreePort()}"]);
        var e = await Assert.ThrowsAsync<PublishTimeoutException>(() =>
            publisher.PublishAsync("r1", "ranking_changed", new { from = 2, to = 1 }, TimeSpan.FromSeconds(1)));
        Assert.Equal(("r1", "ranking_changed"), (e.BullPenId, e.Type));
        Assert.Contains("may or may not have been published", e.Message);
    }

    [Theory]
    [InlineData("127.0.0.1:4053")]
    [InlineData("akka.tcp://traderoom@127.0.0.1")]
    [InlineData("")]
    public void A_contact_point_that_is_not_a_node_address_is_refused_at_start(string contact)
    {
        var e = Assert.Throws<ArgumentException>(() => TradeRoomPublisher.Start([contact]));
        Assert.Contains("akka.tcp://traderoom@127.0.0.1:4053", e.Message);
    }

    private static async Task<List<Frame>> ReadEventsAsync(WsClient client, long lastSeq)
    {
        var frames = new List<Frame>();
        while (true)
        {
            var frame = await client.ReceiveAsync(TimeSpan.FromSeconds(20));
            if (!frame.Root.TryGetProperty("seq", out _))
                continue;
            frames.Add(frame);
            if (frame.Seq >= lastSeq)
                return frames;
        }
    }

    private sealed record SampleRun(int ExitCode, string Output)
    {
        public string[] Lines => Output.Split('\n', StringSplitOptions.TrimEntries);
    }

    /// <summary>The sample as a trade service runs it: <c>dotnet TradeService.dll</c> from its own build output.</summary>
    private static async Task<SampleRun> RunSampleAsync(params string[] args)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(SampleDll)!,
        };
        info.ArgumentList.Add(SampleDll);
        foreach (var arg in args)
            info.ArgumentList.Add(arg);
        info.Environment.Remove("TRADEROOM_CONTACTS");
        info.Environment.Remove("BULL_PEN_ID");
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"the sample did not finish within 90 s:\n{await stdout}\n{await stderr}");
        }
        return new SampleRun(process.ExitCode, await stdout + await stderr);
    }

    /// <summary>samples/TradeService's own output folder, of the configuration these tests were built in (the test project builds it).</summary>
    private static string SampleDll
    {
        get
        {
            var output = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)); // tests/TradeRoom.Tests/bin/<configuration>/<tfm>
            var root = output.Parent!.Parent!.Parent!.Parent!.Parent!.FullName;
            return Path.Combine(root, "samples", "TradeService", "bin", output.Parent.Name, output.Name, "TradeService.dll");
        }
    }

    /// <summary>
    /// Three server processes in cluster mode for the whole class (<see cref="ClusterNodes"/>, on a PostgreSQL of
    /// their own), as issue 12's checks run them: a publisher may reach any node's receptionist, and clients follow
    /// from every node.
    /// </summary>
    public sealed class PublishingCluster(IMessageSink diagnostics) : IAsyncLifetime
    {
        private readonly PostgresServer _postgres = new(diagnostics);
        private ClusterNodes _cluster = null!;

        /// <summary>The first node's cluster address: a publisher's one contact point.</summary>
        public string Address => _cluster[0].Address;

        /// <summary>Every node's cluster address: what a publisher gives as its contact points.</summary>
        public IReadOnlyList<string> Addresses => _cluster.Nodes.Select(n => n.Address).ToArray();

        public async Task InitializeAsync()
        {
            await _postgres.InitializeAsync();
            _cluster = await ClusterNodes.StartAsync(3, await _postgres.CreateDatabaseAsync());
        }

        public async Task<WsClient> SubscribeAsync(string user, string room, int nodeIndex = 0)
        {
            var (client, _) = await _cluster[nodeIndex].ConnectAsync(user);
            await client.SendAsync(new { type = "subscribe_room", data = new { bullPenId = room } });
            Assert.Equal(0, (await client.ReceiveTypeAsync("subscribed")).Data.GetProperty("seq").GetInt64());
            return client;
        }

        public async Task DisposeAsync()
        {
            if (_cluster is not null)
                await _cluster.DisposeAsync();
            await _postgres.DisposeAsync();
        }
    }
}
