using System.Data.Common;
using Akka.Configuration;
using Akka.Persistence.Sql;
using Akka.Persistence.Sql.Config;
using Akka.Persistence.Sql.Journal.Types;
using Microsoft.Data.Sqlite;
using Npgsql;
using TradeRoom.Actors.Storage;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Rooms;

/// <summary>
/// <see cref="JournalWriter"/>, the journal's group commit, against a real database with Akka.Persistence.Sql's
/// journal table: a SQLite file (each row its own prepared statement) and PostgreSQL (one batch per transaction, a
/// room's consecutive rows as one array insert). Its first connection is held at a gate, so the test knows a
/// transaction is under way while it hands over the writes that must wait for the next one.
/// </summary>
public abstract class JournalWriterTests : IAsyncLifetime
{
    private readonly ManualResetEventSlim _gate = new(initialState: false);
    private readonly ManualResetEventSlim _atGate = new(initialState: false);
    private readonly List<int> _transactions = [];
    private int _connects;

    /// <summary>Creates the journal table (as the plugin does on this database) in a new, empty database.</summary>
    public abstract Task InitializeAsync();

    public virtual Task DisposeAsync()
    {
        _gate.Set();
        return Task.CompletedTask;
    }

    /// <summary>A new connection to the test's database, not yet open.</summary>
    protected abstract DbConnection NewConnection();

    /// <summary>What the database says when it refuses a row (<see cref="RefuseInsertsOf"/>).</summary>
    protected const string Refusal = "disk full (simulated)";

    /// <summary>Makes the database refuse, within a transaction, every insert of <paramref name="persistenceId"/>'s rows with <see cref="Refusal"/>.</summary>
    protected abstract void RefuseInsertsOf(string persistenceId);

    protected DbConnection Open()
    {
        var connection = NewConnection();
        connection.Open();
        return connection;
    }

    protected void Execute(string sql)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    /// <summary>A writer whose first connection waits at the gate (after telling <see cref="_atGate"/>).</summary>
    private JournalWriter NewWriter() => new(Connect, rows =>
    {
        lock (_transactions)
            _transactions.Add(rows);
    });

    private static readonly JournalStatements Statements = new(new JournalConfig(ConfigurationFactory.ParseString("tag-write-mode = Csv")
        .WithFallback(SqlPersistence.DefaultJournalConfiguration)));

    private DbConnection Connect()
    {
        if (Interlocked.Increment(ref _connects) == 1)
        {
            _atGate.Set();
            _gate.Wait();
        }
        return Open();
    }

    private static StoreStep[] Rows(string room, params long[] seqs) => seqs.Select(seq => Statements.Insert(new JournalRow
    {
        PersistenceId = "room-" + room,
        SequenceNumber = seq,
        Message = [1, 2, (byte)seq],
        Manifest = "E",
        Identifier = 7301,
        Tags = "",
        Timestamp = DateTime.UtcNow.Ticks,
        WriterUuid = "w",
    })).ToArray();

    private List<(string Room, long Seq)> StoredRows() =>
        Query("SELECT persistence_id, sequence_number FROM journal ORDER BY ordering",
            reader => (reader.GetString(0)["room-".Length..], reader.GetInt64(1)));

    /// <summary>Each row of <paramref name="sql"/> (or of the command <paramref name="make"/> makes), read by <paramref name="read"/>.</summary>
    private List<T> Query<T>(string? sql, Func<DbDataReader, T> read, Func<DbConnection, DbCommand>? make = null)
    {
        using var connection = Open();
        using var command = make?.Invoke(connection) ?? connection.CreateCommand();
        if (sql is not null)
            command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var rows = new List<T>();
        while (reader.Read())
            rows.Add(read(reader));
        return rows;
    }

    private int[] Transactions()
    {
        lock (_transactions)
            return _transactions.ToArray();
    }

    [Fact]
    public async Task Writes_of_several_rooms_that_wait_while_a_transaction_runs_are_committed_together_in_the_next()
    {
        using var writer = NewWriter();
        var first = writer.Write(Rows("a", 1), CancellationToken.None);
        Assert.True(_atGate.Wait(TimeSpan.FromSeconds(10)), "the writer took the first write");

        var waiting = new[]
        {
            writer.Write(Rows("b", 1, 2), CancellationToken.None),
            writer.Write(Rows("a", 2), CancellationToken.None),
            writer.Write(Rows("c", 1), CancellationToken.None),
        };
        Assert.All(waiting, w => Assert.False(w.IsCompleted)); // nothing is answered before its commit
        _gate.Set();
        await first;
        await Task.WhenAll(waiting);

        Assert.Equal([1, 4], Transactions());
        Assert.Equal(2, writer.Transactions);
        Assert.Equal([("a", 1), ("b", 1), ("b", 2), ("a", 2), ("c", 1)], StoredRows());
    }

    [Fact]
    public async Task A_failed_transaction_fails_exactly_its_writes_stores_none_of_their_rows_and_the_next_is_stored()
    {
        // A real failure of the engine in the middle of a transaction, for one room's row only.
        RefuseInsertsOf("room-broken");
        using var writer = NewWriter();
        var first = writer.Write(Rows("a", 1), CancellationToken.None);
        Assert.True(_atGate.Wait(TimeSpan.FromSeconds(10)));
        // One transaction: a good write of room a (inserted, then rolled back), then the refused one.
        var sameBatchGood = writer.Write(Rows("a", 2, 3), CancellationToken.None);
        var refused = writer.Write(Rows("broken", 1), CancellationToken.None);
        _gate.Set();
        await first;

        var error = await Assert.ThrowsAnyAsync<DbException>(() => refused);
        Assert.Contains(Refusal, error.Message);
        Assert.Same(error, await Assert.ThrowsAnyAsync<DbException>(() => sameBatchGood));

        // The next transaction, on a new connection, is stored, and room a goes on from where its store is.
        await writer.Write(Rows("a", 2), CancellationToken.None);
        Assert.Equal([("a", 1), ("a", 2)], StoredRows());
        Assert.Equal([1, 1], Transactions());
    }

    [Fact]
    public async Task Rows_are_stored_in_the_order_each_room_handed_them_over_across_many_batches()
    {
        using var writer = NewWriter();
        var writes = new List<Task> { writer.Write(Rows("r0", 1), CancellationToken.None) };
        Assert.True(_atGate.Wait(TimeSpan.FromSeconds(10)));
        var next = new long[5];
        next[0] = 2;
        for (var i = 1; i < next.Length; i++)
            next[i] = 1;
        var handedOver = new List<(string, long)> { ("r0", 1) };
        // Five rooms, each handing over one to three rows at a time; the gate opens half way, so later writes land in
        // transactions of whatever sizes the writer finds.
        for (var i = 0; i < 400; i++)
        {
            var room = i % 5;
            var count = 1 + i % 3;
            var seqs = Enumerable.Range(0, count).Select(k => next[room] + k).ToArray();
            next[room] += count;
            writes.Add(writer.Write(Rows("r" + room, seqs), CancellationToken.None));
            handedOver.AddRange(seqs.Select(s => ("r" + room, s)));
            if (i == 200)
                _gate.Set();
        }
        await Task.WhenAll(writes);

        Assert.Equal(handedOver, StoredRows());
        Assert.Equal(handedOver.Count, Transactions().Sum());
        Assert.True(Transactions().Length >= 2, "the writes went in more than one transaction");
    }

    [Fact]
    public async Task A_write_whose_caller_gave_up_before_its_transaction_began_is_not_stored()
    {
        using var writer = NewWriter();
        var first = writer.Write(Rows("a", 1), CancellationToken.None);
        Assert.True(_atGate.Wait(TimeSpan.FromSeconds(10)));
        using var callTimeout = new CancellationTokenSource();
        var abandoned = writer.Write(Rows("b", 1), callTimeout.Token);
        var kept = writer.Write(Rows("c", 1), CancellationToken.None);
        callTimeout.Cancel();
        _gate.Set();

        await first;
        await kept;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => abandoned);
        Assert.Equal([("a", 1), ("c", 1)], StoredRows());
    }

    [Fact]
    public async Task Stopping_writes_what_was_handed_over_first()
    {
        var writer = NewWriter();
        var first = writer.Write(Rows("a", 1), CancellationToken.None);
        Assert.True(_atGate.Wait(TimeSpan.FromSeconds(10)));
        var queued = writer.Write(Rows("b", 1), CancellationToken.None);
        var stopped = Task.Run(writer.Dispose);
        _gate.Set();
        await stopped;

        Assert.True(first.IsCompletedSuccessfully);
        Assert.True(queued.IsCompletedSuccessfully);
        Assert.Equal([("a", 1), ("b", 1)], StoredRows());
        await Assert.ThrowsAsync<ObjectDisposedException>(() => writer.Write(Rows("c", 1), CancellationToken.None));
    }

    [Fact]
    public async Task Deleting_up_to_a_seq_keeps_the_highest_deleted_row_marked_deleted_and_no_row_below_it()
    {
        using var writer = NewWriter();
        _gate.Set();
        await writer.Write(Rows("a", 1, 2, 3, 4, 5), CancellationToken.None);
        await writer.Write(Rows("b", 1, 2), CancellationToken.None);

        await writer.Write(Statements.Delete("room-a", 3), CancellationToken.None);
        // As the plugin's own delete leaves it: the room's highest seq stays readable, replay skips the marked row.
        Assert.Equal([("a", 3, true), ("a", 4, false), ("a", 5, false), ("b", 1, false), ("b", 2, false)], RowsWithDeleted());

        await writer.Write(Statements.Delete("room-a", 5), CancellationToken.None);
        Assert.Equal([("a", 5, true), ("b", 1, false), ("b", 2, false)], RowsWithDeleted());
    }

    [Fact]
    public async Task A_delete_between_inserts_of_one_transaction_runs_in_its_place()
    {
        using var writer = NewWriter();
        var first = writer.Write(Rows("z", 1), CancellationToken.None);
        Assert.True(_atGate.Wait(TimeSpan.FromSeconds(10)));
        // One transaction: rows 1-3 of room a, its delete up to 5, rows 4-5 and room b's rows (on PostgreSQL the
        // inserts on either side of the delete are array inserts of their own).
        var writes = new[]
        {
            writer.Write(Rows("a", 1, 2, 3), CancellationToken.None),
            writer.Write(Statements.Delete("room-a", 5), CancellationToken.None),
            writer.Write([.. Rows("a", 4, 5), .. Rows("b", 1)], CancellationToken.None),
        };
        _gate.Set();
        await first;
        await Task.WhenAll(writes);

        Assert.Equal([1, 8], Transactions()); // 6 rows and the delete's 2 statements
        // Run in its place, the delete found rows 1-3: it kept 3, marked, and the rows after it are not deleted.
        Assert.Equal([("a", 3, true), ("a", 4, false), ("a", 5, false), ("b", 1, false), ("z", 1, false)], RowsWithDeleted());
    }

    [Fact]
    public async Task Replay_reads_a_room_s_rows_in_the_range_in_order_skipping_the_deleted_one_and_at_most_max()
    {
        using var writer = NewWriter();
        _gate.Set();
        await writer.Write([.. Rows("a", 1, 2, 3), .. Rows("b", 1), .. Rows("a", 4, 5, 6)], CancellationToken.None);
        await writer.Write(Statements.Delete("room-a", 2), CancellationToken.None); // row 2 stays, marked

        Assert.Equal([3, 4, 5, 6], ReplayedSeqs("room-a", 1, 100, long.MaxValue));
        Assert.Equal([3, 4], ReplayedSeqs("room-a", 1, 4, long.MaxValue));
        Assert.Equal([4, 5], ReplayedSeqs("room-a", 4, 6, 2));
        Assert.Equal([1], ReplayedSeqs("room-b", 0, 9, 10));
        Assert.Empty(ReplayedSeqs("room-c", 0, 9, 10));
    }

    [Fact]
    public async Task The_highest_seq_counts_the_row_a_delete_keeps_and_is_null_for_a_room_without_rows()
    {
        using var writer = NewWriter();
        _gate.Set();
        await writer.Write(Rows("a", 1, 2, 3), CancellationToken.None);
        await writer.Write(Statements.Delete("room-a", 3), CancellationToken.None);

        using var connection = Open();
        using (var highest = Statements.HighestSeq(connection, "room-a"))
            Assert.Equal(3L, Convert.ToInt64(highest.ExecuteScalar())); // the room's seq survives the delete of all its events
        using (var none = Statements.HighestSeq(connection, "room-z"))
            Assert.Equal(DBNull.Value, none.ExecuteScalar());
    }

    private List<long> ReplayedSeqs(string persistenceId, long from, long to, long max) =>
        Query(null, reader => reader.GetInt64(1), connection => Statements.Replay(connection, persistenceId, from, to, max));

    private List<(string Room, long Seq, bool Deleted)> RowsWithDeleted() =>
        Query("SELECT persistence_id, sequence_number, deleted FROM journal ORDER BY persistence_id, sequence_number",
            reader => (reader.GetString(0)["room-".Length..], reader.GetInt64(1), reader.GetBoolean(2)));
}

public sealed class SqliteJournalWriterTests : JournalWriterTests
{
    // The table as Akka.Persistence.Sql creates it on SQLite (default mapping, tag-write-mode Csv, writer uuid).
    private const string JournalTable = """
        CREATE TABLE [journal]
        (
            [ordering]        INTEGER        NOT NULL PRIMARY KEY AUTOINCREMENT,
            [created]         INTEGER        NOT NULL,
            [deleted]         Bit            NOT NULL,
            [persistence_id]  NVarChar(255)  NOT NULL,
            [sequence_number] INTEGER        NOT NULL,
            [message]         VarBinary      NOT NULL,
            [tags]            NVarChar(100)      NULL,
            [manifest]        NVarChar(500)      NULL,
            [identifier]      INTEGER            NULL,
            [writer_uuid]     NVarChar(128)      NULL
        );
        """;

    private readonly string _folder = TestDatabase.NewSqliteFolder();
    private string _connectionString = null!;

    public override Task InitializeAsync()
    {
        _connectionString = $"Data Source={Path.Combine(_folder, "journal.db")};Default Timeout=1";
        Execute("PRAGMA journal_mode=WAL;");
        Execute(JournalTable);
        return Task.CompletedTask;
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        SqliteConnection.ClearAllPools();
        TestDatabase.Delete(_folder);
    }

    protected override DbConnection NewConnection() => new SqliteConnection(_connectionString);

    protected override void RefuseInsertsOf(string persistenceId) => Execute($"""
        CREATE TRIGGER refuse BEFORE INSERT ON journal WHEN NEW.persistence_id = '{persistenceId}'
        BEGIN SELECT RAISE(ABORT, '{Refusal}'); END;
        """);
}

[Collection(PostgresCollection.Name)]
public sealed class PostgresJournalWriterTests(PostgresServer postgres) : JournalWriterTests
{
    // The table and index as Akka.Persistence.Sql creates them on PostgreSQL (default mapping, tag-write-mode Csv, writer uuid).
    private const string JournalTable = """
        CREATE TABLE journal
        (
            ordering        BIGSERIAL     NOT NULL PRIMARY KEY,
            created         BIGINT        NOT NULL,
            deleted         BOOLEAN       NOT NULL,
            persistence_id  VARCHAR(255)  NOT NULL,
            sequence_number BIGINT        NOT NULL,
            message         BYTEA         NOT NULL,
            tags            VARCHAR(100)      NULL,
            manifest        VARCHAR(500)      NULL,
            identifier      INTEGER           NULL,
            writer_uuid     VARCHAR(128)      NULL
        );
        CREATE UNIQUE INDEX journal_persistence_id_sequence_number_idx ON journal (persistence_id, sequence_number);
        """;

    private string _connectionString = null!;

    public override async Task InitializeAsync()
    {
        _connectionString = await postgres.CreateDatabaseAsync();
        Execute(JournalTable);
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        NpgsqlConnection.ClearAllPools();
    }

    protected override DbConnection NewConnection() => new NpgsqlConnection(_connectionString);

    protected override void RefuseInsertsOf(string persistenceId) => Execute($"""
        CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION '{Refusal}'; END $$;
        CREATE TRIGGER refuse BEFORE INSERT ON journal FOR EACH ROW WHEN (NEW.persistence_id = '{persistenceId}') EXECUTE FUNCTION refuse();
        """);
}
