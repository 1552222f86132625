using System.Data;
using Akka.Configuration;
using Akka.Persistence;
using Akka.Persistence.Sql;
using Akka.Persistence.Sql.Config;
using Akka.Persistence.Sql.Snapshot;

namespace TradeRoom.Actors.Storage;

/// <summary>
/// Akka.Persistence.Sql's snapshot store with its writes (saves and deletes) going through the journal's
/// <see cref="JournalWriter"/> (<c>persistence.*.group-commit</c>), so the database has one writer: on SQLite a snapshot
/// written on a connection of its own held the file's lock while the events of every room waited, asleep in SQLite's
/// busy handler, for up to seconds; on PostgreSQL it is one round trip fewer per snapshot and delete. The rows are
/// those the plugin's serializer makes, in its table; loading is a plain query too (<see cref="LoadAsync"/>), read
/// with the plugin's deserializer.
/// </summary>
public sealed class GroupCommitSnapshotStore : SqlSnapshotStore
{
    private readonly GroupCommitSetup _setup;
    private readonly JournalWriter _writer;
    private readonly ByteArrayLongSnapshotSerializer _serializer;
    private readonly StoreStatement _save;
    private readonly StoreStatement _delete;
    private readonly StoreStatement _deleteOne;
    private readonly string _loadSql;

    public GroupCommitSnapshotStore(Config snapshotConfig) : base(snapshotConfig)
    {
        var setup = Context.System.Settings.Setup.Get<GroupCommitSetup>();
        if (!setup.HasValue)
            throw new ConfigurationException($"{nameof(GroupCommitSnapshotStore)} needs a {nameof(GroupCommitSetup)} in the actor system's setup (AddTradeRoomPersistence adds it)");
        _setup = setup.Value;
        _writer = _setup.Writer;
        var config = new SnapshotConfig(snapshotConfig.WithFallback(SqlPersistence.DefaultSnapshotConfiguration));
        _serializer = new ByteArrayLongSnapshotSerializer(Context.System.Serialization, config);
        var table = StoreStatement.Table(config.TableConfig.SchemaName, config.TableConfig.SnapshotTable.Name);
        var c = config.TableConfig.SnapshotTable.ColumnNames;
        var (pid, seq, created) = (StoreStatement.Quote(c.PersistenceId), StoreStatement.Quote(c.SequenceNumber), StoreStatement.Quote(c.Created));
        // An upsert, as the plugin's save: it replaces a snapshot of the same room and seq.
        var (payload, manifest, serializerId) = (StoreStatement.Quote(c.Snapshot), StoreStatement.Quote(c.Manifest), StoreStatement.Quote(c.SerializerId));
        var insert = $"INTO {table} ({pid}, {seq}, {created}, {payload}, {manifest}, {serializerId}) VALUES (@p0, @p1, @p2, @p3, @p4, @p5)";
        _save = new StoreStatement(setup.Value.Provider == PersistenceProvider.Sqlite
                ? "INSERT OR REPLACE " + insert
                : $"INSERT {insert} ON CONFLICT ({pid}, {seq}) DO UPDATE SET {created} = EXCLUDED.{created}, {payload} = EXCLUDED.{payload}, " +
                  $"{manifest} = EXCLUDED.{manifest}, {serializerId} = EXCLUDED.{serializerId}",
            DbType.String, DbType.Int64, DbType.Int64, DbType.Binary, DbType.String, DbType.Int32);
        _delete = new StoreStatement($"DELETE FROM {table} WHERE {pid} = @p0 AND {seq} <= @p1 AND {created} <= @p2",
            DbType.String, DbType.Int64, DbType.Int64);
        _loadSql = $"SELECT {seq}, {created}, {payload}, {manifest}, {serializerId} FROM {table} " +
                   $"WHERE {pid} = @p0 AND {seq} <= @p1 AND {created} <= @p2 ORDER BY {seq} DESC LIMIT 1";
        _deleteOne = new StoreStatement($"DELETE FROM {table} WHERE {pid} = @p0 AND {seq} = @p1 AND {created} <= @p2",
            DbType.String, DbType.Int64, DbType.Int64);
    }

    /// <summary>
    /// A room's latest snapshot within <paramref name="criteria"/>, read with one plain query
    /// (<see cref="GroupCommitSetup.ReadAsync{T}"/>) and the plugin's deserializer.
    /// </summary>
    protected override Task<SelectedSnapshot?> LoadAsync(string persistenceId, SnapshotSelectionCriteria criteria, CancellationToken cancellationToken) =>
        _setup.ReadAsync(async connection =>
        {
            await using var command = connection.CreateCommand();
            command.CommandText = _loadSql;
            StoreStatement.AddValue(command, persistenceId);
            StoreStatement.AddValue(command, criteria.MaxSequenceNr);
            StoreStatement.AddValue(command, criteria.MaxTimeStamp.Ticks);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            if (!await reader.ReadAsync(cancellationToken))
                return null;
            var row = new LongSnapshotRow
            {
                PersistenceId = persistenceId,
                SequenceNumber = reader.GetInt64(0),
                Created = reader.GetInt64(1),
                Payload = (byte[])reader.GetValue(2),
                Manifest = reader.IsDBNull(3) ? "" : reader.GetString(3),
                SerializerId = reader.IsDBNull(4) ? null : reader.GetInt32(4),
            };
            return (SelectedSnapshot?)_serializer.Deserialize(row).Get();
        }, cancellationToken);

    protected override Task SaveAsync(SnapshotMetadata metadata, object snapshot, CancellationToken cancellationToken)
    {
        var row = _serializer.Serialize(metadata, snapshot).Get();
        return _writer.Write([new StoreStep(_save, [row.PersistenceId, row.SequenceNumber, row.Created, row.Payload, row.Manifest, row.SerializerId])],
            cancellationToken);
    }

    protected override Task DeleteAsync(SnapshotMetadata metadata, CancellationToken cancellationToken)
    {
        // As the plugin: that seq, and no newer than the timestamp when one is given.
        var newest = metadata.Timestamp > DateTime.MinValue ? metadata.Timestamp.Ticks : long.MaxValue;
        return _writer.Write([new StoreStep(_deleteOne, [metadata.PersistenceId, metadata.SequenceNr, newest])], cancellationToken);
    }

    protected override Task DeleteAsync(string persistenceId, SnapshotSelectionCriteria criteria, CancellationToken cancellationToken) =>
        _writer.Write([new StoreStep(_delete, [persistenceId, criteria.MaxSequenceNr, criteria.MaxTimeStamp.Ticks])], cancellationToken);
}
