using System.Globalization;
using TradeRoom.Contracts.Client;

// A trade service in another process: publishes a stream of events to one bull pen through the cluster's
// IntegrationActor (TradeRoomPublisher, over ClusterClient) and prints each acknowledgement.
//
//   dotnet run --project samples/TradeService -- --contacts akka.tcp://traderoom@127.0.0.1:4053 --room r1 --count 20
//
// Options (or environment variables): --contacts (TRADEROOM_CONTACTS, comma-separated node addresses),
// --room (BULL_PEN_ID), --count (0: until Ctrl+C), --interval in ms, --trader (the userId of the order events),
// --type (publish only this type, e.g. an unknown one to see a rejection), --timeout in seconds.
// Exit code 0 when every event was acknowledged, 1 when any was rejected or timed out, 2 for a bad option.

var options = Options.Parse(args);
if (options is null)
    return 2;

using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stop.Cancel();
};

TradeRoomPublisher started;
try
{
    started = TradeRoomPublisher.Start(options.Contacts);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"TradeService: {e.Message}");
    return 2;
}
await using var publisher = started;
Console.WriteLine($"TradeService publishing to bull pen {options.Room} through {string.Join(", ", options.Contacts)}");

var failures = 0;
var random = new Random(7);
for (var i = 1; (options.Count == 0 || i <= options.Count) && !stop.IsCancellationRequested; i++)
{
    var (type, data) = options.Type is { } only ? (only, (object)new { n = i }) : NextEvent(i, options.Trader, random);
    try
    {
        var ack = await publisher.PublishAsync(options.Room, type, data, options.Timeout, stop.Token);
        Console.WriteLine($"ack {i} {type} room={ack.BullPenId} seq={ack.Seq}");
    }
    catch (PublishRejectedException e)
    {
        failures++;
        Console.WriteLine($"rejected {i} {type} room={e.Rejection.BullPenId} code={e.Code}: {e.Rejection.Message}");
    }
    catch (PublishTimeoutException e)
    {
        failures++;
        Console.WriteLine($"timeout {i} {type} room={options.Room}: {e.Message}");
    }
    catch (OperationCanceledException)
    {
        break;
    }
    if (options.Interval > TimeSpan.Zero && (options.Count == 0 || i < options.Count))
    {
        try
        {
            await Task.Delay(options.Interval, stop.Token);
        }
        catch (OperationCanceledException)
        {
        }
    }
}
Console.WriteLine(failures == 0 ? "TradeService done" : $"TradeService done, {failures} not acknowledged");
return failures == 0 ? 0 : 1;

// Every other event is an order of the trader (private: only that user's connections see it), then the leaderboard.
static (string Type, object Data) NextEvent(int i, string trader, Random random) => i % 2 == 1
    ? ("order_executed", new { userId = trader, orderId = $"o-{i}", symbol = "AAPL", side = i % 4 == 1 ? "buy" : "sell", qty = 10, price = Math.Round(180 + random.NextDouble() * 10, 2) })
    : ("leaderboard_update", new
    {
        entries = new[]
        {
            new { userId = trader, rank = 1, pnl = Math.Round(1000 + random.NextDouble() * 500, 2) },
            new { userId = "rival", rank = 2, pnl = Math.Round(500 + random.NextDouble() * 400, 2) },
        },
    });

internal sealed record Options(string[] Contacts, string Room, int Count, TimeSpan Interval, string Trader, string? Type, TimeSpan Timeout)
{
    public static Options? Parse(string[] args)
    {
        var values = new Dictionary<string, string>
        {
            ["contacts"] = Environment.GetEnvironmentVariable("TRADEROOM_CONTACTS") ?? "akka.tcp://traderoom@127.0.0.1:4053",
            ["room"] = Environment.GetEnvironmentVariable("BULL_PEN_ID") ?? "demo",
            ["count"] = "20",
            ["interval"] = "500",
            ["trader"] = "demo-user",
            ["timeout"] = "10",
        };
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i].StartsWith("--", StringComparison.Ordinal) ? args[i][2..] : null;
            if (name is null || !(values.ContainsKey(name) || name == "type") || i + 1 == args.Length)
                return Fail($"unknown option or missing value: {args[i]}");
            values[name] = args[++i];
        }
        if (!int.TryParse(values["count"], CultureInfo.InvariantCulture, out var count) || count < 0)
            return Fail("--count must be a whole number, 0 or more");
        if (!int.TryParse(values["interval"], CultureInfo.InvariantCulture, out var interval) || interval < 0)
            return Fail("--interval must be milliseconds, 0 or more");
        if (!double.TryParse(values["timeout"], CultureInfo.InvariantCulture, out var timeout) || timeout <= 0)
            return Fail("--timeout must be seconds, more than 0");
        var contacts = values["contacts"].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (contacts.Length == 0)
            return Fail("--contacts needs at least one node address, e.g. akka.tcp://traderoom@127.0.0.1:4053");
        return new Options(contacts, values["room"], count, TimeSpan.FromMilliseconds(interval), values["trader"],
            values.GetValueOrDefault("type"), TimeSpan.FromSeconds(timeout));
    }

    private static Options? Fail(string why)
    {
        Console.Error.WriteLine($"TradeService: {why}");
        Console.Error.WriteLine("usage: TradeService [--contacts akka.tcp://traderoom@host:port,...] [--room id] [--count n] [--interval ms] [--trader userId] [--type t] [--timeout s]");
        return null;
    }
}
