using Npgsql;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Integration;

/// <summary>The throwaway PostgreSQL the storage tests run against: real, writable, ours, one database per test.</summary>
[Collection(PostgresCollection.Name)]
public class PostgresServerTests(PostgresServer postgres)
{
    [Fact]
    public async Task A_fresh_database_on_the_throwaway_server_stores_and_returns_rows()
    {
        var connectionString = await postgres.CreateDatabaseAsync();
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();

        // The instance the fixture started, in its temp folder: not some server left running on this machine.
        Assert.StartsWith(Path.GetTempPath(), await ScalarAsync<string>(connection, "SHOW data_directory"));
        Assert.Equal(0L, await ScalarAsync<long>(connection, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"));

        await ExecuteAsync(connection, "CREATE TABLE fills (seq bigint PRIMARY KEY, trader text NOT NULL, qty int NOT NULL)");
        await ExecuteAsync(connection, "INSERT INTO fills VALUES (1, 'ada', 10), (2, 'bob', -4), (3, 'ada', 7)");

        var rows = new List<(long, string, int)>();
        await using (var select = new NpgsqlCommand("SELECT seq, trader, qty FROM fills ORDER BY seq", connection))
        await using (var reader = await select.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
                rows.Add((reader.GetInt64(0), reader.GetString(1), reader.GetInt32(2)));
        }
        Assert.Equal([(1L, "ada", 10), (2L, "bob", -4), (3L, "ada", 7)], rows);
    }

    [Fact]
    public async Task Two_fresh_databases_do_not_see_each_others_tables()
    {
        await using var first = new NpgsqlConnection(await postgres.CreateDatabaseAsync());
        await using var second = new NpgsqlConnection(await postgres.CreateDatabaseAsync());
        await first.OpenAsync();
        await second.OpenAsync();
        Assert.NotEqual(first.Database, second.Database);

        await ExecuteAsync(first, "CREATE TABLE journal (n int)");
        await ExecuteAsync(first, "INSERT INTO journal VALUES (1), (2)");

        Assert.Null(await ScalarAsync<string?>(second, "SELECT to_regclass('journal')::text"));
        await ExecuteAsync(second, "CREATE TABLE journal (n int)");
        await ExecuteAsync(second, "INSERT INTO journal VALUES (9)");
        Assert.Equal(2L, await ScalarAsync<long>(first, "SELECT count(*) FROM journal"));
        Assert.Equal(9, await ScalarAsync<int>(second, "SELECT n FROM journal"));
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        var value = await command.ExecuteScalarAsync();
        return value is DBNull ? default! : (T)value!;
    }
}
