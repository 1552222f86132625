using System.Data;
using System.Data.Common;
using Akka.Persistence.Sql.Config;
using Akka.Persistence.Sql.Journal.Types;

namespace TradeRoom.Actors.Storage;

/// <summary>
/// Group commit for the rooms' journal (<see cref="GroupCommitJournal"/>): one thread, one long-lived connection and one
/// prepared <c>INSERT</c>. Every write handed to it while a transaction runs goes into the next transaction, the writes
/// of all rooms together, with no waiting beyond that: under load a transaction carries many rows, when quiet one.
/// <para>
/// A write's task completes only once the transaction that holds its rows has committed, and fails exactly when that
/// transaction failed (rolled back; the connection is then opened anew for the next one). A write whose caller gave up
/// (its cancellation token, the journal's call timeout) before its transaction began is refused unwritten, so a room
/// told that its write failed does not find it stored later.
/// </para>
/// </summary>
public sealed class JournalWriter : IDisposable
{
    private readonly Func<DbConnection> _connect;
    private readonly JournalInsert _insert;
    private readonly Action<int>? _committed;
    private readonly object _gate = new();
    private readonly Thread _thread;
    private List<Pending> _queue = new();
    private List<Pending> _spare = new(); // the writer thread's: the list of the batch before, cleared
    private bool _stopping;
    private DbConnection? _connection;
    private DbCommand? _command;
    private long _transactions;

    /// <param name="connect">Opens a new connection, ready to write (SQLite: its pragmas set).</param>
    /// <param name="committed">Told the rows of each committed transaction, on the writer thread.</param>
    public JournalWriter(Func<DbConnection> connect, JournalInsert insert, Action<int>? committed = null)
    {
        _connect = connect;
        _insert = insert;
        _committed = committed;
        _thread = new Thread(Run) { IsBackground = true, Name = "traderoom-journal-writer" };
        _thread.Start();
    }

    /// <summary>Transactions committed so far.</summary>
    public long Transactions => Interlocked.Read(ref _transactions);

    /// <summary>Stores <paramref name="rows"/> (in this order) in the next transaction.</summary>
    public Task Write(IReadOnlyList<JournalRow> rows, CancellationToken callerGaveUp)
    {
        var write = new Pending(rows, callerGaveUp);
        lock (_gate)
        {
            if (_stopping)
                return Task.FromException(new ObjectDisposedException(nameof(JournalWriter), "the journal is stopping"));
            _queue.Add(write);
            if (_queue.Count == 1)
                Monitor.Pulse(_gate);
        }
        return write.Done.Task;
    }

    /// <summary>Writes what is queued, then closes the connection.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _stopping = true;
            Monitor.Pulse(_gate);
        }
        _thread.Join();
    }

    private void Run()
    {
        while (true)
        {
            List<Pending> batch;
            lock (_gate)
            {
                while (_queue.Count == 0 && !_stopping)
                    Monitor.Wait(_gate);
                if (_queue.Count == 0)
                    break;
                batch = _queue;
                _queue = _spare;
            }
            WriteBatch(batch);
            batch.Clear();
            _spare = batch;
        }
        Disconnect();
    }

    private void WriteBatch(List<Pending> batch)
    {
        var rows = 0;
        foreach (var write in batch)
        {
            if (write.CallerGaveUp.IsCancellationRequested)
                write.Done.TrySetCanceled(write.CallerGaveUp);
            else
                rows += write.Rows.Count;
        }
        if (rows == 0)
            return;
        try
        {
            if (_connection is null)
            {
                _connection = _connect();
                _command = _insert.Prepare(_connection);
            }
            using var transaction = _connection.BeginTransaction();
            _command!.Transaction = transaction;
            foreach (var write in batch)
            {
                if (write.Done.Task.IsCompleted)
                    continue;
                foreach (var row in write.Rows)
                {
                    _insert.Bind(_command, row);
                    _command.ExecuteNonQuery();
                }
            }
            transaction.Commit();
        }
        catch (Exception e)
        {
            // Rolled back (or never begun). The connection may be broken: the next batch opens a new one.
            Disconnect();
            foreach (var write in batch)
                write.Done.TrySetException(e);
            return;
        }
        Interlocked.Increment(ref _transactions);
        _committed?.Invoke(rows);
        foreach (var write in batch)
            write.Done.TrySetResult();
    }

    private void Disconnect()
    {
        try
        {
            _command?.Dispose();
            _connection?.Dispose();
        }
        catch (Exception)
        {
            // A broken connection may fail to close; it is dropped all the same.
        }
        _command = null;
        _connection = null;
    }

    private sealed class Pending(IReadOnlyList<JournalRow> rows, CancellationToken callerGaveUp)
    {
        public IReadOnlyList<JournalRow> Rows { get; } = rows;
        public CancellationToken CallerGaveUp { get; } = callerGaveUp;

        // Completed by the writer thread: the journal's continuations run elsewhere.
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}

/// <summary>
/// The <c>INSERT</c> of one journal row into Akka.Persistence.Sql's journal table, with the table and column names of
/// its table mapping, and the same values its own write path stores (<see cref="JournalRow"/> as its serializer makes
/// it): so its reads, recovery and deletes find the rows as if it had written them.
/// </summary>
public sealed class JournalInsert
{
    private readonly bool _writerUuid;

    private JournalInsert(string sql, bool writerUuid)
    {
        Sql = sql;
        _writerUuid = writerUuid;
    }

    public string Sql { get; }

    /// <summary>For the journal table of <paramref name="config"/>, which must keep tags as CSV in the row (<c>tag-write-mode = Csv</c>).</summary>
    public static JournalInsert For(JournalConfig config)
    {
        if (config.PluginConfig.TagMode != TagMode.Csv)
            throw new Akka.Configuration.ConfigurationException(
                $"the group-commit journal writes tags only as CSV in the journal row; akka.persistence.journal.sql.tag-write-mode is {config.PluginConfig.TagMode}");
        if (config.TableConfig.UseEventManifestColumn)
            throw new Akka.Configuration.ConfigurationException("the group-commit journal does not write an event manifest column");
        var table = config.TableConfig.EventJournalTable;
        var c = table.ColumnNames;
        var columns = new List<string> { c.Created, c.Deleted, c.PersistenceId, c.SequenceNumber, c.Message, c.Tags, c.Manifest, c.Identifier };
        if (table.UseWriterUuidColumn)
            columns.Add(c.WriterUuid);
        var name = config.TableConfig.SchemaName is { } schema ? $"{Quote(schema)}.{Quote(table.Name)}" : Quote(table.Name);
        var sql = $"INSERT INTO {name} ({string.Join(", ", columns.Select(Quote))}) " +
                  $"VALUES ({string.Join(", ", Enumerable.Range(0, columns.Count).Select(i => "@p" + i))})";
        return new JournalInsert(sql, table.UseWriterUuidColumn);
    }

    private static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    /// <summary>A prepared command on <paramref name="connection"/>, its parameters made once and set per row by <see cref="Bind"/>.</summary>
    public DbCommand Prepare(DbConnection connection)
    {
        var command = connection.CreateCommand();
        command.CommandText = Sql;
        Add(command, DbType.Int64);   // created
        Add(command, DbType.Boolean); // deleted
        Add(command, DbType.String);  // persistence_id
        Add(command, DbType.Int64);   // sequence_number
        Add(command, DbType.Binary);  // message
        Add(command, DbType.String);  // tags
        Add(command, DbType.String);  // manifest
        Add(command, DbType.Int32);   // identifier
        if (_writerUuid)
            Add(command, DbType.String);
        command.Prepare();
        return command;
    }

    public void Bind(DbCommand command, JournalRow row)
    {
        var p = command.Parameters;
        p[0].Value = row.Timestamp;
        p[1].Value = row.Deleted;
        p[2].Value = row.PersistenceId;
        p[3].Value = row.SequenceNumber;
        p[4].Value = row.Message;
        p[5].Value = row.Tags is { } tags ? tags : DBNull.Value;
        p[6].Value = row.Manifest;
        p[7].Value = row.Identifier is { } identifier ? identifier : DBNull.Value;
        if (_writerUuid)
            p[8].Value = row.WriterUuid is { } uuid ? uuid : DBNull.Value;
    }

    private static void Add(DbCommand command, DbType type)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = "@p" + command.Parameters.Count;
        parameter.DbType = type;
        command.Parameters.Add(parameter);
    }
}
