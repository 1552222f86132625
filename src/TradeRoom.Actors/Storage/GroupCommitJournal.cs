using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Data.Common;
using Akka.Actor.Setup;
using Akka.Configuration;
using Akka.Persistence;
using Akka.Persistence.Sql;
using Akka.Persistence.Sql.Config;
using Akka.Persistence.Sql.Journal;
using Akka.Persistence.Sql.Journal.Dao;
using Akka.Persistence.Sql.Journal.Types;
using Microsoft.Data.Sqlite;

namespace TradeRoom.Actors.Storage;

/// <summary>
/// Akka.Persistence.Sql's journal with its write path replaced by group commit (<see cref="JournalWriter"/>), for
/// SQLite (<c>persistence.sqlite.group-commit</c>). The plugin's own path costs about 0.2 ms of CPU per transaction
/// (linq2db building the statement, a connection per write, its stream queue) and finds only a few rows waiting each
/// time, which made the store cost ~7× the CPU per event of the memory provider; here a transaction costs a prepared
/// statement per row and takes every room's waiting rows. Everything else (tables and their creation, reads,
/// recovery, deletes) is the plugin's, and the rows are those its serializer makes, so it reads them as its own.
/// </summary>
public sealed class GroupCommitJournal : SqlWriteJournal
{
    private readonly ByteArrayJournalSerializer _serializer;
    private readonly JournalWriter _writer;
    // Per room, its latest write not yet finished: a room starting again reads its highest seq only after it.
    private readonly ConcurrentDictionary<string, Task> _writing = new(StringComparer.Ordinal);

    public GroupCommitJournal(Config journalConfig) : base(journalConfig)
    {
        var setup = Context.System.Settings.Setup.Get<GroupCommitSetup>();
        if (!setup.HasValue)
            throw new ConfigurationException($"{nameof(GroupCommitJournal)} needs a {nameof(GroupCommitSetup)} in the actor system's setup (AddTradeRoomPersistence adds it)");
        var config = new JournalConfig(journalConfig.WithFallback(SqlPersistence.DefaultJournalConfiguration));
        var persistence = setup.Value.Persistence;
        _serializer = new ByteArrayJournalSerializer(config, Context.System.Serialization, config.PluginConfig.TagSeparator,
            config.TableConfig.EventJournalTable.UseWriterUuidColumn ? Guid.NewGuid().ToString("N") : null);
        var metrics = setup.Value.Metrics;
        _writer = new JournalWriter(() => Connect(persistence), JournalInsert.For(config),
            metrics is null ? null : _ => metrics.JournalTransactionCommitted());
    }

    /// <summary>A connection for the writer: SQLite with the per-connection pragmas the plugin's connections get too.</summary>
    public static DbConnection Connect(PersistenceSettings persistence)
    {
        if (persistence.Provider != PersistenceProvider.Sqlite)
            throw new InvalidOperationException("group commit writes to SQLite only");
        var connection = new SqliteConnection(persistence.ConnectionString);
        try
        {
            connection.Open();
            using var pragmas = connection.CreateCommand();
            pragmas.CommandText = $"PRAGMA synchronous={persistence.SqliteSynchronous};";
            pragmas.ExecuteNonQuery();
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    protected override Task<IImmutableList<Exception>> WriteMessagesAsync(IEnumerable<AtomicWrite> messages, CancellationToken cancellationToken)
    {
        // The plugin's own timestamp: when the journal took the write.
        var serialized = _serializer.Serialize(messages, DateTime.UtcNow.Ticks);
        var rows = new List<JournalRow>(serialized.Count);
        var rejections = new Exception[serialized.Count];
        string? persistenceId = null;
        for (var i = 0; i < serialized.Count; i++)
        {
            // A write that could not be serialized is rejected alone (its room's persist-rejected path); the others go on.
            if (serialized[i].Success is { HasValue: true } written)
            {
                rows.AddRange(written.Value);
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
        return await base.ReadHighestSequenceNrAsync(persistenceId, fromSequenceNr, cancellationToken);
    }

    protected override void PostStop()
    {
        // The writes already queued are written and answered first.
        _writer.Dispose();
        base.PostStop();
    }
}

/// <summary>What <see cref="GroupCommitJournal"/> writes to, given to the actor system by <c>AddTradeRoomPersistence</c>.</summary>
public sealed class GroupCommitSetup(PersistenceSettings persistence, Monitoring.TradeRoomMetrics? metrics) : Setup
{
    public PersistenceSettings Persistence { get; } = persistence;
    public Monitoring.TradeRoomMetrics? Metrics { get; } = metrics;
}
