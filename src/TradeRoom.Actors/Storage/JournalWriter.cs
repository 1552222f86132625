using System.Data;
using System.Data.Common;
using Akka.Actor;
using Akka.Persistence;
using Akka.Persistence.Sql.Config;
using Akka.Persistence.Sql.Journal.Types;

namespace TradeRoom.Actors.Storage;

/// <summary>
/// Group commit for the rooms' database (SQLite or PostgreSQL): one thread, one long-lived connection, and every write
/// goes through it (<see cref="GroupCommitJournal"/>'s events and deletes,
/// <see cref="GroupCommitSnapshotStore"/>'s snapshots). Every write handed to it while a transaction runs goes into the
/// next transaction, the writes of all rooms together, with no waiting beyond that: under load a transaction carries
/// many rows, when quiet one. Being the file's only writer, it never waits on SQLite's lock for another connection of
/// its own (SQLite takes one writer at a time, and a waiting one sleeps: a snapshot written beside the events made
/// their writes wait up to seconds).
/// <para>
/// A write's task completes only once the transaction that holds its steps has committed, and fails exactly when that
/// transaction failed (rolled back; the connection is then opened anew for the next one). A write whose caller gave up
/// (its cancellation token, the journal's call timeout) before its transaction began is refused unwritten, so a room
/// told that its write failed does not find it stored later.
/// </para>
/// </summary>
public sealed class JournalWriter : IDisposable
{
    private readonly Func<DbConnection> _connect;
    private readonly Action<int>? _committed;
    private readonly object _gate = new();
    private readonly Thread _thread;
    private List<Pending> _queue = new();
    private List<Pending> _spare = new(); // the writer thread's: the list of the batch before, cleared
    private bool _stopping;
    private DbConnection? _connection;
    // The statements prepared on the current connection.
    private readonly Dictionary<StoreStatement, DbCommand> _prepared = new();
    private long _transactions;

    /// <param name="connect">Opens a new connection, ready to write (SQLite: its pragmas set).</param>
    /// <param name="committed">Told the steps of each committed transaction, on the writer thread.</param>
    public JournalWriter(Func<DbConnection> connect, Action<int>? committed = null)
    {
        _connect = connect;
        _committed = committed;
        _thread = new Thread(Run) { IsBackground = true, Name = "traderoom-journal-writer" };
        _thread.Start();
    }

    /// <summary>Transactions committed so far.</summary>
    public long Transactions => Interlocked.Read(ref _transactions);

    /// <summary>Runs <paramref name="steps"/> (in this order) in the next transaction.</summary>
    public Task Write(IReadOnlyList<StoreStep> steps, CancellationToken callerGaveUp)
    {
        var write = new Pending(steps, callerGaveUp);
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
        var steps = 0;
        foreach (var write in batch)
        {
            if (write.CallerGaveUp.IsCancellationRequested)
                write.Done.TrySetCanceled(write.CallerGaveUp);
            else
                steps += write.Steps.Count;
        }
        if (steps == 0)
            return;
        try
        {
            _connection ??= _connect();
            using var transaction = _connection.BeginTransaction();
            if (_connection.CanCreateBatch)
                ExecuteAsOneBatch(batch, transaction);
            else
                ExecuteOneByOne(batch, transaction);
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
        _committed?.Invoke(steps);
        foreach (var write in batch)
            write.Done.TrySetResult();
    }

    /// <summary>SQLite: each step a prepared statement of the one connection, in the same process (no round trip).</summary>
    private void ExecuteOneByOne(List<Pending> batch, DbTransaction transaction)
    {
        foreach (var write in batch)
        {
            if (write.Done.Task.IsCompleted)
                continue;
            foreach (var step in write.Steps)
            {
                var command = Prepared(step.Statement);
                command.Transaction = transaction;
                step.Statement.Bind(command, step.Values);
                command.ExecuteNonQuery();
            }
        }
    }

    /// <summary>
    /// PostgreSQL: every step of the transaction sent as one batch, one round trip to the server, where one per step
    /// would make the transaction as slow as its rows are many.
    /// </summary>
    private void ExecuteAsOneBatch(List<Pending> batch, DbTransaction transaction)
    {
        using var commands = _connection!.CreateBatch();
        commands.Transaction = transaction;
        // Consecutive steps of a statement that has an array form (the journal's insert: every room's events in a
        // row) go as one command, in their order; the others one command each.
        StoreStatement? run = null;
        var rows = new List<object?[]>();
        foreach (var write in batch)
        {
            if (write.Done.Task.IsCompleted)
                continue;
            foreach (var step in write.Steps)
            {
                if (step.Statement != run)
                    EndRun();
                if (step.Statement.ArraySql is null)
                {
                    commands.BatchCommands.Add(step.Statement.BatchCommand(commands, step.Values));
                }
                else
                {
                    run = step.Statement;
                    rows.Add(step.Values);
                }
            }
        }
        EndRun();
        commands.ExecuteNonQuery();

        void EndRun()
        {
            if (run is null)
                return;
            commands.BatchCommands.Add(run.ArrayBatchCommand(commands, rows));
            run = null;
            rows.Clear();
        }
    }

    private DbCommand Prepared(StoreStatement statement)
    {
        if (!_prepared.TryGetValue(statement, out var command))
        {
            command = statement.Prepare(_connection!);
            _prepared.Add(statement, command);
        }
        return command;
    }

    private void Disconnect()
    {
        try
        {
            foreach (var command in _prepared.Values)
                command.Dispose();
            _connection?.Dispose();
        }
        catch (Exception)
        {
            // A broken connection may fail to close; it is dropped all the same.
        }
        _prepared.Clear();
        _connection = null;
    }

    private sealed class Pending(IReadOnlyList<StoreStep> steps, CancellationToken callerGaveUp)
    {
        public IReadOnlyList<StoreStep> Steps { get; } = steps;
        public CancellationToken CallerGaveUp { get; } = callerGaveUp;

        // Completed by the writer thread: the journal's continuations run elsewhere.
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}

/// <summary>One statement of a write, with its values in the order of its parameters.</summary>
public readonly record struct StoreStep(StoreStatement Statement, object?[] Values);

/// <summary>
/// A statement the writer prepares once per connection (its parameters <c>@p0</c>, <c>@p1</c>, … of the given types)
/// and runs again with new values. Null values are written as SQL NULL.
/// </summary>
public sealed class StoreStatement(string sql, params DbType[] types)
{
    public string Sql { get; } = sql;

    /// <summary>
    /// Optionally, the same statement for many rows at once (PostgreSQL only): its parameters <c>$1</c>, <c>$2</c>, …
    /// are arrays, one per parameter of <see cref="Sql"/>, holding the rows' values in order (<c>unnest</c>). A batch
    /// of 1,000 rows is then one statement for the server to run instead of 1,000, and 8 parameters for Npgsql to
    /// write instead of 8,000.
    /// </summary>
    public string? ArraySql { get; init; }

    // In a batch the parameters are positional ($1, $2, …, unnamed): Npgsql then sends the text as it is, where named
    // ones make it parse and rewrite every command's text.
    private readonly string _positionalSql = System.Text.RegularExpressions.Regex.Replace(sql, @"@p(\d+)",
        m => "$" + (int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) + 1));

    public DbCommand Prepare(DbConnection connection)
    {
        var command = connection.CreateCommand();
        command.CommandText = Sql;
        for (var i = 0; i < types.Length; i++)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = "@p" + i;
            parameter.DbType = types[i];
            command.Parameters.Add(parameter);
        }
        command.Prepare();
        return command;
    }

    public void Bind(DbCommand command, object?[] values)
    {
        CheckCount(values);
        for (var i = 0; i < values.Length; i++)
            command.Parameters[i].Value = values[i] ?? DBNull.Value;
    }

    /// <summary>The statement with <paramref name="values"/> as a command of <paramref name="batch"/>.</summary>
    public DbBatchCommand BatchCommand(DbBatch batch, object?[] values)
    {
        CheckCount(values);
        var command = batch.CreateBatchCommand();
        command.CommandText = _positionalSql;
        for (var i = 0; i < values.Length; i++)
        {
            var parameter = command.CreateParameter();
            parameter.DbType = types[i];
            parameter.Value = values[i] ?? DBNull.Value;
            command.Parameters.Add(parameter);
        }
        return command;
    }

    /// <summary>The statement's <see cref="ArraySql"/> for <paramref name="rows"/> as a command of <paramref name="batch"/>.</summary>
    public DbBatchCommand ArrayBatchCommand(DbBatch batch, IReadOnlyList<object?[]> rows)
    {
        var command = batch.CreateBatchCommand();
        command.CommandText = ArraySql ?? throw new InvalidOperationException($"the statement has no array form: {Sql}");
        foreach (var row in rows)
            CheckCount(row);
        for (var i = 0; i < types.Length; i++)
        {
            var column = Array.CreateInstance(ArrayForm(types[i]).Element, rows.Count);
            for (var row = 0; row < rows.Count; row++)
                column.SetValue(rows[row][i], row);
            var parameter = command.CreateParameter();
            parameter.Value = column;
            command.Parameters.Add(parameter);
        }
        return command;
    }

    /// <summary>
    /// How an array of values of <paramref name="type"/> goes to PostgreSQL: the .NET element type Npgsql writes, and
    /// the SQL type name for the casts of an <see cref="ArraySql"/>.
    /// </summary>
    public static (Type Element, string SqlName) ArrayForm(DbType type) => type switch
    {
        DbType.Int64 => (typeof(long), "bigint[]"),
        DbType.Int32 => (typeof(int), "integer[]"),
        DbType.Boolean => (typeof(bool), "boolean[]"),
        DbType.String => (typeof(string), "text[]"),
        DbType.Binary => (typeof(byte[]), "bytea[]"),
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "no array form for this type"),
    };

    private void CheckCount(object?[] values)
    {
        if (values.Length != types.Length)
            throw new ArgumentException($"the statement takes {types.Length} values, not {values.Length}: {Sql}");
    }

    /// <summary>Adds the next parameter (<c>@p0</c>, <c>@p1</c>, …) of a one-off command (a read), its type taken from <paramref name="value"/>.</summary>
    public static void AddValue(DbCommand command, object value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = "@p" + command.Parameters.Count;
        parameter.Value = value;
        command.Parameters.Add(parameter);
    }

    /// <summary><paramref name="identifier"/> quoted for SQL.</summary>
    public static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    /// <summary>A table's name, in its schema when there is one.</summary>
    public static string Table(string? schema, string name) => schema is null ? Quote(name) : $"{Quote(schema)}.{Quote(name)}";
}

/// <summary>
/// The statements of Akka.Persistence.Sql's journal table that <see cref="GroupCommitJournal"/> runs itself, with the
/// table and column names of its table mapping: the <c>INSERT</c> of one row, with the same values its own write path
/// stores (<see cref="JournalRow"/> as its serializer makes it), the delete of the rows a snapshot covers, which
/// leaves the table as its own delete does, and a room's replay. So the plugin and the server read each other's rows.
/// </summary>
public sealed class JournalStatements
{
    private readonly bool _writerUuid;
    private readonly StoreStatement _insert;
    private readonly StoreStatement _markDeleted;
    private readonly StoreStatement _deleteBelow;
    private readonly string _replaySql;
    private readonly string _highestSql;

    /// <summary>For the journal table of <paramref name="config"/>, which must keep tags as CSV in the row (<c>tag-write-mode = Csv</c>).</summary>
    public JournalStatements(JournalConfig config)
    {
        if (config.PluginConfig.TagMode != TagMode.Csv)
            throw new Akka.Configuration.ConfigurationException(
                $"the group-commit journal writes tags only as CSV in the journal row; akka.persistence.journal.sql.tag-write-mode is {config.PluginConfig.TagMode}");
        if (config.TableConfig.UseEventManifestColumn)
            throw new Akka.Configuration.ConfigurationException("the group-commit journal does not write an event manifest column");
        var table = config.TableConfig.EventJournalTable;
        var c = table.ColumnNames;
        _writerUuid = table.UseWriterUuidColumn;
        var columns = new List<string> { c.Created, c.Deleted, c.PersistenceId, c.SequenceNumber, c.Message, c.Tags, c.Manifest, c.Identifier };
        var types = new List<DbType> { DbType.Int64, DbType.Boolean, DbType.String, DbType.Int64, DbType.Binary, DbType.String, DbType.String, DbType.Int32 };
        if (_writerUuid)
        {
            columns.Add(c.WriterUuid);
            types.Add(DbType.String);
        }
        var name = StoreStatement.Table(config.TableConfig.SchemaName, table.Name);
        var into = $"INSERT INTO {name} ({string.Join(", ", columns.Select(StoreStatement.Quote))}) ";
        _insert = new StoreStatement(into + $"VALUES ({string.Join(", ", Enumerable.Range(0, columns.Count).Select(i => "@p" + i))})", types.ToArray())
        {
            // In the arrays' order, so that the table's ordering column numbers the rows as the rows' own inserts would.
            ArraySql = into + $"SELECT {string.Join(", ", columns.Select((_, i) => "v" + i))} " +
                       $"FROM unnest({string.Join(", ", types.Select((t, i) => $"${i + 1}::{StoreStatement.ArrayForm(t).SqlName}"))}) " +
                       $"WITH ORDINALITY AS v({string.Join(", ", columns.Select((_, i) => "v" + i))}, n) ORDER BY n",
        };
        // The plugin's delete keeps the highest row it deletes, marked deleted, so the room's highest seq stays
        // readable; replay skips it. Here only that row is marked, and the rows below it deleted: the same table after.
        var (pid, seq, deleted) = (StoreStatement.Quote(c.PersistenceId), StoreStatement.Quote(c.SequenceNumber), StoreStatement.Quote(c.Deleted));
        var highest = $"(SELECT MAX({seq}) FROM {name} WHERE {pid} = @p0 AND {seq} <= @p1)";
        _markDeleted = new StoreStatement($"UPDATE {name} SET {deleted} = @p2 WHERE {pid} = @p0 AND {seq} = {highest}",
            DbType.String, DbType.Int64, DbType.Boolean);
        _deleteBelow = new StoreStatement($"DELETE FROM {name} WHERE {pid} = @p0 AND {seq} < {highest}", DbType.String, DbType.Int64);
        _highestSql = $"SELECT MAX({seq}) FROM {name} WHERE {pid} = @p0";
        var writerUuid = _writerUuid ? StoreStatement.Quote(c.WriterUuid) : "NULL";
        _replaySql = $"SELECT {pid}, {seq}, {deleted}, {StoreStatement.Quote(c.Message)}, {StoreStatement.Quote(c.Manifest)}, " +
                     $"{StoreStatement.Quote(c.Identifier)}, {writerUuid}, {StoreStatement.Quote(c.Created)} FROM {name} " +
                     $"WHERE {pid} = @p0 AND {seq} >= @p1 AND {seq} <= @p2 AND {deleted} = FALSE ORDER BY {seq} LIMIT @p3";
    }

    /// <summary>The highest seq of <paramref name="persistenceId"/>'s rows (NULL when it has none).</summary>
    public DbCommand HighestSeq(DbConnection connection, string persistenceId)
    {
        var command = connection.CreateCommand();
        command.CommandText = _highestSql;
        StoreStatement.AddValue(command, persistenceId);
        return command;
    }

    /// <summary>The events of <paramref name="persistenceId"/> from one seq to another (both included), not deleted, in order, at most <paramref name="max"/>.</summary>
    public DbCommand Replay(DbConnection connection, string persistenceId, long fromSequenceNr, long toSequenceNr, long max)
    {
        var command = connection.CreateCommand();
        command.CommandText = _replaySql;
        StoreStatement.AddValue(command, persistenceId);
        StoreStatement.AddValue(command, fromSequenceNr);
        StoreStatement.AddValue(command, toSequenceNr);
        StoreStatement.AddValue(command, max);
        return command;
    }

    /// <summary>The event of the row <paramref name="reader"/> is on (a row of <see cref="Replay"/>), as the plugin's serializer reads it.</summary>
    public IPersistentRepresentation ReadEvent(DbDataReader reader, Akka.Serialization.Serialization serialization)
    {
        var manifest = reader.IsDBNull(4) ? "" : reader.GetString(4);
        var message = (byte[])reader.GetValue(3);
        // Every row this journal or the plugin writes names its serializer; the plugin's fallback for rows that do not
        // (the type in the manifest) is not needed here.
        var payload = serialization.Deserialize(message, reader.GetInt32(5), manifest);
        return new Persistent(payload, reader.GetInt64(1), reader.GetString(0), manifest, reader.GetBoolean(2), ActorRefs.NoSender,
            reader.IsDBNull(6) ? null : reader.GetString(6), reader.GetInt64(7));
    }


    /// <summary>The insert of <paramref name="row"/>.</summary>
    public StoreStep Insert(JournalRow row)
    {
        var values = new object?[_writerUuid ? 9 : 8];
        values[0] = row.Timestamp;
        values[1] = row.Deleted;
        values[2] = row.PersistenceId;
        values[3] = row.SequenceNumber;
        values[4] = row.Message;
        values[5] = row.Tags;
        values[6] = row.Manifest;
        values[7] = row.Identifier;
        if (_writerUuid)
            values[8] = row.WriterUuid;
        return new StoreStep(_insert, values);
    }

    /// <summary>Deleting the rows of <paramref name="persistenceId"/> up to <paramref name="toSequenceNr"/> (Akka's <c>DeleteMessagesTo</c>).</summary>
    public StoreStep[] Delete(string persistenceId, long toSequenceNr) =>
    [
        new(_markDeleted, [persistenceId, toSequenceNr, true]),
        new(_deleteBelow, [persistenceId, toSequenceNr]),
    ];
}
