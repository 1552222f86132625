using System.Diagnostics;
using Npgsql;
using TradeRoom.Tests.Integration;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace TradeRoom.Tests.Support;

/// <summary>
/// A throwaway PostgreSQL for the tests: <c>tests/postgres.sh</c> installs Debian's <c>postgresql</c> when it is
/// missing, then starts an instance with its data in a fresh temp folder, on a free port on 127.0.0.1, trust auth.
/// Disposing stops it and deletes the folder; if the test process dies first, the script's watchdog does both.
/// When PostgreSQL cannot be installed or started the fixture fails with the script's output: these tests never skip.
/// Share one instance through <see cref="PostgresCollection"/>; each test takes its own database from
/// <see cref="CreateDatabaseAsync"/>.
/// </summary>
public sealed class PostgresServer(IMessageSink diagnostics) : IAsyncLifetime
{
    private static readonly string Script = Path.Combine(RepositoryRoot.Path, "tests", "postgres.sh");

    private string? _directory;

    /// <summary>The instance's <c>postgres</c> database as the <c>postgres</c> superuser (Npgsql format).</summary>
    public string ConnectionString { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        await RunScriptAsync(TimeSpan.FromMinutes(10), "install");

        _directory = Directory.CreateTempSubdirectory("traderoom-pg-").FullName;
        var watch = Stopwatch.StartNew();
        try
        {
            // Our process id: the script's watchdog stops the instance when this process ends, however it ends.
            var output = await RunScriptAsync(TimeSpan.FromMinutes(2), "start", _directory, Environment.ProcessId.ToString());
            ConnectionString = output.Trim();
        }
        catch
        {
            // xunit does not dispose a fixture whose start failed: leave no half-made instance behind.
            await RunScriptAsync(TimeSpan.FromMinutes(1), "stop", _directory);
            throw;
        }
        diagnostics.OnMessage(new DiagnosticMessage($"PostgreSQL started in {watch.ElapsedMilliseconds} ms: {ConnectionString}"));
    }

    /// <summary>Creates a new, empty database and returns its connection string: one per test keeps tests apart.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        var name = $"test_{Guid.NewGuid():N}";
        await using (var connection = new NpgsqlConnection(ConnectionString))
        {
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
            await create.ExecuteNonQueryAsync();
        }
        return new NpgsqlConnectionStringBuilder(ConnectionString) { Database = name }.ConnectionString;
    }

    public async Task DisposeAsync()
    {
        if (_directory is null)
            return;
        // Pooled connections would outlive the server; drop them before it goes.
        NpgsqlConnection.ClearAllPools();
        var watch = Stopwatch.StartNew();
        await RunScriptAsync(TimeSpan.FromMinutes(1), "stop", _directory);
        diagnostics.OnMessage(new DiagnosticMessage($"PostgreSQL stopped in {watch.ElapsedMilliseconds} ms"));
    }

    /// <summary>Runs the script and returns its stdout; throws with all its output when it fails or hangs.</summary>
    private static async Task<string> RunScriptAsync(TimeSpan limit, params string[] arguments)
    {
        var info = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Script);
        foreach (var argument in arguments)
            info.ArgumentList.Add(argument);

        using var script = Process.Start(info)!;
        var output = script.StandardOutput.ReadToEndAsync();
        var errors = script.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(limit);
        try
        {
            await script.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            script.Kill(entireProcessTree: true);
            await script.WaitForExitAsync();
            throw new InvalidOperationException(
                $"{Script} {string.Join(' ', arguments)} did not finish within {limit.TotalMinutes:0.#} min.\n{await output}\n{await errors}");
        }

        if (script.ExitCode != 0)
        {
            var hint = arguments[0] == "install" ? " Install Debian's package by hand: apt-get install postgresql." : "";
            throw new InvalidOperationException(
                $"The PostgreSQL tests need a throwaway server, and {Script} {string.Join(' ', arguments)} failed " +
                $"(exit code {script.ExitCode}).{hint}\n{await output}\n{await errors}");
        }
        return await output;
    }
}

/// <summary>Test classes in this collection share one <see cref="PostgresServer"/>: the suite starts one instance.</summary>
[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresServer>
{
    public const string Name = "PostgreSQL";
}
