using TradeRoom.Actors;
using TradeRoom.Actors.Auth;
using TradeRoom.Server;
using TradeRoom.Server.Demo;

WebApplication app;
try
{
    app = TradeRoomHost.Build(args);
}
catch (StartupException e)
{
    Console.Error.WriteLine($"TradeRoom cannot start: {e.Message}");
    return 1;
}

var settings = app.Services.GetRequiredService<TradeRoomSettings>();
var demo = app.Services.GetRequiredService<DemoSettings>();
var schemes = app.Services.GetRequiredService<ServerSchemes>();
app.Lifetime.ApplicationStarted.Register(() =>
{
    Console.WriteLine($"TradeRoom listening: WebSocket {schemes.WebSocket}://localhost:{settings.WsPort}/ws, HTTP {schemes.Http}://localhost:{settings.ApiPort} (health: /api/health), pid {Environment.ProcessId}");
    Console.WriteLine($"Dashboard: {schemes.Http}://localhost:{settings.ApiPort}/" + (demo.Enabled
        ? $" (demo trade room on: bull pen \"{demo.BullPenId}\")"
        : $" (start with {TradeRoomHost.DemoSwitch} for a simulated trade room to watch)"));
    Console.WriteLine(RuntimeSettingsLine());
    if (app.Environment.IsDevelopment() && settings.JwtSecret == ServerConfig.DevelopmentSecret)
    {
        var issuer = new TokenIssuer(settings.JwtSecret);
        Console.WriteLine("Development mode: JWT_SECRET is not set, so the built-in development secret signs tokens. Valid for 24 hours:");
        Console.WriteLine($"  user token (userId \"demo-user\"): {issuer.UserToken("demo-user", TimeSpan.FromHours(24))}");
        Console.WriteLine($"  service token (for publishing):   {issuer.ServiceToken("demo-service", TimeSpan.FromHours(24))}");
    }
});

try
{
    await app.RunAsync();
    return 0;
}
catch (IOException e) when (e.InnerException is System.Net.Sockets.SocketException || e.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
{
    Console.Error.WriteLine($"TradeRoom cannot start: {e.Message.TrimEnd('.')}. Another process holds the port; set WS_PORT / API_PORT to free ones.");
    return 1;
}
catch (Exception e) when (RemotingFailure(e) is { } failure)
{
    // Akka.Hosting starts the actor system inside the host's start, so a remoting port that cannot be bound surfaces here.
    Console.Error.WriteLine($"TradeRoom cannot start: cluster remoting on {settings.Cluster.Hostname}:{settings.Cluster.Port} failed " +
        $"({failure.GetBaseException().Message}). Set CLUSTER_HOSTNAME / CLUSTER_PORT to an address of this machine and a free port.");
    return 1;
}

// What the runtime really runs with (runtimeconfig, or DOTNET_* over it), as the GC reports it: the settings the
// benchmarks measure (README "Load testing and benchmarks"), so that a deployment can check it got them.
static string RuntimeSettingsLine()
{
    var gc = GC.GetConfigurationVariables();
    static string MiB(object? bytes) => bytes is long b && b > 0 ? $"{b / 1048576.0:0.##} MiB" : "default";
    return $"Runtime: {(System.Runtime.GCSettings.IsServerGC ? "server" : "workstation")} GC, gen-0 budget {MiB(gc.GetValueOrDefault("GCGen0MaxBudget"))}, " +
           $"GC regions {MiB(gc.GetValueOrDefault("GCRegionSize"))}, tiered PGO {(AppContext.GetData("System.Runtime.TieredPGO") is false or "false" ? "off" : "on")}";
}

static Akka.Remote.RemoteTransportException? RemotingFailure(Exception e) => e switch
{
    Akka.Remote.RemoteTransportException remoting => remoting,
    AggregateException aggregate => aggregate.InnerExceptions.Select(RemotingFailure).FirstOrDefault(f => f is not null),
    _ => e.InnerException is { } inner ? RemotingFailure(inner) : null,
};
