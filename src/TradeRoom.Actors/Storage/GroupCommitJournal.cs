using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Data.Common;
using Akka.Actor;
using Akka.Actor.Setup;
using Akka.Configuration;
using Akka.Persistence;
using Akka.Persistence.Sql;
using Akka.Persistence.Sql.Config;
using Akka.Persistence.Sql.Journal;
using Akka.Persistence.Sql.Journal.Dao;
using Akka.Persistence.Sql.Journal.Types;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace TradeRoom.Actors.Storage;

/// <summary>
/// Akka.Persistence.Sql's journal with its writes (events and deletes) replaced by group commit
/// (<see cref="JournalWriter"/>), on SQLite and PostgreSQL (<c>persistence.sqlite.group-commit</c>,
/// <c>persistence.postgresql.group-commit</c>). The plugin's own path costs
/// about 0.2 ms of CPU per transaction (linq2db building the statement, a connection per write, its stream queue) and
/// finds only a few rows waiting each time, which made the store cost ~7× the CPU per event of the memory provider;
/// here a transaction costs a prepared statement per row and takes every room's waiting rows. A room's recovery reads
/// are one plain query each too (<see cref="ReplayMessagesAsync"/>, <see cref="ReadHighestSequenceNrAsync"/>). The
/// tables and their creation are the plugin's, and the rows are those its serializer makes, so it reads them as its own.
/// </summary>
public sealed class GroupCommitJournal : SqlWriteJournal
{
    private readonly ByteArrayJournalSerializer _serializer;
    private readonly JournalWriter _writer;
    private readonly JournalStatements _statements;
    private readonly GroupCommitSetup _setup;
    // Per room, its latest write not yet finished: a room starting again reads its highest seq only after it.
    private readonly ConcurrentDictionary<string, Task> _writing = new(StringComparer.Ordinal);

    public GroupCommitJournal(Config journalConfig) : base(journalConfig)
    {
        var setup = Context.System.Settings.Setup.Get<GroupCommitSetup>();
        if (!setup.HasValue)
            throw new ConfigurationException($"{nameof(GroupCommitJournal)} needs a {nameof(GroupCommitSetup)} in the actor system's setup (AddTradeRoomPersistence adds it)");
        var config = new JournalConfig(journalConfig.WithFallback(SqlPersistence.DefaultJournalConfiguration));
        _serializer = new ByteArrayJournalSerializer(config, Context.System.Serialization, config.PluginConfig.TagSeparator,
            config.TableConfig.EventJournalTable.UseWriterUuidColumn ? Guid.NewGuid().ToString("N") : null);
        _statements = new JournalStatements(config);
        _setup = setup.Value;
        _writer = _setup.Writer;
    }

    protected override Task<IImmutableList<Exception>> WriteMessagesAsync(IEnumerable<AtomicWrite> messages, CancellationToken cancellationToken)
    {
        // The plugin's own timestamp: when the journal took the write.
        var serialized = _serializer.Serialize(messages, DateTime.UtcNow.Ticks);
        var rows = new List<StoreStep>(serialized.Count);
        var rejections = new Exception[serialized.Count];
        string? persistenceId = null;
        for (var i = 0; i < serialized.Count; i++)
        {
            // A write that could not be serialized is rejected alone (its room's persist-rejected path); the others go on.
            if (serialized[i].Success is { HasValue: true } written)
            {
                foreach (var row in written.Value)
                    rows.Add(_statements.Insert(row));
                persistenceId ??= written.Value.Length > 0 ? written.Value[0].PersistenceId : null;
            }
            else
            {
                rejections[i] = serialized[i].Failure.Value;
            }
        }
        IImmutableList<Exception> results = ImmutableList.Create(rejections);
        if (rows.Count == 0)
            return Task.FromResult(results);
        var write = Stored(_writer.Write(rows, cancellationToken), results);
        var id = persistenceId!;
        _writing[id] = write;
        write.ContinueWith(done => _writing.TryRemove(KeyValuePair.Create(id, (Task)done)),
            CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return write;
    }

    private static async Task<IImmutableList<Exception>> Stored(Task write, IImmutableList<Exception> results)
    {
        await write.ConfigureAwait(false);
        return results;
    }

    public override async Task<long> ReadHighestSequenceNrAsync(string persistenceId, long fromSequenceNr, CancellationToken cancellationToken)
    {
        if (_writing.TryGetValue(persistenceId, out var write))
        {
            // Whether it was stored or failed, only that it is over.
            await write.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
        // The highest of all the room's rows, the one a delete keeps marked included: Akka's fromSequenceNr is only a
        // hint where to start looking, and with the index this is one lookup.
        return await _setup.ReadAsync(async connection =>
        {
            await using var command = _statements.HighestSeq(connection, persistenceId);
            return await command.ExecuteScalarAsync(cancellationToken) is { } highest and not DBNull
                ? Convert.ToInt64(highest, System.Globalization.CultureInfo.InvariantCulture)
                : 0L;
        }, cancellationToken);
    }

    /// <summary>
    /// A room's events for its recovery, read with one plain query (<see cref="GroupCommitSetup.ReadAsync{T}"/>; the
    /// callback only tells the room, so it may run off the journal's actor). The plugin's replay
    /// (an Akka.Streams source over linq2db queries) compiled about ten methods per room as it recovered (measured with
    /// dotnet-counters: 1,000 to 3,000 methods a second for as long as rooms recovered one after another).
    /// </summary>
    public override Task ReplayMessagesAsync(IActorContext context, string persistenceId, long fromSequenceNr, long toSequenceNr, long max,
        Action<IPersistentRepresentation> recoveryCallback)
    {
        if (max <= 0 || toSequenceNr < fromSequenceNr)
            return Task.CompletedTask;
        var serialization = context.System.Serialization;
        return _setup.ReadAsync(async connection =>
        {
            await using var command = _statements.Replay(connection, persistenceId, fromSequenceNr, toSequenceNr, max);
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
                recoveryCallback(_statements.ReadEvent(reader, serialization));
            return true;
        }, CancellationToken.None);
    }

    protected override Task DeleteMessagesToAsync(string persistenceId, long toSequenceNr, CancellationToken cancellationToken) =>
        _writer.Write(_statements.Delete(persistenceId, toSequenceNr), cancellationToken);
}

/// <summary>
/// The one <see cref="JournalWriter"/> of an actor system's database, which <see cref="GroupCommitJournal"/> and
/// <see cref="GroupCommitSnapshotStore"/> share; given to the actor system by <c>AddTradeRoomPersistence</c>. It opens
/// its connection on the first write and is stopped (what is queued written first) when the actor system terminates.
/// </summary>
public sealed class GroupCommitSetup : Setup
{
    private readonly PersistenceSettings _persistence;
    private readonly Lazy<JournalWriter> _writer;
    private readonly string? _postgresConnectionString;

    public GroupCommitSetup(PersistenceSettings persistence, Monitoring.TradeRoomMetrics? metrics)
    {
        if (persistence.Provider == PersistenceProvider.Memory)
            throw new InvalidOperationException("the memory provider has no database to write to");
        _persistence = persistence;
        if (persistence.Provider == PersistenceProvider.PostgreSql)
            _postgresConnectionString = new NpgsqlConnectionStringBuilder(persistence.ConnectionString) { MaxAutoPrepare = 8, AutoPrepareMinUsages = 2 }.ConnectionString;
        _writer = new Lazy<JournalWriter>(() => new JournalWriter(Connect, metrics is null ? null : _ => metrics.JournalTransactionCommitted()));
    }

    public JournalWriter Writer => _writer.Value;

    public PersistenceProvider Provider => _persistence.Provider;

    /// <summary>Stops the writer, if it started: what is queued is written and answered first.</summary>
    public void Stop()
    {
        if (_writer.IsValueCreated)
            _writer.Value.Dispose();
    }

    /// <summary>
    /// Runs <paramref name="read"/> on an open connection from the provider's pool, off the calling actor:
    /// Microsoft.Data.Sqlite runs its "async" calls synchronously, so on the journal's or the snapshot store's actor
    /// every room's read waited for the one before it.
    /// </summary>
    public Task<T> ReadAsync<T>(Func<DbConnection, Task<T>> read, CancellationToken cancellationToken) =>
        Task.Run(async () =>
        {
            await using var connection = NewConnection();
            await connection.OpenAsync(cancellationToken);
            return await read(connection);
        }, cancellationToken);

    /// <summary>
    /// A new connection, not yet open, from the provider's pool. On PostgreSQL the same few statements run again and
    /// again, so they are prepared on the server once (Npgsql's automatic preparation), not parsed and planned anew.
    /// </summary>
    private DbConnection NewConnection() => _persistence.Provider == PersistenceProvider.PostgreSql
        ? new NpgsqlConnection(_postgresConnectionString)
        : new SqliteConnection(_persistence.ConnectionString);

    /// <summary>A connection for the writer; on SQLite with the per-connection pragmas the plugin's connections get too.</summary>
    private DbConnection Connect()
    {
        var connection = NewConnection();
        try
        {
            connection.Open();
            if (_persistence.Provider == PersistenceProvider.Sqlite)
            {
                using var pragmas = connection.CreateCommand();
                pragmas.CommandText = $"PRAGMA synchronous={_persistence.SqliteSynchronous};";
                pragmas.ExecuteNonQuery();
                // On a new file the journal table is made by the plugin as the journal starts, before its first write.
                RoomStore.IndexSqliteJournal(connection);
            }
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }
}
