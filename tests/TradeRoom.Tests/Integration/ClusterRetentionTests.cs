using System.Net;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Integration;

/// <summary>
/// Issue 12, retention in cluster mode: two real server processes on one PostgreSQL journal, with a retention of
/// seconds. The data of a room unused for its retention is deleted (by the room itself, which one sweeper in the
/// cluster asks), and its next use starts afresh in a new epoch; a room that runs keeps its data whatever its age.
/// Before, only the single-node registry swept, and a cluster kept every room's data forever.
/// </summary>
[Collection(ProcessEnvironmentCollection.Name)]
public sealed class ClusterRetentionTests(PostgresServer postgres) : IClassFixture<PostgresServer>
{
    [Fact]
    public async Task The_data_of_a_room_unused_for_its_retention_is_deleted_its_next_use_starts_afresh_and_a_running_room_keeps_its_data()
    {
        var database = await postgres.CreateDatabaseAsync();
        // A fresh cluster's first rooms may take longer than the default 5 s to start (the journal's tables are made then).
        await using var cluster = await ClusterNodes.StartAsync(2, database, ClusterNodes.HoconEnvironment("""
            traderoom.rooms { idle-timeout = 1s, empty-room-timeout = 1s, retention = 3s, retention-sweep-interval = 500ms }
            traderoom.http.publish-timeout = 30s
            """));

        // "busy" is followed all along, from node 1; "old" is left after its events.
        var (follower, _) = await cluster[1].ConnectAsync("follower");
        await follower.SubscribeAsync("busy");
        var busyEpoch = (await follower.ReceiveTypeAsync("subscribed", TimeSpan.FromSeconds(30))).Data.GetProperty("epoch").GetString()!;
        foreach (var room in new[] { "old", "busy" })
        {
            await PublishAcceptedAsync(cluster[0], room, "leaderboard_update", new { entries = Array.Empty<object>() });
            await PublishAcceptedAsync(cluster[1], room, "ranking_changed", new { n = 2 });
        }
        Assert.True(await ScalarAsync(database, "SELECT COUNT(*) FROM journal WHERE persistence_id = 'room-old'") > 0);
        Assert.Equal(1, (await follower.ReceiveAsync()).Seq);
        Assert.Equal(2, (await follower.ReceiveAsync()).Seq);
        string oldEpoch;
        var (viewer, _) = await cluster[0].ConnectAsync("viewer");
        await using (viewer)
        {
            await viewer.SubscribeAsync("old");
            oldEpoch = (await viewer.ReceiveTypeAsync("subscribed")).Data.GetProperty("epoch").GetString()!;
        }

        await Eventually.MatchAsync(() => ScalarAsync(database, "SELECT COUNT(*) FROM journal WHERE persistence_id = 'room-old'"),
            rows => rows == 0, "retention deleted the journal of room old", TimeSpan.FromSeconds(60));
        Assert.Equal(0, await ScalarAsync(database, "SELECT COUNT(*) FROM snapshot WHERE persistence_id = 'room-old'"));

        // Its next use starts afresh: a resume from before is not recovered, and the epoch is new.
        var (again, _) = await cluster[1].ConnectAsync("viewer");
        await using var againScope = again;
        await again.SendAsync(new { type = "subscribe_room", data = new { bullPenId = "old", sinceSeq = 2, epoch = oldEpoch } });
        var fresh = await again.ReceiveTypeAsync("subscribed", TimeSpan.FromSeconds(20));
        Assert.False(fresh.Data.GetProperty("recovered").GetBoolean());
        Assert.NotEqual(oldEpoch, fresh.Data.GetProperty("epoch").GetString());
        Assert.Equal(0, fresh.Data.GetProperty("seq").GetInt64());
        Assert.Equal("""{"leaderboard":null,"room":null,"members":[]}""", fresh.Data.GetProperty("state").GetRawText());

        // "busy" is as old, but runs (followed all along): its data is there, and it numbers on in its epoch.
        Assert.True(await ScalarAsync(database, "SELECT COUNT(*) FROM journal WHERE persistence_id = 'room-busy'") > 0);
        var (_, seq, _) = await cluster[0].PublishAsync("busy", "ranking_changed", new { n = 3 });
        Assert.Equal(3, seq);
        var next = await follower.ReceiveAsync();
        Assert.Equal(("ranking_changed", 3L), (next.Type, next.Seq));
        await follower.SendAsync(new { type = "subscribe_room", data = new { bullPenId = "busy", sinceSeq = 1, epoch = busyEpoch } });
        Assert.True((await follower.ReceiveTypeAsync("subscribed")).Data.GetProperty("recovered").GetBoolean());
        await follower.DisposeAsync();
    }

    private static async Task<long> PublishAcceptedAsync(ClusterNode node, string room, string type, object data)
    {
        var (status, seq, body) = await node.PublishAsync(room, type, data);
        Assert.True(status == HttpStatusCode.Accepted, $"publish to {room} on node {node.Index}: {(int)status} {body}");
        return seq!.Value;
    }

    private static async Task<long> ScalarAsync(string database, string sql)
    {
        await using var connection = new Npgsql.NpgsqlConnection(database);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
