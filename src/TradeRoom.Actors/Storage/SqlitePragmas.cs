using System.Data.Common;
using LinqToDB.Interceptors;

namespace TradeRoom.Actors.Storage;

/// <summary>Runs the given PRAGMA statements on every SQLite connection linq2db opens (settings SQLite keeps per connection, not in the file).</summary>
public sealed class SqlitePragmas(string pragmas) : ConnectionInterceptor
{
    public override void ConnectionOpened(ConnectionEventData eventData, DbConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = pragmas;
        command.ExecuteNonQuery();
    }

    public override async Task ConnectionOpenedAsync(ConnectionEventData eventData, DbConnection connection, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = pragmas;
        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}
