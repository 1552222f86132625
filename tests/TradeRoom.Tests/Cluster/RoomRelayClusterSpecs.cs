using TradeRoom.Contracts;
using System.Collections.Concurrent;
using System.Text;
using Akka.Actor;
using Akka.TestKit;
using TradeRoom.Actors.Integration;
using TradeRoom.Actors.Rooms;
using TradeRoom.Actors.Storage;
using TradeRoom.Tests.Support;
using Xunit.Abstractions;

namespace TradeRoom.Tests.Cluster;

/// <summary>
/// The rooms' node-local relays across real actor systems in one cluster (<see cref="ClusterSystems"/>): test probes
/// stand for connections and subscribe through their system's <see cref="RoomRelays"/>, while rooms run as shard
/// entities on another system and events are published through an <see cref="IntegrationActor"/>.
/// </summary>
public sealed class RoomRelayClusterSpecs : Akka.TestKit.Xunit2.TestKit
{
    private readonly ITestOutputHelper _output;

    public RoomRelayClusterSpecs(ITestOutputHelper output) : base(output: output) => _output = output;

    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(300);
    private static readonly TimeSpan PublishTimeout = TimeSpan.FromSeconds(3);

    [Fact]
    public async Task Subscribers_on_another_node_get_every_event_after_their_ack_while_the_room_keeps_publishing()
    {
        await using var cluster = await ClusterSystems.StartAsync(2, _output);
        var room = "nogap-" + Guid.NewGuid().ToString("N")[..8];
        var (host, other) = await StartRoomAsync(cluster, room);
        // The subscribes race a running stream; the last 20 events wait until every subscriber has its ack, so each
        // has events after it however fast the room and however slow the subscribes.
        var publisher = new Publisher(host, room, total: 400, firstN: 1) { HoldAt = 380 };
        var publishing = publisher.RunAsync();

        var subscribers = new List<(TestProbe Probe, SubscribeAck Ack)>();
        foreach (var joinAt in new[] { 5, 40, 80, 120 })
        {
            await publisher.WhenAcceptedAsync(joinAt);
            var probe = CreateTestProbe(other.System);
            other.Relays.Tell(new Subscribe(room, probe.Ref, "user-" + joinAt), probe.Ref);
            var ack = probe.ExpectMsg<SubscribeAck>(Wait);
            Assert.False(ack.Recovered);
            Assert.True(ack.Seq > joinAt, $"subscribed at seq {ack.Seq}, after {joinAt} accepted events and the first");
            subscribers.Add((probe, ack));
        }
        publisher.Release();
        await publishing.WaitAsync(TimeSpan.FromSeconds(60));

        // One publisher, no failure: every publish accepted, numbered in order after the room's first event.
        var last = publisher.AssertAllAcceptedInOrder(from: 2);
        foreach (var (probe, ack) in subscribers)
        {
            Assert.True(ack.Seq < last, $"acked at {ack.Seq}, the last event is {last}: the spec needs events after the ack");
            for (var seq = ack.Seq + 1; seq <= last; seq++)
            {
                var e = probe.ExpectMsg<RoomEvent>(Wait);
                Assert.Equal(seq, e.Seq);
                // The event is the one published as n = seq - 1 (the room's first event was n = 0).
                Assert.Contains($"\"n\":{seq - 1}}}", Encoding.UTF8.GetString(e.Frame));
            }
            probe.ExpectNoMsg(Quiet);
        }
    }

    public enum RoomStop
    {
        PoisonPill,
        Kill,
        NodeLeaves,
    }

    [Theory]
    [InlineData(RoomStop.PoisonPill)]
    [InlineData(RoomStop.Kill)]
    [InlineData(RoomStop.NodeLeaves)]
    public async Task When_the_room_stops_mid_stream_the_relay_rejoins_and_its_connections_miss_nothing(RoomStop stop)
    {
        await using var cluster = await ClusterSystems.StartAsync(2, _output);
        var room = "rejoin-" + Guid.NewGuid().ToString("N")[..8];
        var (host, other) = await StartRoomAsync(cluster, room);
        var epoch = (await DetailsAsync(other, room)).Epoch;
        var probes = new[] { CreateTestProbe(other.System), CreateTestProbe(other.System) };
        var acks = new List<SubscribeAck>();
        for (var i = 0; i < probes.Length; i++)
        {
            other.Relays.Tell(new Subscribe(room, probes[i].Ref, "user-" + i), probes[i].Ref);
            acks.Add(probes[i].ExpectMsg<SubscribeAck>(Wait));
        }

        // Published through the node that stays, while the room stops.
        var publisher = new Publisher(other, room, total: 150, firstN: 1);
        var publishing = publisher.RunAsync();
        await publisher.WhenAcceptedAsync(30);
        if (stop == RoomStop.NodeLeaves)
            await host.StopAsync();
        else
            StopRoom(host, room, stop == RoomStop.Kill ? Kill.Instance : PoisonPill.Instance);
        await publishing.WaitAsync(TimeSpan.FromSeconds(90));
        Assert.Equal(150, publisher.Accepted.Count); // publishing went on after the room stopped

        // Live after the failover: one more event reaches everyone.
        var live = Assert.IsType<EventPublished>(await other.PublishAsync(room, -1, Wait));
        var details = await DetailsAsync(other, room);
        Assert.Equal(epoch, details.Epoch);
        if (stop == RoomStop.NodeLeaves)
            Assert.Equal(other.Address.ToString(), details.Node);

        foreach (var (probe, ack) in probes.Zip(acks))
        {
            // Every event stored after the ack, accepted or not (one in flight when the room stopped may be stored
            // unanswered), exactly once and in order; no second ack: the relay's rejoin recovered.
            var received = new List<long>();
            while (received.Count == 0 || received[^1] < live.Seq)
                received.Add(probe.ExpectMsg<RoomEvent>(Wait).Seq);
            Assert.Equal(Enumerable.Range((int)ack.Seq + 1, (int)(live.Seq - ack.Seq)).Select(s => (long)s), received);
            foreach (var seq in publisher.Accepted.Where(s => s > ack.Seq))
                Assert.Contains(seq, received);
            probe.ExpectNoMsg(Quiet);
        }
    }

    [Fact]
    public async Task A_rejoin_the_room_cannot_replay_starts_its_connections_over_and_the_next_rejoin_resumes_in_the_new_epoch()
    {
        await using var cluster = await ClusterSystems.StartAsync(2, _output);
        var room = "epoch-" + Guid.NewGuid().ToString("N")[..8];
        var (host, other) = await StartRoomAsync(cluster, room);
        var probe = CreateTestProbe(other.System);
        other.Relays.Tell(new Subscribe(room, probe.Ref, "user"), probe.Ref);
        var first = probe.ExpectMsg<SubscribeAck>(Wait);
        for (var n = 1; n <= 4; n++)
            Assert.IsType<EventPublished>(await other.PublishAsync(room, n, Wait));
        for (var seq = 2; seq <= 5; seq++)
            Assert.Equal(seq, probe.ExpectMsg<RoomEvent>(Wait).Seq);

        // The room's journal is gone (as retention deletes it) while it runs: once it stops, it comes back empty,
        // in a new epoch, and cannot replay what followed seq 5.
        await new RoomStore(other.Settings.Persistence).PurgeAsync([room]);
        StopRoom(host, room, PoisonPill.Instance);
        var fresh = probe.ExpectMsg<SubscribeAck>(Wait);
        Assert.False(fresh.Recovered);
        Assert.Equal(0, fresh.Seq);
        Assert.NotEqual(first.Epoch, fresh.Epoch);

        Assert.Equal(1, Assert.IsType<EventPublished>(await other.PublishAsync(room, 5, Wait)).Seq);
        Assert.Equal(2, Assert.IsType<EventPublished>(await other.PublishAsync(room, 6, Wait)).Seq);
        Assert.Equal(1, probe.ExpectMsg<RoomEvent>(Wait).Seq);
        Assert.Equal(2, probe.ExpectMsg<RoomEvent>(Wait).Seq);

        // Stopped again: the relay rejoins from seq 2 of the new epoch (not from seq 5 of the old one), so it
        // resumes, with no second fresh start.
        StopRoom(host, room, PoisonPill.Instance);
        Assert.Equal(3, Assert.IsType<EventPublished>(await other.PublishAsync(room, 7, Wait)).Seq);
        Assert.Equal(3, probe.ExpectMsg<RoomEvent>(Wait).Seq);
        probe.ExpectNoMsg(Quiet);
    }

    /// <summary>Starts <paramref name="room"/> with one event and finds where it runs: that system, and the other one.</summary>
    private static async Task<(ClusterSystem Host, ClusterSystem Other)> StartRoomAsync(ClusterSystems cluster, string room)
    {
        Assert.Equal(1, Assert.IsType<EventPublished>(await cluster[0].PublishAsync(room, 0, Wait)).Seq);
        var host = cluster.At((await DetailsAsync(cluster[0], room)).Node);
        return (host, cluster.Other(host));
    }

    private static async Task<RoomDetails> DetailsAsync(ClusterSystem via, string room) =>
        Assert.IsType<RoomDetails>(await via.Directory.Ask<object>(new GetRoomDetails(room), Wait));

    /// <summary>Finds the room's actor through its node's directory (the room answers itself), and stops it with <paramref name="how"/>.</summary>
    private void StopRoom(ClusterSystem host, string room, object how)
    {
        var probe = CreateTestProbe(host.System);
        host.System.ActorSelection(RoomDirectory.Path).Tell(new GetLocalRoomDetails(room), probe.Ref);
        probe.ExpectMsg<RoomDetails>(Wait);
        var actor = probe.LastSender;
        Assert.True(actor.Path.Address.HasLocalScope, $"the room {actor.Path} runs on system {host.Index}");
        probe.Watch(actor);
        actor.Tell(how);
        probe.ExpectTerminated(actor, Wait);
    }

    /// <summary>Publishes public events one after another until <c>total</c> are accepted, keeping the seq of each accepted one.</summary>
    private sealed class Publisher(ClusterSystem via, string room, int total, int firstN)
    {
        private readonly ConcurrentQueue<long> _accepted = new();
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>After this many accepted events, publishing waits for <see cref="Release"/>.</summary>
        public int HoldAt { get; init; } = int.MaxValue;

        public void Release() => _released.TrySetResult();

        public IReadOnlyList<long> Accepted => _accepted.ToArray();

        public async Task RunAsync()
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(75);
            for (var n = firstN; _accepted.Count < total; n++)
            {
                if (DateTime.UtcNow > deadline)
                    throw new TimeoutException($"only {_accepted.Count} of {total} publishes accepted");
                if (_accepted.Count == HoldAt)
                    await _released.Task.WaitAsync(TimeSpan.FromSeconds(60));
                if (await via.PublishAsync(room, n, PublishTimeout) is EventPublished published)
                    _accepted.Enqueue(published.Seq);
            }
        }

        public Task WhenAcceptedAsync(int count) =>
            Eventually.MatchAsync(() => Task.FromResult(_accepted.Count), c => c >= count, $"{count} publishes accepted", TimeSpan.FromSeconds(30));

        /// <summary>Asserts the accepted seqs are <paramref name="from"/>, from + 1, … and returns the last.</summary>
        public long AssertAllAcceptedInOrder(long from)
        {
            var accepted = Accepted;
            Assert.Equal(Enumerable.Range((int)from, total).Select(s => (long)s), accepted);
            return accepted[^1];
        }
    }
}
