using TradeRoom.Protocol;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using TradeRoom.Client;

// Follows one bull pen and prints each event, typed: the .NET client as a service or bot uses it.
//   dotnet run --project samples/Listener -- --url ws://127.0.0.1:4001/ws --room demo \
//     --token-url "http://127.0.0.1:4000/api/dev/token?userId=demo-user"
// Options: --url (repeat it, or give a comma-separated list, for the nodes of a cluster), --token JWT (or
// TRADEROOM_TOKEN) or --token-url (GET on every connect and refresh, answering {"token":…} as the development
// server's /api/dev/token does), --room (or BULL_PEN_ID; default demo), --count N (exit 0 after N events; 0: until
// Ctrl+C). It exits 1 if the client stops on its own (a refused token).

var urls = new List<Uri>();
string? token = Environment.GetEnvironmentVariable("TRADEROOM_TOKEN"), tokenUrl = null;
var room = Environment.GetEnvironmentVariable("BULL_PEN_ID") ?? "demo";
var count = 0;
for (var i = 0; i < args.Length; i++)
{
    var value = i + 1 < args.Length ? args[i + 1] : null;
    switch (args[i])
    {
        case "--url" when value is not null:
            urls.AddRange(value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(u => new Uri(u)));
            i++;
            break;
        case "--token" when value is not null:
            token = value;
            i++;
            break;
        case "--token-url" when value is not null:
            tokenUrl = value;
            i++;
            break;
        case "--room" when value is not null:
            room = value;
            i++;
            break;
        case "--count" when value is not null && int.TryParse(value, CultureInfo.InvariantCulture, out var n) && n >= 0:
            count = n;
            i++;
            break;
        default:
            Console.Error.WriteLine($"unknown or incomplete option {args[i]}; see samples/Listener/Program.cs");
            return 2;
    }
}
if (urls.Count == 0)
    urls.Add(new Uri("ws://127.0.0.1:4001/ws"));
if ((token is null) == (tokenUrl is null))
{
    Console.Error.WriteLine("give --token (or TRADEROOM_TOKEN) or --token-url, one of them");
    return 2;
}

using var http = new HttpClient();
var options = new TradeRoomClientOptions { Urls = urls };
if (tokenUrl is not null)
    options.TokenProvider = async cancellation => (await http.GetFromJsonAsync<DevToken>(tokenUrl, cancellation))!.Token;
else
    options.Token = token;

await using var client = new TradeRoomClient(options);
var done = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
var seen = 0;
client.Authenticated += auth => Console.WriteLine($"authenticated {auth.UserId} on {auth.Node}");
client.Error += error => Console.WriteLine($"error {error}");
client.Closed += close => Console.WriteLine($"closed {close.Code} {close.Reason} reconnect={close.WillReconnect}");
client.StateChanged += change =>
{
    if (change.State == ClientState.Closed)
        done.TrySetResult(1);
};

client.Subscribe(room, r =>
{
    r.OnSubscribed(s => Console.WriteLine(
        $"subscribed {s.BullPenId} seq={s.Seq} epoch={s.Epoch} recovered={s.Recovered} members={s.State.Members.Count}"));
    r.On<OrderExecuted>((o, e) => Print(e, $"{o.UserId} {o.Side} {o.Qty} {o.Symbol} @ {o.Price}"));
    r.On<OrderFailed>((o, e) => Print(e, $"{o.UserId} {o.Side} {o.Qty} {o.Symbol}: {o.Reason}"));
    r.On<OrderCancelled>((o, e) => Print(e, $"{o.UserId} {o.OrderId} {o.Reason}"));
    r.On<LeaderboardUpdate>((b, e) => Print(e, $"leader {b.Entries?.FirstOrDefault()?.Name} of {b.Entries?.Count}"));
    r.On<SnapshotCreated>((b, e) => Print(e, $"snapshot {b.SnapshotId} of {b.Entries?.Count}"));
    r.On<RankingChanged>((c, e) => Print(e, $"{c.Name} {c.From} -> {c.To}"));
    r.On<PositionUpdate>((p, e) => Print(e, $"{p.UserId} {p.Qty} {p.Symbol} pnl {p.UnrealizedPnl}"));
    r.On<PositionClosed>((p, e) => Print(e, $"{p.UserId} {p.Symbol} realized {p.RealizedPnl}"));
    r.On<PortfolioUpdate>((p, e) => Print(e, $"{p.UserId} equity {p.Equity}"));
    r.On<RoomStateChanged>((s, e) => Print(e, $"{s.Name}: {s.Status}"));
    r.On<RoomStarted>((s, e) => Print(e, $"{s.Name} until {s.EndsAt:O}"));
    r.On<RoomEnded>((s, e) => Print(e, $"round {s.Round} won by {s.Winner?.Name}"));
    r.On<MemberJoined>((m, e) => Print(e, $"{m.Name} ({m.UserId})"));
    r.On<MemberLeft>((m, e) => Print(e, $"{m.Name} ({m.UserId})"));
    r.OnEvent(e =>
    {
        if (!EventTypes.All.Contains(e.Type))
            Print(e, e.Data.GetRawText());
    });
});

void Print(EventFrame e, string text)
{
    Console.WriteLine($"event {e.Seq} {e.Type} {text}");
    if (count > 0 && ++seen >= count)
        done.TrySetResult(0);
}

Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    done.TrySetResult(0);
};
try
{
    await client.ConnectAsync();
}
catch (TradeRoomClientException e)
{
    Console.WriteLine($"not connected: {e.Message}");
    return 1;
}
var exit = await done.Task;
await client.CloseAsync();
return exit;

internal sealed record DevToken(string Token);
