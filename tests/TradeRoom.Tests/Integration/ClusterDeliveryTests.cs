using System.Net;
using System.Text.Json;
using TradeRoom.Tests.Support;
using Xunit.Abstractions;

namespace TradeRoom.Tests.Integration;

/// <summary>
/// Issue 12, delivery across nodes: three real server processes in cluster mode on one PostgreSQL journal, rooms
/// sharded over them, and real WebSocket clients on every node. Whichever node an event is published on, every
/// client following its room gets the same ordered stream; private events reach only their owner; a client that
/// leaves one node resumes on another; /api/rooms sees the rooms of every node.
/// </summary>
[Collection(ProcessEnvironmentCollection.Name)]
public sealed class ClusterDeliveryTests(PostgresServer postgres, ITestOutputHelper output) : IClassFixture<PostgresServer>
{
    private static readonly string[] Rooms = ["cup-a", "cup-b", "cup-c", "cup-d"];
    private static readonly string[] Users = ["alice", "bob", "carol"];

    [Fact]
    public async Task Clients_on_every_node_get_identical_ordered_streams_private_events_reach_only_their_owner_and_resume_works_on_another_node()
    {
        await using var cluster = await ClusterNodes.StartAsync(3, await postgres.CreateDatabaseAsync());
        // One client per node, each its own user, each following every room.
        var clients = new List<(WsClient Client, string User)>();
        for (var i = 0; i < 3; i++)
        {
            var (client, _) = await cluster[i].ConnectAsync(Users[i]);
            clients.Add((client, Users[i]));
            foreach (var room in Rooms)
            {
                await client.SendAsync(new { type = "subscribe_room", data = new { bullPenId = room } });
                var subscribed = await client.ReceiveTypeAsync("subscribed");
                Assert.Equal(0, subscribed.Data.GetProperty("seq").GetInt64());
            }
        }

        // 20 events per room, each published on the next node in turn, and one private order for bob per room.
        const int perRoom = 20;
        var accepted = Rooms.ToDictionary(r => r, _ => new List<long>());
        for (var n = 0; n < perRoom; n++)
        {
            foreach (var room in Rooms)
            {
                var node = cluster[(n + Array.IndexOf(Rooms, room)) % 3];
                var (status, seq, body) = n == perRoom / 2
                    ? await node.PublishAsync(room, "order_executed", new { userId = "bob", orderId = $"o-{room}" })
                    : await node.PublishAsync(room, "leaderboard_update", new { n, room });
                Assert.True(status == HttpStatusCode.Accepted, $"publish to {room} on node {node.Index}: {(int)status} {body}");
                accepted[room].Add(seq!.Value);
            }
        }
        foreach (var room in Rooms)
            Assert.Equal(Enumerable.Range(1, perRoom).Select(i => (long)i), accepted[room]);

        // Everything each client got, in order, per room.
        var streams = new Dictionary<string, Dictionary<string, List<(long Seq, string Raw)>>>();
        foreach (var (client, user) in clients)
        {
            var frames = await client.BarrierAsync();
            while (frames.Count(f => f.Type != "pong") < Rooms.Length * (user == "bob" ? perRoom : perRoom - 1))
                frames.AddRange(await client.BarrierAsync()); // events still on their way from other nodes
            streams[user] = Rooms.ToDictionary(r => r, r => frames.Where(f => f.BullPenId == r && f.Root.TryGetProperty("seq", out _))
                .Select(f => (f.Seq, f.Raw)).ToList());
        }
        foreach (var room in Rooms)
        {
            var privateSeq = (long)(perRoom / 2 + 1);
            Assert.Equal(Enumerable.Range(1, perRoom).Select(i => (long)i), streams["bob"][room].Select(e => e.Seq));
            foreach (var user in new[] { "alice", "carol" })
            {
                // The same frames, byte for byte, in the same order, without bob's private order.
                Assert.Equal(streams["bob"][room].Where(e => e.Seq != privateSeq), streams[user][room]);
            }
            Assert.Contains("order_executed", streams["bob"][room].Single(e => e.Seq == privateSeq).Raw, StringComparison.Ordinal);
        }

        // The rooms run on several nodes, and any node lists them all, with the subscribers of every node.
        var listed = (await cluster[2].GetAsServiceAsync("/api/rooms")).Json.GetProperty("rooms").EnumerateArray()
            .ToDictionary(r => r.GetProperty("bullPenId").GetString()!, r => r);
        Assert.Equal(Rooms, listed.Keys.Order(StringComparer.Ordinal));
        Assert.All(listed.Values, r => Assert.Equal(3, r.GetProperty("subscribers").GetInt32()));
        Assert.All(listed.Values, r => Assert.Equal(perRoom, r.GetProperty("seq").GetInt64()));
        var hosts = listed.Values.Select(r => r.GetProperty("node").GetString()).Distinct().ToArray();
        output.WriteLine($"rooms hosted on: {string.Join(", ", hosts)}");
        Assert.All(hosts, h => Assert.Contains(h, cluster.Nodes.Select(n => n.Address)));

        // Each event crossed the network once per other node with subscribers, never once per subscriber.
        var scrapes = await Task.WhenAll(cluster.Nodes.Select(async n => MetricsScrape.Parse(await n.Http.GetStringAsync("/metrics"))));
        var sent = scrapes.Sum(m => m["traderoom_cluster_events_sent_total"]);
        Assert.Equal(sent, scrapes.Sum(m => m["traderoom_cluster_events_received_total"]));
        // Public events to 2 other nodes each; bob's private order crosses only when his node does not host the room.
        Assert.InRange(sent, Rooms.Length * (perRoom - 1) * 2, Rooms.Length * ((perRoom - 1) * 2 + 1));
        Assert.Equal(Rooms.Length, scrapes.Sum(m => m["traderoom_rooms"]));
        Assert.InRange(scrapes.Sum(m => m["traderoom_cluster_shards"]), 1, Rooms.Length);

        // alice leaves node 0, 5 events go out, and she resumes on node 1.
        var epoch = (await cluster[0].GetAsServiceAsync("/api/rooms/cup-a")).Json.GetProperty("epoch").GetString()!;
        await clients[0].Client.DisposeAsync();
        for (var n = 0; n < 5; n++)
            Assert.Equal(HttpStatusCode.Accepted, (await cluster[n % 3].PublishAsync("cup-a", "leaderboard_update", new { n = perRoom + n })).Status);
        var (resumed, _) = await cluster[1].ConnectAsync("alice");
        await resumed.SendAsync(new { type = "subscribe_room", data = new { bullPenId = "cup-a", sinceSeq = perRoom, epoch } });
        var ack = await resumed.ReceiveTypeAsync("subscribed");
        Assert.True(ack.Data.GetProperty("recovered").GetBoolean());
        Assert.Equal(epoch, ack.Data.GetProperty("epoch").GetString());
        var missed = (await resumed.BarrierAsync()).Where(f => f.BullPenId == "cup-a").Select(f => f.Seq).ToArray();
        Assert.Equal([21L, 22L, 23L, 24L, 25L], missed);
        await resumed.DisposeAsync();
        foreach (var (client, _) in clients.Skip(1))
            await client.DisposeAsync();
    }
}
