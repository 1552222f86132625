using System.Diagnostics;
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
        var info = new ProcessStartInfo("node") { WorkingDirectory = RepositoryRoot.Path };
        foreach (var argument in new[] { "--experimental-websocket", "--test", "--test-reporter=spec", Path.Combine("clients", "js", "test") + Path.DirectorySeparatorChar })
            info.ArgumentList.Add(argument);
        info.Environment["TRADEROOM_SERVER_DLL"] = ServerProcess.ServerDll;
        var (exitCode, output) = await ToolProcess.RunAsync(info, Timeout, "the JavaScript client's tests need Node.js 20 or newer on the PATH.");

        Assert.True(exitCode == 0, $"node --test exited with {exitCode}:\n{output}");
        // An exit code of 0 with no test run at all (a wrong path) must not pass.
        var passed = System.Text.RegularExpressions.Regex.Match(output, @"^\S+ pass (\d+)$", System.Text.RegularExpressions.RegexOptions.Multiline);
        Assert.True(passed.Success && int.Parse(passed.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) > 0,
            $"node --test ran no test:\n{output}");
    }
}
