using System.Net;
using TradeRoom.Tests.Support;
using Xunit.Abstractions;

namespace TradeRoom.Tests.Integration;

/// <summary>
/// Issue 12, the room limits in cluster mode: two real server processes on one PostgreSQL journal, rooms sharded over
/// them, real WebSocket clients. <c>rooms.max-rooms</c> bounds the rooms each node hosts, and
/// <c>limits.new-rooms-per-minute</c> the rooms each connection starts by subscribing, with the codes a single node
/// gives (<c>error</c> <c>room_limit</c> for a subscribe, 503 <c>room_limit</c> for a publish). Before, sharded rooms
/// started on any first message, without bound.
/// </summary>
[Collection(ProcessEnvironmentCollection.Name)]
public sealed class ClusterRoomLimitTests(PostgresServer postgres, ITestOutputHelper output) : IClassFixture<PostgresServer>
{
    [Fact]
    public async Task Each_node_hosts_at_most_max_rooms_a_room_past_it_is_refused_with_room_limit_and_starts_once_a_slot_is_free()
    {
        const int perNode = 2;
        var database = await postgres.CreateDatabaseAsync();
        await using var cluster = await ClusterNodes.StartAsync(2, database, ClusterNodes.HoconEnvironment($$"""
            traderoom.rooms { max-rooms = {{perNode}}, idle-timeout = 2s, empty-room-timeout = 2s }
            traderoom.limits.new-rooms-per-minute = 0
            traderoom.http.publish-timeout = 30s
            """));
        var rooms = Enumerable.Range(0, 10).Select(i => $"cap-{i}").ToArray();

        // One client subscribes to ten rooms: a room whose node hosts its maximum is refused, and the connection goes on.
        var (keeper, _) = await cluster[0].ConnectAsync("keeper");
        var running = new List<string>();
        var refused = new List<string>();
        foreach (var room in rooms)
        {
            await keeper.SubscribeAsync(room);
            var answer = await keeper.ReceiveAsync(TimeSpan.FromSeconds(20));
            Assert.Equal(room, answer.Data.GetProperty("bullPenId").GetString());
            if (answer.Type == "subscribed")
                running.Add(room);
            else
            {
                Assert.Equal(("error", "room_limit"), (answer.Type, answer.Code));
                refused.Add(room);
            }
        }
        output.WriteLine($"running: {string.Join(", ", running)}; refused: {string.Join(", ", refused)}");
        Assert.InRange(running.Count, 1, 2 * perNode);
        Assert.Equal(rooms.Length - running.Count, refused.Count);

        // Every node holds at most its maximum, and the listing has exactly the rooms that were let in.
        var listed = (await cluster[1].GetAsServiceAsync("/api/rooms")).Json.GetProperty("rooms").EnumerateArray()
            .Select(r => (Id: r.GetProperty("bullPenId").GetString()!, Node: r.GetProperty("node").GetString()!)).ToArray();
        Assert.Equal(running.Order(StringComparer.Ordinal), listed.Select(r => r.Id));
        Assert.All(listed.GroupBy(r => r.Node), host => Assert.InRange(host.Count(), 1, perNode));
        foreach (var node in cluster.Nodes)
            Assert.InRange(MetricsScrape.Parse(await node.Http.GetStringAsync("/metrics"))["traderoom_rooms"], 0, perNode);

        // A publish to a refused room is 503 room_limit on either node, and nothing of it is stored; the running rooms take theirs.
        foreach (var room in refused)
        {
            var (status, _, body) = await cluster[1].PublishAsync(room, "ranking_changed", new { n = 1 });
            Assert.True(status == HttpStatusCode.ServiceUnavailable && body.Contains("\"room_limit\"", StringComparison.Ordinal), $"{room}: {(int)status} {body}");
        }
        foreach (var room in running)
            await PublishAcceptedAsync(cluster[1], room, "ranking_changed", new { n = 1 });
        Assert.Equal(0, await JournalRowsAsync(database, refused));
        Assert.Equal(running.Count, await JournalRowsAsync(database, running));

        // Once the keeper leaves, its rooms stop when idle and give their slots back: a refused room starts.
        await keeper.DisposeAsync();
        var status2 = await Eventually.MatchAsync(async () => (await cluster[0].PublishAsync(refused[0], "ranking_changed", new { n = 2 })).Status,
            s => s == HttpStatusCode.Accepted, $"{refused[0]} starts once a slot is free", TimeSpan.FromSeconds(60));
        Assert.Equal(HttpStatusCode.Accepted, status2);
    }

    [Fact]
    public async Task A_connection_starts_at_most_its_new_rooms_per_minute_and_the_rooms_it_may_not_start_never_run()
    {
        // Two a minute: a token comes back every 30 s, far longer than this test takes to spend them. (A fresh
        // cluster's first rooms may take longer than the default 5 s publish timeout to start: the journal's tables are made then.)
        const int budget = 2;
        await using var cluster = await ClusterNodes.StartAsync(2, await postgres.CreateDatabaseAsync(), ClusterNodes.HoconEnvironment($$"""
            traderoom.limits.new-rooms-per-minute = {{budget}}
            traderoom.http.publish-timeout = 30s
            """));
        await PublishAcceptedAsync(cluster[1], "live", "ranking_changed", new { n = 1 });

        // Made-up rooms, one at a time, from one connection: the first two start, the others are refused.
        var (attacker, _) = await cluster[0].ConnectAsync("attacker");
        var answers = new List<(string Room, string Type, string? Code)>();
        for (var i = 0; i < 8; i++)
        {
            var room = $"made-up-{i}";
            await attacker.SubscribeAsync(room);
            var answer = await attacker.ReceiveAsync(TimeSpan.FromSeconds(20));
            answers.Add((answer.Data.GetProperty("bullPenId").GetString()!, answer.Type, answer.Type == "error" ? answer.Code : null));
        }
        Assert.Equal(
            Enumerable.Range(0, 8).Select(i => ($"made-up-{i}", i < budget ? "subscribed" : "error", i < budget ? null : "room_limit")),
            answers);

        // A running room costs nothing, so the spent connection still follows it; a refused room stays refused.
        await attacker.SubscribeAsync("live");
        Assert.Equal(1, (await attacker.ReceiveTypeAsync("subscribed")).Data.GetProperty("seq").GetInt64());
        await attacker.SubscribeAsync("made-up-7");
        var again = await attacker.ReceiveAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(("error", "room_limit", "made-up-7"), (again.Type, again.Code, again.Data.GetProperty("bullPenId").GetString()));

        // The refused rooms stopped at once: only the live room and the two started ones run, on any node's listing.
        string[] expected = ["live", "made-up-0", "made-up-1"];
        await Eventually.MatchAsync(async () => string.Join(",", (await cluster[1].GetAsServiceAsync("/api/rooms")).Json.GetProperty("rooms")
                .EnumerateArray().Select(r => r.GetProperty("bullPenId").GetString())),
            ids => ids == string.Join(",", expected), "only the rooms let in run", TimeSpan.FromSeconds(30));

        // The budget is the connection's: another one (same user, other node) starts a room of its own.
        var (other, _) = await cluster[1].ConnectAsync("attacker");
        await other.SubscribeAsync("made-up-7");
        Assert.Equal("made-up-7", (await other.ReceiveTypeAsync("subscribed")).Data.GetProperty("bullPenId").GetString());
        await other.DisposeAsync();
        await attacker.DisposeAsync();
    }

    private static async Task<long> PublishAcceptedAsync(ClusterNode node, string room, string type, object data)
    {
        var (status, seq, body) = await node.PublishAsync(room, type, data);
        Assert.True(status == HttpStatusCode.Accepted, $"publish to {room} on node {node.Index}: {(int)status} {body}");
        return seq!.Value;
    }

    private static async Task<long> JournalRowsAsync(string database, IReadOnlyList<string> rooms)
    {
        await using var connection = new Npgsql.NpgsqlConnection(database);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM journal WHERE persistence_id = ANY(@ids)";
        command.Parameters.AddWithValue("ids", rooms.Select(r => "room-" + r).ToArray());
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
