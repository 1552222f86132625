using System.Data.Common;
using Microsoft.Data.Sqlite;
using Npgsql;
using TradeRoom.Actors.Rooms;

namespace TradeRoom.Actors.Storage;

/// <summary>
/// What the server does to the rooms' database itself, beside Akka.Persistence.Sql (which owns the tables, creates
/// them and writes and reads the events): preparing the SQLite file, and retention, that is finding the rooms whose
/// last event is older than <c>rooms.retention</c> and deleting all their rows, so their next use starts afresh.
/// The tables are Akka.Persistence.Sql's default mapping: <c>journal</c> and <c>snapshot</c>.
/// </summary>
public sealed class RoomStore(PersistenceSettings settings)
{
    private const string RoomPrefix = "room-";

    /// <summary>
    /// Creates the SQLite file's folder, and switches the file to write-ahead logging (kept in the file), so readers
    /// never block the journal's writes and a commit is one append. Nothing to do for the other providers.
    /// </summary>
    public void Prepare()
    {
        if (settings.Provider != PersistenceProvider.Sqlite)
            return;
        Directory.CreateDirectory(Path.GetDirectoryName(settings.SqliteFile)!);
        using var connection = new SqliteConnection(settings.ConnectionString);
        connection.Open();
        using var wal = connection.CreateCommand();
        wal.CommandText = "PRAGMA journal_mode=WAL;";
        wal.ExecuteNonQuery();
        IndexSqliteJournal(connection);
    }

    /// <summary>
    /// Gives the SQLite journal table, once it exists, the index on (persistence_id, sequence_number) that the plugin
    /// makes on PostgreSQL but not on SQLite, where without it every room's recovery, highest-seq read and delete
    /// scanned the whole table (measured: publishing into 100 rooms, 16,092 → 20,030 events/s with it, one run each).
    /// A file made before this gets it when the server starts.
    /// </summary>
    public static void IndexSqliteJournal(DbConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'journal'";
        if (Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) == 0)
            return;
        command.CommandText = "CREATE UNIQUE INDEX IF NOT EXISTS journal_uq ON journal (persistence_id, sequence_number)";
        command.ExecuteNonQuery();
    }

    /// <summary>Up to <paramref name="limit"/> bull pens whose newest journal row (its last event) was written before <paramref name="cutoff"/>.</summary>
    public async Task<IReadOnlyList<string>> StaleRoomsAsync(DateTime cutoff, int limit, CancellationToken cancellationToken = default) =>
        (await StaleRoomsAsync(cutoff, limit, after: null, cancellationToken)).Select(r => r.BullPenId).ToList();

    /// <summary>
    /// Up to <paramref name="limit"/> bull pens whose newest journal row (its last event) was written before
    /// <paramref name="cutoff"/>, in id order after <paramref name="after"/> (null: from the first), each with the
    /// highest sequence number of its journal: where the room stood when it was found stale.
    /// </summary>
    public async Task<IReadOnlyList<StaleRoom>> StaleRoomsAsync(DateTime cutoff, int limit, string? after, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken);
        if (!await JournalExistsAsync(connection, cancellationToken))
            return []; // no room has written yet: the journal creates its tables on first use
        await using var command = connection.CreateCommand();
        // The journal keeps its highest row even when the rows before a snapshot are deleted, so MAX(created) is
        // the time of the room's last event, and MAX(sequence_number) its seq.
        command.CommandText =
            "SELECT persistence_id, MAX(sequence_number) FROM journal WHERE persistence_id LIKE 'room-%'" +
            (after is null ? "" : " AND persistence_id > @after") +
            " GROUP BY persistence_id HAVING MAX(created) < @cutoff ORDER BY persistence_id LIMIT @limit";
        Add(command, "@cutoff", cutoff.Ticks);
        Add(command, "@limit", limit);
        if (after is not null)
            Add(command, "@after", RoomActor.PersistenceIdOf(after));
        var rooms = new List<StaleRoom>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
            rooms.Add(new StaleRoom(reader.GetString(0)[RoomPrefix.Length..], reader.GetInt64(1)));
        return rooms;
    }

    /// <summary>Deletes every journal row and snapshot of <paramref name="bullPenIds"/>, in one transaction.</summary>
    public async Task PurgeAsync(IReadOnlyList<string> bullPenIds, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        foreach (var table in new[] { "journal", "snapshot" })
        {
            foreach (var id in bullPenIds)
            {
                await using var command = connection.CreateCommand();
                command.Transaction = transaction;
                command.CommandText = $"DELETE FROM {table} WHERE persistence_id = @id";
                Add(command, "@id", RoomActor.PersistenceIdOf(id));
                await command.ExecuteNonQueryAsync(cancellationToken);
            }
        }
        await transaction.CommitAsync(cancellationToken);
    }

    private async Task<bool> JournalExistsAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = settings.Provider == PersistenceProvider.Sqlite
            ? "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'journal'"
            : "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'journal'";
        return Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken), System.Globalization.CultureInfo.InvariantCulture) > 0;
    }

    /// <summary>Whether a connection to the database opens now.</summary>
    public async Task<bool> CanConnectAsync()
    {
        try
        {
            await using var connection = await OpenAsync(CancellationToken.None);
            return true;
        }
        catch (DbException)
        {
            return false;
        }
    }

    private async Task<DbConnection> OpenAsync(CancellationToken cancellationToken)
    {
        DbConnection connection = settings.Provider switch
        {
            PersistenceProvider.Sqlite => new SqliteConnection(settings.ConnectionString),
            PersistenceProvider.PostgreSql => new NpgsqlConnection(settings.ConnectionString),
            _ => throw new InvalidOperationException("the memory provider has no database"),
        };
        await connection.OpenAsync(cancellationToken);
        return connection;
    }

    private static void Add(DbCommand command, string name, object value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.Value = value;
        command.Parameters.Add(parameter);
    }
}

/// <summary>A room whose last event is older than the retention, and the seq its journal ends at.</summary>
public sealed record StaleRoom(string BullPenId, long Seq);
