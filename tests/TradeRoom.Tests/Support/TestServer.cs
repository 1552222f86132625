using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using TradeRoom.Actors.Auth;
using TradeRoom.Server;

namespace TradeRoom.Tests.Support;

/// <summary>
/// The real server (Kestrel + actor system) on free loopback ports, for end-to-end tests.
/// <c>await using var server = await TestServer.StartAsync();</c>
/// </summary>
public sealed class TestServer : IAsyncDisposable
{
    public const string Secret = "integration-test-secret-0123456789-abcdef";

    private TestServer(WebApplication app, int wsPort, int apiPort, TestCertificate? tls, bool https, string scratch)
    {
        _scratch = scratch;
        App = app;
        WsPort = wsPort;
        ApiPort = apiPort;
        Tls = tls;
        Tokens = new TokenIssuer(Secret);
        var api = new Uri($"{(https ? "https" : "http")}://127.0.0.1:{apiPort}");
        Http = https ? tls!.HttpClient(api) : new HttpClient { BaseAddress = api };
    }

    private readonly string _scratch;

    /// <summary>The certificate the server serves TLS with, if it does; <see cref="ConnectAsync"/> and <see cref="Http"/> trust it.</summary>
    public TestCertificate? Tls { get; }

    public WebApplication App { get; }
    public int WsPort { get; }
    public int ApiPort { get; }
    public TokenIssuer Tokens { get; }
    public HttpClient Http { get; }
    public Uri WsUri => new($"{(Tls is null ? "ws" : "wss")}://127.0.0.1:{WsPort}/ws");

    /// <param name="hocon">Extra HOCON (e.g. <c>traderoom.rooms.idle-timeout = 1s</c>), over the test defaults.</param>
    /// <param name="environment">The host environment ("Development" maps the development-only endpoints).</param>
    /// <param name="ports">Fixed ports, e.g. those of a server this one replaces; free ones by default.</param>
    /// <param name="configure">Changes to the host builder (e.g. a log provider that captures lines).</param>
    /// <param name="tls">Serve TLS with this certificate (its PEM files; <paramref name="hocon"/> may switch to the PFX or set tls.http).</param>
    public static async Task<TestServer> StartAsync(string? hocon = null, string environment = "Testing", (int WsPort, int ApiPort)? ports = null,
        Action<WebApplicationBuilder>? configure = null, TestCertificate? tls = null)
    {
        var wsPort = ports?.WsPort ?? FreePort();
        var apiPort = ports?.ApiPort ?? FreePort();
        // Each server its own SQLite file (the default provider), which <paramref name="hocon"/> may replace.
        var scratch = TestDatabase.NewSqliteFolder();
        var overrides = $$"""
            traderoom {
              ws-port = {{wsPort}}
              api-port = {{apiPort}}
              bind-address = "127.0.0.1"
              jwt.secret = "{{Secret}}"
              persistence.sqlite.file = "{{Path.Combine(scratch, "traderoom.db")}}"
            }
            akka.loglevel = WARNING
            {{tls?.PemHocon}}
            {{hocon}}
            """;
        var app = TradeRoomHost.Build(["--environment", environment], overrides, configure);
        await app.StartAsync();
        return new TestServer(app, wsPort, apiPort, tls, app.Services.GetRequiredService<ServerSchemes>().Http == "https", scratch);
    }

    public string UserToken(string userId) => Tokens.UserToken(userId, TimeSpan.FromMinutes(10));

    public string ServiceToken() => Tokens.ServiceToken("test-service", TimeSpan.FromMinutes(10));

    /// <summary>A connected, authenticated client (auth_success already read).</summary>
    public async Task<WsClient> ConnectAsync(string userId)
    {
        var client = await WsClient.ConnectAsync(WsUri, Tls is null ? null : Tls.Validate);
        await client.SendAsync(new { type = "auth", data = new { token = UserToken(userId) } });
        var reply = await client.ReceiveAsync();
        if (reply.Type != "auth_success")
            throw new InvalidOperationException($"expected auth_success, got {reply.Raw}");
        return client;
    }

    /// <summary>A connected client subscribed to <paramref name="bullPenId"/> (subscribed already read).</summary>
    public async Task<WsClient> ConnectAndSubscribeAsync(string userId, string bullPenId)
    {
        var client = await ConnectAsync(userId);
        await client.SendAsync(new { type = "subscribe_room", data = new { bullPenId } });
        var reply = await client.ReceiveAsync();
        if (reply.Type != "subscribed")
            throw new InvalidOperationException($"expected subscribed, got {reply.Raw}");
        return client;
    }

    /// <summary>POSTs <paramref name="body"/> (a JSON string) to <paramref name="path"/>, with a service token unless <paramref name="token"/> says otherwise ("" for none).</summary>
    public Task<HttpResponseMessage> PostAsync(string path, string body, string? token = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        token ??= ServiceToken();
        if (token.Length > 0)
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return Http.SendAsync(request);
    }

    /// <summary>Publishes one event over HTTP and returns its seq; throws unless the server answered 202.</summary>
    public async Task<long> PublishAsync(string bullPenId, string type, object data)
    {
        var body = System.Text.Json.JsonSerializer.Serialize(new { type, data });
        using var response = await PostAsync($"/api/rooms/{Uri.EscapeDataString(bullPenId)}/events", body);
        var text = await response.Content.ReadAsStringAsync();
        if (response.StatusCode != HttpStatusCode.Accepted)
            throw new InvalidOperationException($"publish failed: {(int)response.StatusCode} {text}");
        return System.Text.Json.JsonDocument.Parse(text).RootElement.GetProperty("seq").GetInt64();
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
        TestDatabase.Delete(_scratch);
    }

    private static readonly HashSet<int> HandedOut = [];

    /// <summary>
    /// A free port, never one already handed out in this process: the OS may give the same ephemeral port to two
    /// quick binds once the first listener has closed, and servers of test classes running in parallel would collide.
    /// </summary>
    private static int FreePort()
    {
        while (true)
        {
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;
            lock (HandedOut)
            {
                if (HandedOut.Add(port))
                    return port;
            }
        }
    }
}
