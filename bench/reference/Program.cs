using System.Globalization;
using System.Net;
using TradeRoom.BenchReference;

// Configured like the project's server, by the same environment variables (bench/common.sh starts both the same way).
static int Port(string name, int fallback) =>
    Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
var secret = Environment.GetEnvironmentVariable("JWT_SECRET");
if (string.IsNullOrEmpty(secret) || System.Text.Encoding.UTF8.GetByteCount(secret) < 32)
{
    Console.Error.WriteLine("The reference server needs JWT_SECRET (at least 32 bytes), the secret the load tester signs with.");
    return 2;
}
var bind = IPAddress.Parse(Environment.GetEnvironmentVariable("BIND_ADDRESS") is { Length: > 0 } b ? b : "127.0.0.1");
var app = ReferenceServer.Build(bind, Port("WS_PORT", 4001), Port("API_PORT", 4000), secret);
app.Lifetime.ApplicationStarted.Register(() =>
    Console.WriteLine($"Reference server listening: WebSocket ws://{bind}:{Port("WS_PORT", 4001)}/ws, HTTP http://{bind}:{Port("API_PORT", 4000)}, pid {Environment.ProcessId}"));
await app.RunAsync();
return 0;
