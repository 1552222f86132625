using Akka.Configuration;
using LinqToDB.Data;
using Microsoft.Data.Sqlite;
using TradeRoom.Actors.Hosting;
using TradeRoom.Actors.Storage;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Rooms;

/// <summary>
/// The SQLite connections the journal and the snapshot store open (through <see cref="TradeRoomActorsExtensions.SqliteDataOptions"/>)
/// run in the synchronous mode <c>persistence.sqlite.synchronous</c> names, which SQLite keeps per connection, not in the file.
/// </summary>
public sealed class SqliteConnectionTests : IDisposable
{
    private readonly string _folder = TestDatabase.NewSqliteFolder();

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        TestDatabase.Delete(_folder);
    }

    private PersistenceSettings Settings(string synchronous)
    {
        var shipped = ConfigurationFactory.ParseString(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "hocon", "traderoom.conf")));
        var file = Path.Combine(_folder, "traderoom.db");
        var config = ConfigurationFactory.ParseString($"traderoom.persistence.sqlite {{ file = \"{file}\", synchronous = {synchronous} }}")
            .WithFallback(shipped);
        var settings = PersistenceSettings.FromConfig(config.GetConfig("traderoom"));
        new RoomStore(settings).Prepare();
        return settings;
    }

    private static long Synchronous(DataConnection connection) => connection.Execute<long>("PRAGMA synchronous");

    [Theory]
    [InlineData("normal", 1)]
    [InlineData("full", 2)]
    public void Every_connection_runs_in_the_configured_synchronous_mode(string synchronous, long expected)
    {
        var settings = Settings(synchronous);
        var options = TradeRoomActorsExtensions.SqliteDataOptions(settings)!;

        // Twice: the second connection comes from Microsoft.Data.Sqlite's pool, and is set again all the same.
        using (var first = new DataConnection(options))
            Assert.Equal(expected, Synchronous(first));
        using (var second = new DataConnection(options))
            Assert.Equal(expected, Synchronous(second));
    }

    [Fact]
    public void Without_the_setting_a_connection_would_run_in_SQLite_s_own_default_FULL()
    {
        // What makes the test above able to fail: the file does not carry the mode to a plain connection.
        var settings = Settings("normal");
        using (var journal = new DataConnection(TradeRoomActorsExtensions.SqliteDataOptions(settings)!))
            Assert.Equal(1, Synchronous(journal));
        using var plain = new SqliteConnection(settings.ConnectionString + ";Pooling=False");
        plain.Open();
        using var command = plain.CreateCommand();
        command.CommandText = "PRAGMA synchronous";
        Assert.Equal(2L, (long)command.ExecuteScalar()!);
    }
}
