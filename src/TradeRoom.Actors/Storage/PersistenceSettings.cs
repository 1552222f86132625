using Akka.Configuration;

namespace TradeRoom.Actors.Storage;

public enum PersistenceProvider
{
    Sqlite,
    PostgreSql,
    Memory,
}

/// <summary>Where rooms keep their events and snapshots: <c>traderoom.persistence</c> in the HOCON.</summary>
/// <param name="ConnectionString">The ADO.NET connection string: built from the file for SQLite, as configured for PostgreSQL, empty for memory.</param>
/// <param name="SqliteFile">The SQLite file's full path (SQLite only).</param>
/// <param name="Writers">Write transactions the journal runs at once, when the provider sets it (SQLite: <c>sqlite.writers</c>).</param>
/// <param name="SqliteSynchronous">SQLite's <c>PRAGMA synchronous</c> on every connection: <c>NORMAL</c> or <c>FULL</c> (SQLite only).</param>
/// <param name="GroupCommit">Events, snapshots and deletes are written by the server's group commit (<see cref="JournalWriter"/>) rather than the plugin's own write paths (<c>sqlite.group-commit</c>, <c>postgresql.group-commit</c>).</param>
public sealed record PersistenceSettings(PersistenceProvider Provider, string ConnectionString, string? SqliteFile, int? Writers = null,
    string? SqliteSynchronous = null, bool GroupCommit = false)
{
    /// <summary>The linq2db provider name Akka.Persistence.Sql connects with.</summary>
    public string LinqToDbProvider => Provider switch
    {
        PersistenceProvider.Sqlite => LinqToDB.ProviderName.SQLiteMS,
        PersistenceProvider.PostgreSql => LinqToDB.ProviderName.PostgreSQL15,
        _ => throw new InvalidOperationException("the memory provider has no database"),
    };

    /// <param name="traderoom">The <c>traderoom</c> section.</param>
    public static PersistenceSettings FromConfig(Config traderoom)
    {
        var c = traderoom.GetConfig("persistence");
        var provider = c.GetString("provider") switch
        {
            "sqlite" => PersistenceProvider.Sqlite,
            "postgresql" => PersistenceProvider.PostgreSql,
            "memory" => PersistenceProvider.Memory,
            var other => throw new ConfigurationException(
                $"traderoom.persistence.provider is \"{other}\"; use sqlite (the default), postgresql or memory"),
        };
        switch (provider)
        {
            case PersistenceProvider.Sqlite:
                var file = c.GetString("sqlite.file");
                if (string.IsNullOrWhiteSpace(file))
                    throw new ConfigurationException("traderoom.persistence.sqlite.file is empty; name the database file (default data/traderoom.db)");
                var path = Path.GetFullPath(file);
                // A write that waits longer than this for the file's lock fails, before the journal's own call
                // timeout gives up on it: a refused event is then surely not stored.
                var busy = (int)Math.Ceiling(c.GetTimeSpan("sqlite.busy-timeout").TotalSeconds);
                var synchronous = c.GetString("sqlite.synchronous") switch
                {
                    "normal" => "NORMAL",
                    "full" => "FULL",
                    var other => throw new ConfigurationException(
                        $"traderoom.persistence.sqlite.synchronous is \"{other}\"; use normal (the default) or full"),
                };
                return new PersistenceSettings(provider, $"Data Source={path};Default Timeout={busy}", path, c.GetInt("sqlite.writers"), synchronous,
                    c.GetBoolean("sqlite.group-commit"));
            case PersistenceProvider.PostgreSql:
                var connectionString = c.GetString("postgresql.connection-string");
                if (string.IsNullOrWhiteSpace(connectionString))
                    throw new ConfigurationException(
                        "traderoom.persistence.provider is postgresql but no connection string is set: set TRADEROOM_DB " +
                        "(e.g. Host=db;Database=traderoom;Username=traderoom;Password=...) or traderoom.persistence.postgresql.connection-string");
                return new PersistenceSettings(provider, connectionString, null, GroupCommit: c.GetBoolean("postgresql.group-commit"));
            default:
                return new PersistenceSettings(provider, "", null);
        }
    }
}
