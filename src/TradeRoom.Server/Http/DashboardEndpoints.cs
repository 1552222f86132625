using Microsoft.Extensions.FileProviders;
using TradeRoom.Actors;
using TradeRoom.Server.Demo;

namespace TradeRoom.Server.Http;

/// <summary>
/// The live dashboard at <c>/</c>: static files (no build step) from the <c>dashboard</c> folder beside the binary,
/// the JavaScript client at <c>/traderoom-client.js</c>, and <c>GET /api/dashboard/config</c>, which tells the page
/// where the WebSocket port is and whether it may mint development tokens.
/// </summary>
internal static class DashboardEndpoints
{
    /// <summary>Where the build copies the dashboard (and the client, linked from clients/js): beside the binary, wherever it runs from.</summary>
    public static string WebRoot => Path.Combine(AppContext.BaseDirectory, "dashboard");

    /// <summary>Serves the dashboard's files ahead of routing, so the JSON 404 fallback still answers every other path.</summary>
    public static void UseDashboardFiles(this WebApplication app)
    {
        if (!Directory.Exists(WebRoot))
            throw new StartupException($"the dashboard's files are missing: {WebRoot} does not exist (build the server project)");
        var files = new PhysicalFileProvider(WebRoot);
        app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = files });
        app.UseStaticFiles(new StaticFileOptions
        {
            FileProvider = files,
            // A few small files: always revalidate, so a new build is what the page runs.
            OnPrepareResponse = context => context.Context.Response.Headers.CacheControl = "no-cache",
        });
    }

    public static void MapDashboardConfig(this IEndpointRouteBuilder app, TradeRoomSettings settings, DemoSettings demo, bool development,
        ServerSchemes schemes, Akka.Configuration.Config config)
    {
        var publicWsUrls = PublicWsUrls(config);
        var publicHosts = new HashSet<string>(config.GetStringList("traderoom.http.public-hosts"), StringComparer.OrdinalIgnoreCase);
        if (!settings.BindAddress.Equals("0.0.0.0", StringComparison.Ordinal) && !settings.BindAddress.Equals("::", StringComparison.Ordinal))
            publicHosts.Add(settings.BindAddress);

        app.MapGet("/api/dashboard/config", (HttpContext http) =>
        {
            // The configured public URLs, or the page's host (when vouched for) on the WebSocket port (wss:// under traderoom.tls).
            string[] wsUrls = publicWsUrls.Length > 0
                ? publicWsUrls
                : [$"{schemes.WebSocket}://{HostForUrl(PageHost(http, publicHosts))}:{settings.WsPort}/ws"];
            return Results.Json(new DashboardConfig(wsUrls[0], wsUrls, development, new DashboardDemo(demo.Enabled, demo.BullPenId)));
        })
            .WithName("GetDashboardConfig")
            .WithSummary("Where the dashboard's WebSocket connects")
            .WithTags("Dashboard")
            .Produces<DashboardConfig>();
    }

    /// <summary>
    /// <c>http.public-ws-url</c>: one URL, or a list of them (a cluster's nodes, which the page moves through on
    /// reconnect); none when it is empty. Anything but absolute ws:// or wss:// URLs stops the start.
    /// </summary>
    private static string[] PublicWsUrls(Akka.Configuration.Config config)
    {
        const string Key = "traderoom.http.public-ws-url";
        var urls = config.GetValue(Key) is { } value && value.IsArray()
            ? config.GetStringList(Key).ToArray()
            : [config.GetString(Key, "")];
        urls = urls.Where(url => url.Length > 0).ToArray();
        foreach (var url in urls)
        {
            if (!Uri.TryCreate(url, UriKind.Absolute, out var parsed) || parsed.Scheme is not ("ws" or "wss"))
                throw new StartupException($"http.public-ws-url \"{url}\" is not an absolute ws:// or wss:// URL");
        }
        return urls;
    }

    /// <summary>
    /// The host the page was loaded from, when the server can vouch for it: localhost, a loopback address, the address
    /// the client actually connected to, the bind address or a name in <c>http.public-hosts</c>. Any other Host header
    /// is the client's word only (a forged one would send the page's socket elsewhere), so the connection's own local
    /// address answers instead.
    /// </summary>
    private static string PageHost(HttpContext http, HashSet<string> publicHosts)
    {
        var host = http.Request.Host.Host;
        var local = http.Connection.LocalIpAddress;
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || publicHosts.Contains(host))
            return host;
        if (System.Net.IPAddress.TryParse(host.Trim('[', ']'), out var ip)
            && (System.Net.IPAddress.IsLoopback(ip) || (local is not null && Normalize(ip).Equals(Normalize(local)))))
            return ip.ToString();
        return local is null ? "localhost" : Normalize(local).ToString();
    }

    private static System.Net.IPAddress Normalize(System.Net.IPAddress ip) => ip.IsIPv4MappedToIPv6 ? ip.MapToIPv4() : ip;

    private static string HostForUrl(string host) =>
        host.Length == 0 ? "localhost" : host.Contains(':', StringComparison.Ordinal) && !host.StartsWith('[') ? $"[{host}]" : host;
}
