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

    public static void MapDashboardConfig(this IEndpointRouteBuilder app, TradeRoomSettings settings, DemoSettings demo, bool development, ServerSchemes schemes)
    {
        app.MapGet("/api/dashboard/config", (HttpContext http) => Results.Json(new
        {
            // The host the page was loaded from, on the WebSocket port (wss:// under traderoom.tls).
            wsUrl = $"{schemes.WebSocket}://{HostForUrl(http.Request.Host.Host)}:{settings.WsPort}/ws",
            development,
            demo = new { enabled = demo.Enabled, bullPenId = demo.BullPenId },
        }));
    }

    private static string HostForUrl(string host) =>
        host.Length == 0 ? "localhost" : host.Contains(':', StringComparison.Ordinal) && !host.StartsWith('[') ? $"[{host}]" : host;
}
