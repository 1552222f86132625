using System.Text.RegularExpressions;
using Microsoft.Playwright;
using TradeRoom.Tests.Integration;
using TradeRoom.Tests.Support;
using static Microsoft.Playwright.Assertions;

namespace TradeRoom.Tests.Browser;

/// <summary>
/// The dashboard in a real headless Chromium against the real server with the demo trade room on: it connects,
/// the leaderboard fills and moves, and across a server restart on the same ports it shows reconnecting and then
/// live data again. Screenshots go to <c>artifacts/</c> beside the test binary; with
/// <c>TRADEROOM_DOCS_SCREENSHOT=1</c> the live one also replaces docs/dashboard.png.
/// </summary>
public class DashboardBrowserTests(ChromiumFixture chromium) : IClassFixture<ChromiumFixture>
{
    private const string DemoHocon = """
        traderoom.demo {
          enabled = on
          tick-interval = 200ms
          round-length = 5m
        }
        """;

    private static readonly LocatorAssertionsToHaveAttributeOptions Soon = new() { Timeout = 15_000 };

    private static string Artifacts => Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "artifacts")).FullName;

    [Fact]
    public async Task Served_over_https_the_dashboard_connects_over_wss_and_comes_alive()
    {
        using var certificate = TestCertificate.Create();
        await using var server = await TestServer.StartAsync(DemoHocon, environment: "Development", tls: certificate);
        // The self-signed certificate: this context accepts it, for the page and its WebSocket alike.
        await using var context = await chromium.Browser.NewContextAsync(new BrowserNewContextOptions { IgnoreHTTPSErrors = true });
        var page = await context.NewPageAsync();
        var sockets = new List<string>();
        page.WebSocket += (_, socket) => sockets.Add(socket.Url);

        await page.GotoAsync($"https://127.0.0.1:{server.ApiPort}/");

        await Expect(page.Locator("#conn-state")).ToHaveAttributeAsync("data-state", "connected", Soon);
        await Expect(page.Locator("#sub-state")).ToHaveAttributeAsync("data-outcome", "snapshot", Soon);
        await Expect(page.Locator("#feed tbody tr").First).ToBeAttachedAsync(new() { Timeout = 15_000 });
        Assert.NotEmpty(sockets);
        Assert.All(sockets, url => Assert.StartsWith($"wss://127.0.0.1:{server.WsPort}/", url, StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_dashboard_comes_alive_and_survives_a_server_restart()
    {
        // Development, as `dotnet run` is: the page mints its own token and connects without any input.
        TestServer? server = await TestServer.StartAsync(DemoHocon, environment: "Development");
        var ports = (server.WsPort, server.ApiPort);
        try
        {
            await using var context = await chromium.Browser.NewContextAsync(new BrowserNewContextOptions
            {
                ViewportSize = new ViewportSize { Width = 1360, Height = 1000 },
            });
            var page = await context.NewPageAsync();
            var pageErrors = new List<string>();
            page.PageError += (_, error) => pageErrors.Add(error);

            await page.GotoAsync($"http://127.0.0.1:{server.ApiPort}/");

            var state = page.Locator("#conn-state");
            var leaderboard = page.Locator("#leaderboard");
            var subscription = page.Locator("#sub-state");
            await Expect(state).ToHaveAttributeAsync("data-state", "connected", Soon);
            await Expect(page.Locator("#conn-user")).ToHaveTextAsync("demo-user");
            // The node the page is on, as auth_success names it (a single server: bind address and WebSocket port), and the URL in use.
            await Expect(page.Locator("#conn-node")).ToHaveTextAsync($"127.0.0.1:{server.WsPort}");
            await Expect(page.Locator("#conn-url")).ToHaveTextAsync($"ws://127.0.0.1:{server.WsPort}/ws");
            await Expect(subscription).ToHaveAttributeAsync("data-outcome", "snapshot", Soon);
            await WaitForLeaderboardToMoveAsync(page);
            await Expect(page.Locator("#room-status")).ToHaveAttributeAsync("data-status", "active", Soon);
            Assert.True(await page.Locator("#members li").CountAsync() >= 2);
            Assert.True(await page.Locator("#feed tbody tr").CountAsync() > 0);
            // Private events of the page's own user arrive too (the demo's first trader is "demo-user").
            await Expect(page.Locator("#feed tbody tr[data-type='portfolio_update']").First).ToBeAttachedAsync(new() { Timeout = 15_000 });
            await Expect(page.Locator("#health-connections")).Not.ToHaveTextAsync("—", new() { Timeout = 10_000 });
            var firstEpoch = await page.Locator("#sub-epoch").TextContentAsync();

            await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Artifacts, "dashboard-live.png"), FullPage = true });
            if (Environment.GetEnvironmentVariable("TRADEROOM_DOCS_SCREENSHOT") == "1")
            {
                // For the README: once the feed is full and the server's figures show this page's connection.
                await page.WaitForFunctionAsync(
                    """() => document.querySelectorAll("#feed tbody tr").length >= 40 && document.querySelector("#health-connections").textContent === "1" """,
                    null, new PageWaitForFunctionOptions { Timeout = 30_000 });
                await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(RepositoryRoot.Path, "docs", "dashboard.png") });
            }

            // Stop the server: the page loses its socket (1001) and keeps trying.
            await server.DisposeAsync();
            server = null;
            await Expect(state).ToHaveAttributeAsync("data-state", "reconnecting", Soon);
            await Expect(page.Locator("#conn-node")).ToHaveTextAsync("—");
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Artifacts, "dashboard-reconnecting.png"), FullPage = true });

            // A new server on the same ports: a new room epoch, so the page resubscribes and applies the snapshot.
            server = await TestServer.StartAsync(DemoHocon, environment: "Development", ports: ports);
            await Expect(state).ToHaveAttributeAsync("data-state", "connected", Soon);
            await Expect(subscription).ToHaveAttributeAsync("data-count", "2", Soon);
            await Expect(page.Locator("#conn-node")).ToHaveTextAsync($"127.0.0.1:{server.WsPort}");
            await Expect(subscription).ToHaveAttributeAsync("data-outcome", "snapshot", Soon);
            await Expect(page.Locator("#sub-epoch")).Not.ToHaveTextAsync(firstEpoch!);
            await WaitForLeaderboardToMoveAsync(page);

            // Message rates come from deltas of /api/health's counters where the server reports them, else "—".
            var health = await server.GetJsonAsync("/api/health");
            var eventsRate = page.Locator("#health-events-rate");
            if (health.Json.TryGetProperty("eventsPublished", out _))
                await Expect(eventsRate).ToHaveTextAsync(new Regex(@"^\d+\.\d$"), new() { Timeout = 15_000 });
            else
                await Expect(eventsRate).ToHaveTextAsync("—");

            await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Artifacts, "dashboard-after-restart.png"), FullPage = true });
            Assert.Empty(pageErrors);
        }
        finally
        {
            if (server is not null)
                await server.DisposeAsync();
        }
    }

    /// <summary>Waits until the leaderboard has rows and has been redrawn with different standings at least twice.</summary>
    private static async Task WaitForLeaderboardToMoveAsync(IPage page)
    {
        await Expect(page.Locator("#leaderboard tbody tr").Nth(1)).ToBeAttachedAsync(new() { Timeout = 15_000 });
        var before = await page.Locator("#leaderboard tbody").TextContentAsync();
        var updates = int.Parse(await page.Locator("#leaderboard").GetAttributeAsync("data-updates") ?? "0", System.Globalization.CultureInfo.InvariantCulture);
        await page.WaitForFunctionAsync(
            """
            ([before, updates]) => {
              const table = document.querySelector("#leaderboard");
              return Number(table.dataset.updates) >= updates + 2 && table.tBodies[0].textContent !== before;
            }
            """,
            new object[] { before ?? "", updates },
            new PageWaitForFunctionOptions { Timeout = 15_000 });
    }
}
