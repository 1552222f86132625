using System.Text.Json;
using TradeRoom.LoadTest;

// Socket completions run on the epoll thread instead of hopping to the thread pool: the receive loops only parse
// and count, and one hop fewer per frame leaves more of the machine to the server being measured. Read once by
// System.Net.Sockets when the first socket is used, so it must be set before that.
Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");

if (args.Length > 0 && args[0] == "trivial-server")
{
    var port = args.Length > 2 && args[1] == "--port" ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 4201;
    var frames = args.Length > 4 && args[3] == "--frames" ? int.Parse(args[4], System.Globalization.CultureInfo.InvariantCulture) : 1000;
    await TrivialServer.RunAsync(port, frames, CancellationToken.None);
    return 0;
}
if (args.Contains("--persist"))
    return await PersistenceBench.RunAsync(args, Console.Out);
if (args.Contains("--failover"))
    return await ClusterFailover.RunAsync(args, Console.Out);
if (args.Contains("--attack"))
    return await RoomAttack.RunAsync(args, Console.Out);
if (args.Length > 0 && args[0] is "gcdump-diff" or "perf-summary")
    return await ProfileEvidence.RunAsync(args, Console.Out);
if (args.Length == 3 && args[0] == "report-cluster")
{
    await ClusterReport.WriteSectionAsync(args[1], args[2]);
    return 0;
}
if (args.Length == 3 && args[0] == "report")
{
    await BenchmarkReport.WriteAsync(args[1], args[2]);
    return 0;
}

LoadTestOptions options;
try
{
    if (args.Contains("--help") || args.Contains("-h"))
    {
        Console.WriteLine(LoadTestOptions.Usage);
        return 0;
    }
    options = LoadTestOptions.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"error: {e.Message}\n");
    Console.Error.WriteLine(LoadTestOptions.Usage);
    return 2;
}

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };
try
{
    var result = await new LoadTestRunner(options, Console.Out).RunAsync(cancel.Token);
    Console.WriteLine(LoadTestRunner.Format(result));
    if (options.JsonPath is { } path)
    {
        var json = JsonSerializer.Serialize(result, new JsonSerializerOptions(JsonSerializerDefaults.Web) { WriteIndented = true });
        if (path == "-")
            Console.WriteLine(json);
        else
            await File.WriteAllTextAsync(path, json);
    }
    return result.Clean ? 0 : 1;
}
catch (LoadTestException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}
catch (OperationCanceledException)
{
    Console.Error.WriteLine("cancelled");
    return 130;
}
