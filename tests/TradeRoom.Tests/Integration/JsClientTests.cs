using System.ComponentModel;
using System.Diagnostics;
using System.Text;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Integration;

/// <summary>
/// Runs the JavaScript client's own suite (clients/js/test, Node's test runner) so that `dotnet test` covers it.
/// The node tests start the server binary built beside this assembly themselves, on free ports.
/// </summary>
public class JsClientTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(180);

    [Fact]
    public async Task The_JavaScript_client_suite_passes_against_the_real_server()
    {
        var root = RepositoryRoot();
        var info = new ProcessStartInfo("node")
        {
            WorkingDirectory = root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "--experimental-websocket", "--test", "--test-reporter=spec", Path.Combine("clients", "js", "test") + Path.DirectorySeparatorChar })
            info.ArgumentList.Add(argument);
        info.Environment["TRADEROOM_SERVER_DLL"] = ServerProcess.ServerDll;
        info.Environment["NO_COLOR"] = "1";

        using var process = new Process { StartInfo = info };
        var output = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        try
        {
            process.Start();
        }
        catch (Win32Exception e)
        {
            Assert.Fail($"`node` could not be started ({e.Message}). The JavaScript client's tests need Node.js 20 or newer on the PATH.");
        }
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var deadline = new CancellationTokenSource(Timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"the node suite did not finish within {Timeout.TotalSeconds} s; output so far:\n{Output()}");
        }
        process.WaitForExit(); // flush the output events

        Assert.True(process.ExitCode == 0, $"node --test exited with {process.ExitCode}:\n{Output()}");
        // An exit code of 0 with no test run at all (a wrong path) must not pass.
        var passed = System.Text.RegularExpressions.Regex.Match(Output(), @"^\S+ pass (\d+)$", System.Text.RegularExpressions.RegexOptions.Multiline);
        Assert.True(passed.Success && int.Parse(passed.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) > 0,
            $"node --test ran no test:\n{Output()}");

        string Output()
        {
            lock (output)
                return output.ToString();
        }
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "TradeRoom.Actors.sln")))
                return directory.FullName;
        }
        throw new InvalidOperationException($"TradeRoom.Actors.sln not found above {AppContext.BaseDirectory}");
    }
}
