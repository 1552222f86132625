using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.DotNetClient;

/// <summary>
/// samples/Listener, the .NET client in its own process, follows the demo trade room of a real development server:
/// it gets its token from the dev token endpoint through its token provider and prints the demo's events, each read
/// into its typed record, without a single error.
/// </summary>
public sealed partial class ListenerSampleTests
{
    private const string DemoHocon = """
        traderoom.demo {
          enabled = on
          tick-interval = 100ms
          round-length = 5m
        }
        """;

    [Fact]
    public async Task The_listener_sample_prints_the_demo_rooms_events_typed_and_in_order()
    {
        await using var server = await TestServer.StartAsync(DemoHocon, environment: "Development");
        var run = await RunListenerAsync(
            "--url", server.WsUri.ToString(),
            "--token-url", $"http://127.0.0.1:{server.ApiPort}/api/dev/token?userId=demo-user",
            "--room", "demo",
            "--count", "60");

        Assert.True(run.ExitCode == 0, run.Output);
        Assert.Contains($"authenticated demo-user on 127.0.0.1:{server.WsPort}", run.Output);
        Assert.Matches(SubscribedLine(), run.Output);
        var seqs = EventLine().Matches(run.Output).Select(m => long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToList();
        Assert.True(seqs.Count >= 60, run.Output); // it stops after the 60th; a few more may print while it closes
        Assert.Equal(seqs.Order(), seqs);
        Assert.Equal(seqs.Count, seqs.Distinct().Count());
        Assert.DoesNotContain("error ", run.Output);
        // Typed output: a leaderboard names its leader, an order its trader and symbol.
        Assert.Matches(@"event \d+ leaderboard_update leader \S+", run.Output);
    }

    [GeneratedRegex(@"^subscribed demo seq=\d+ epoch=\S+ recovered=False members=\d+", RegexOptions.Multiline)]
    private static partial Regex SubscribedLine();

    [GeneratedRegex(@"^event (\d+) [a-z_]+ ", RegexOptions.Multiline)]
    private static partial Regex EventLine();

    private sealed record ListenerRun(int ExitCode, string Output);

    private static async Task<ListenerRun> RunListenerAsync(params string[] args)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(ListenerDll)!,
        };
        info.ArgumentList.Add(ListenerDll);
        foreach (var arg in args)
            info.ArgumentList.Add(arg);
        info.Environment.Remove("TRADEROOM_TOKEN");
        info.Environment.Remove("BULL_PEN_ID");
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"the listener did not finish within 60 s:\n{await stdout}\n{await stderr}");
        }
        return new ListenerRun(process.ExitCode, await stdout + await stderr);
    }

    /// <summary>samples/Listener's own output folder, of the configuration these tests were built in (the test project builds it).</summary>
    private static string ListenerDll
    {
        get
        {
            var output = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)); // tests/TradeRoom.Tests/bin/<configuration>/<tfm>
            var root = output.Parent!.Parent!.Parent!.Parent!.Parent!.FullName;
            return Path.Combine(root, "samples", "Listener", "bin", output.Parent.Name, output.Name, "Listener.dll");
        }
    }
}
