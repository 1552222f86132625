using System.Net;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Integration;

/// <summary>
/// Issue 11 against the real host on a real database, SQLite and PostgreSQL: a room stopped for idleness comes back
/// the same, retention deletes a room's data, and the journal stays bounded over a long stream. On SQLite also: an
/// event the store refused reaches nobody and gets a 503, and the room recovers by itself when the store is back.
/// </summary>
public abstract class DurableRoomTests
{
    /// <summary>A server on a fresh database of the provider, with <paramref name="hocon"/> over the test defaults.</summary>
    protected abstract Task<TestServer> StartAsync(string? hocon = null);

    /// <summary>The provider's section in <c>traderoom.persistence</c>: sqlite or postgresql.</summary>
    protected abstract string Provider { get; }

    /// <summary>The one value <paramref name="sql"/> selects from the server's database.</summary>
    protected abstract Task<long> ScalarAsync(TestServer server, string sql);

    protected static async Task<Frame> SubscribeAsync(WsClient client, string bullPenId, long? sinceSeq = null, string? epoch = null)
    {
        await client.SendAsync(new { type = "subscribe_room", data = new { bullPenId, sinceSeq, epoch } });
        return await client.ReceiveTypeAsync("subscribed");
    }

    private static Task<int> RunningRoomsAsync(TestServer server) =>
        server.GetJsonAsync("/api/health").ContinueWith(t => t.Result.Json.GetProperty("rooms").GetInt32());

    [Fact]
    public async Task The_journal_and_the_snapshot_store_start_with_the_server_before_any_room_is_used()
    {
        await using var server = await StartAsync();
        // Their start creates their tables: here on a fresh database where no room has been used yet. (Started with
        // the first room instead, they made the first subscriber after a restart wait for them.)
        var tables = Provider == "sqlite"
            ? "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('journal', 'snapshot')"
            : "SELECT COUNT(*) FROM information_schema.tables WHERE table_name IN ('journal', 'snapshot')";
        await Eventually.MatchAsync(() => ScalarAsync(server, tables), count => count == 2, "both tables exist", TimeSpan.FromSeconds(15));
        Assert.Equal(0, (await server.GetJsonAsync("/api/health")).Json.GetProperty("rooms").GetInt32());
    }

    [Fact]
    public async Task A_room_stopped_for_idleness_comes_back_with_its_epoch_seq_state_and_history()
    {
        await using var server = await StartAsync("traderoom.rooms { idle-timeout = 1s, empty-room-timeout = 1s }");
        await server.PublishAsync("cup", "room_started", new { name = "Cup" });
        await server.PublishAsync("cup", "member_joined", new { userId = "u1" });
        await server.PublishAsync("cup", "leaderboard_update", new { entries = new[] { new { userId = "u1", rank = 1 } } });
        await server.PublishAsync("cup", "ranking_changed", new { n = 4 });
        await server.PublishAsync("cup", "ranking_changed", new { n = 5 });

        string epoch, state;
        List<string> tail;
        await using (var before = await server.ConnectAsync("viewer"))
        {
            var subscribed = await SubscribeAsync(before, "cup", sinceSeq: 3, epoch: null);
            epoch = subscribed.Data.GetProperty("epoch").GetString()!;
            state = subscribed.Data.GetProperty("state").GetRawText();
            await before.SendAsync(new { type = "subscribe_room", data = new { bullPenId = "cup", sinceSeq = 3, epoch } });
            await before.ReceiveTypeAsync("subscribed");
            tail = [(await before.ReceiveAsync()).Raw, (await before.ReceiveAsync()).Raw];
        }
        await Eventually.MatchAsync(() => RunningRoomsAsync(server), rooms => rooms == 0, "the idle room stopped", TimeSpan.FromSeconds(15));

        await using var after = await server.ConnectAsync("viewer");
        var back = await SubscribeAsync(after, "cup", sinceSeq: 3, epoch: epoch);
        Assert.True(back.Data.GetProperty("recovered").GetBoolean(), back.Raw);
        Assert.Equal(epoch, back.Data.GetProperty("epoch").GetString());
        Assert.Equal(5, back.Data.GetProperty("seq").GetInt64());
        Assert.Equal(state, back.Data.GetProperty("state").GetRawText());
        Assert.Equal(tail, [(await after.ReceiveAsync()).Raw, (await after.ReceiveAsync()).Raw]);
        Assert.Equal(6, await server.PublishAsync("cup", "ranking_changed", new { n = 6 }));
        Assert.Equal(6, (await after.ReceiveAsync()).Seq);
    }

    [Fact]
    public async Task Retention_deletes_the_data_of_a_room_unused_for_its_time_and_its_next_use_starts_afresh()
    {
        await using var server = await StartAsync("""
            traderoom.rooms { idle-timeout = 1s, empty-room-timeout = 1s, retention = 3s, retention-sweep-interval = 500ms }
            """);
        await server.PublishAsync("old", "leaderboard_update", new { entries = Array.Empty<object>() });
        await server.PublishAsync("old", "ranking_changed", new { n = 2 });
        string epoch;
        await using (var client = await server.ConnectAsync("viewer"))
            epoch = (await SubscribeAsync(client, "old")).Data.GetProperty("epoch").GetString()!;
        Assert.True(await ScalarAsync(server, "SELECT COUNT(*) FROM journal WHERE persistence_id = 'room-old'") > 0);

        await Eventually.MatchAsync(() => ScalarAsync(server, "SELECT COUNT(*) FROM journal WHERE persistence_id = 'room-old'"),
            rows => rows == 0, "retention deleted the room's journal", TimeSpan.FromSeconds(30));
        Assert.Equal(0, await ScalarAsync(server, "SELECT COUNT(*) FROM snapshot WHERE persistence_id = 'room-old'"));

        await using var again = await server.ConnectAsync("viewer");
        var fresh = await SubscribeAsync(again, "old", sinceSeq: 2, epoch: epoch);
        Assert.False(fresh.Data.GetProperty("recovered").GetBoolean());
        Assert.NotEqual(epoch, fresh.Data.GetProperty("epoch").GetString());
        Assert.Equal(0, fresh.Data.GetProperty("seq").GetInt64());
        Assert.Equal("""{"leaderboard":null,"room":null,"members":[]}""", fresh.Data.GetProperty("state").GetRawText());
    }

    [Theory]
    [InlineData("on")]
    [InlineData("off")]
    public async Task Events_snapshots_and_deletes_are_written_through_group_commit_when_it_is_on_and_through_the_plugin_when_off(string groupCommit)
    {
        await using var server = await StartAsync($"traderoom.persistence.{Provider}.group-commit = {groupCommit}\ntraderoom.persistence.snapshot-every = 20");
        // One request for ten rooms: their writes reach the journal together.
        var events = Enumerable.Range(0, 50).Select(i => "{\"bullPenId\":\"g" + (i % 10) + "\",\"type\":\"ranking_changed\",\"data\":{\"n\":" + i + "}}");
        var published = await server.PostJsonAsync("/api/events", "[" + string.Join(",", events) + "]");
        Assert.Equal(HttpStatusCode.Accepted, published.Status);

        var metrics = await server.ScrapeAsync();
        Assert.Equal(50, metrics["traderoom_events_persisted_total"]);
        var transactions = metrics["traderoom_journal_transactions_total"];
        if (groupCommit == "on")
            Assert.InRange(transactions, 1, 50);
        else
            Assert.Equal(0, transactions);
        Assert.Equal(50, await ScalarAsync(server, "SELECT COUNT(*) FROM journal"));
        Assert.Equal(10, await ScalarAsync(server, "SELECT COUNT(DISTINCT persistence_id) FROM journal"));

        // 25 events into one room: a snapshot at 20, then the journal's rows before it deleted (the 20th kept, marked).
        var more = Enumerable.Range(0, 25).Select(i => "{\"bullPenId\":\"s\",\"type\":\"ranking_changed\",\"data\":{\"n\":" + i + "}}");
        Assert.Equal(HttpStatusCode.Accepted, (await server.PostJsonAsync("/api/events", "[" + string.Join(",", more) + "]")).Status);
        await Eventually.MatchAsync(() => ScalarAsync(server, "SELECT COUNT(*) FROM journal WHERE persistence_id = 'room-s'"),
            rows => rows == 6, "the journal of room s trimmed to its snapshot", TimeSpan.FromSeconds(30));
        Assert.Equal(20, await ScalarAsync(server, "SELECT MIN(sequence_number) FROM journal WHERE persistence_id = 'room-s'"));
        Assert.Equal(20, await ScalarAsync(server, "SELECT MAX(sequence_number) FROM snapshot WHERE persistence_id = 'room-s'"));
        Assert.Equal(1, await ScalarAsync(server, "SELECT COUNT(*) FROM journal WHERE persistence_id = 'room-s' AND sequence_number = 20 AND deleted"));

        // And the room comes back from them: its snapshot, then the rows after it.
        await using var client = await server.ConnectAsync("viewer");
        var resumed = await SubscribeAsync(client, "s", sinceSeq: 0);
        Assert.Equal(25, resumed.Data.GetProperty("seq").GetInt64());
    }

    [Fact]
    public async Task The_journal_stays_bounded_over_a_long_stream_and_the_room_still_resumes_from_its_snapshot()
    {
        await using var server = await StartAsync("traderoom.persistence.snapshot-every = 100");
        await using var client = await server.ConnectAsync("viewer");
        var epoch = (await SubscribeAsync(client, "long")).Data.GetProperty("epoch").GetString()!;
        const int total = 1200;
        for (var batch = 0; batch < total / 100; batch++)
        {
            var events = Enumerable.Range(0, 100).Select(i => new { bullPenId = "long", type = "ranking_changed", data = new { n = batch * 100 + i } });
            using var response = await server.PostAsync("/api/events", JsonSerializer.Serialize(events));
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        }

        // Each snapshot lets the journal before it go: at most one snapshot interval of rows stays (plus the highest,
        // kept to remember the sequence number), whatever the stream's length.
        await Eventually.MatchAsync(() => ScalarAsync(server, "SELECT COUNT(*) FROM journal WHERE persistence_id = 'room-long'"),
            rows => rows <= 101, "the journal trimmed to the last snapshot", TimeSpan.FromSeconds(30));
        await Eventually.MatchAsync(() => ScalarAsync(server, "SELECT COUNT(*) FROM snapshot WHERE persistence_id = 'room-long'"),
            rows => rows == 1, "one snapshot kept", TimeSpan.FromSeconds(30));

        // A resume inside the history window (1,000 events) is served from the snapshot's history.
        await using var late = await server.ConnectAsync("late");
        var resumed = await SubscribeAsync(late, "long", sinceSeq: total - 900, epoch: epoch);
        Assert.True(resumed.Data.GetProperty("recovered").GetBoolean(), resumed.Raw);
        for (var seq = total - 899; seq <= total; seq++)
            Assert.Equal(seq, (await late.ReceiveAsync()).Seq);
    }
}

public sealed class SqliteDurableRoomTests : DurableRoomTests
{
    protected override string Provider => "sqlite";

    protected override Task<TestServer> StartAsync(string? hocon = null) => TestServer.StartAsync(hocon);

    protected override async Task<long> ScalarAsync(TestServer server, string sql)
    {
        await using var connection = new SqliteConnection($"Data Source={DatabaseFile(server)}");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static string DatabaseFile(TestServer server) =>
        server.App.Services.GetRequiredService<TradeRoom.Actors.TradeRoomSettings>().Persistence.SqliteFile!;

    [Fact]
    public async Task The_journal_is_indexed_by_room_and_seq_on_a_new_file_and_on_a_file_made_without_the_index()
    {
        // A new file: the plugin makes the table as the journal starts, the writer indexes it before its first write.
        await using (var server = await StartAsync())
        {
            var published = await server.PostJsonAsync("/api/events", """[{"bullPenId":"ix","type":"ranking_changed","data":{}}]""");
            Assert.Equal(HttpStatusCode.Accepted, published.Status);
            Assert.Equal("persistence_id,sequence_number", await JournalIndexAsync(DatabaseFile(server)));
        }

        // A file made before the index: it gets it when the server starts, before any write.
        var folder = TestDatabase.NewSqliteFolder();
        try
        {
            var file = Path.Combine(folder, "old.db");
            await using (var old = new SqliteConnection($"Data Source={file};Pooling=False"))
            {
                await old.OpenAsync();
                await using var create = old.CreateCommand();
                create.CommandText = """
                    CREATE TABLE [journal] ([ordering] INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, [created] INTEGER NOT NULL,
                      [deleted] Bit NOT NULL, [persistence_id] NVarChar(255) NOT NULL, [sequence_number] INTEGER NOT NULL,
                      [message] VarBinary NOT NULL, [tags] NVarChar(100) NULL, [manifest] NVarChar(500) NULL,
                      [identifier] INTEGER NULL, [writer_uuid] NVarChar(128) NULL)
                    """;
                await create.ExecuteNonQueryAsync();
            }
            Assert.Equal("", await JournalIndexAsync(file));
            await using var server = await StartAsync($"traderoom.persistence.sqlite.file = \"{file}\"");
            Assert.Equal("persistence_id,sequence_number", await JournalIndexAsync(file));
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            TestDatabase.Delete(folder);
        }
    }

    /// <summary>The columns of the journal's unique index, in order; empty without one.</summary>
    private static async Task<string> JournalIndexAsync(string file)
    {
        await using var connection = new SqliteConnection($"Data Source={file};Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT group_concat(ii.name) FROM pragma_index_list('journal') il, pragma_index_info(il.name) ii WHERE il.[unique] = 1 AND il.origin = 'c'";
        return await command.ExecuteScalarAsync() as string ?? "";
    }

    [Fact]
    public async Task An_event_the_store_refuses_gets_503_reaches_no_client_and_the_room_recovers_with_its_followers_when_the_store_is_back()
    {
        await using var server = await StartAsync();
        await using var client = await server.ConnectAsync("follower");
        await SubscribeAsync(client, "desk");
        Assert.Equal(1, await server.PublishAsync("desk", "ranking_changed", new { n = 1 }));
        Assert.Equal(1, (await client.ReceiveAsync()).Seq);

        // Another writer holds the file's write lock: the journal cannot store anything. (Unpooled: disposing the
        // connection must close it, and so end its transaction.)
        var locker = new SqliteConnection($"Data Source={DatabaseFile(server)};Pooling=False");
        await locker.OpenAsync();
        await using (var begin = locker.CreateCommand())
        {
            begin.CommandText = "BEGIN EXCLUSIVE;";
            await begin.ExecuteNonQueryAsync();
        }

        var refused = await server.PostJsonAsync("/api/rooms/desk/events", """{"type":"ranking_changed","data":{"n":"refused"}}""");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.Status);
        Assert.Equal("storage_unavailable", refused.ErrorCode);
        var health = await server.GetJsonAsync("/api/health");
        Assert.Equal("degraded", health.Json.GetProperty("status").GetString());
        Assert.Contains("store", health.Json.GetProperty("reason").GetString());
        Assert.Null(await client.TryReceiveAsync(TimeSpan.FromMilliseconds(500)));

        await locker.DisposeAsync(); // the lock goes with the connection (its transaction rolls back)

        // The room comes back by itself and takes its follower back: the next accepted event reaches it, numbered
        // right after the last stored one, and the refused event never shows up.
        var next = await Eventually.MatchAsync(async () =>
        {
            using var response = await server.PostAsync("/api/rooms/desk/events", """{"type":"ranking_changed","data":{"n":"after"}}""");
            return response.StatusCode;
        }, status => status == HttpStatusCode.Accepted, "a publish accepted once the store is back", TimeSpan.FromSeconds(30));
        var delivered = await client.ReceiveAsync();
        Assert.Equal(2, delivered.Seq);
        Assert.Contains("after", delivered.Raw);
        Assert.Equal("ok", (await server.GetJsonAsync("/api/health")).Json.GetProperty("status").GetString());
    }
}

[Collection(PostgresCollection.Name)]
public sealed class PostgresDurableRoomTests(PostgresServer postgres) : DurableRoomTests
{
    private readonly Dictionary<TestServer, string> _databases = [];

    protected override string Provider => "postgresql";

    protected override async Task<TestServer> StartAsync(string? hocon = null)
    {
        var database = await postgres.CreateDatabaseAsync();
        var server = await TestServer.StartAsync($$"""
            traderoom.persistence { provider = postgresql, postgresql.connection-string = "{{database}}" }
            {{hocon}}
            """);
        _databases[server] = database;
        return server;
    }

    protected override async Task<long> ScalarAsync(TestServer server, string sql)
    {
        await using var connection = new Npgsql.NpgsqlConnection(_databases[server]);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
