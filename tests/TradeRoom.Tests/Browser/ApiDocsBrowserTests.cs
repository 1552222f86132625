using System.Text.RegularExpressions;
using Microsoft.Playwright;
using TradeRoom.Tests.Support;
using static Microsoft.Playwright.Assertions;

namespace TradeRoom.Tests.Browser;

/// <summary>
/// The interactive API page (<c>/api/docs</c>, Scalar, Development only) in a real headless Chromium against the real
/// server: it loads without page errors, fetches nothing from any other host (no CDN: its assets are the server's),
/// shows the operations of /openapi/v1.json, and publishes an event with the development service token it fills in,
/// which a WebSocket subscriber receives. A screenshot goes to <c>artifacts/api-docs.png</c> beside the test binary.
/// </summary>
public class ApiDocsBrowserTests(ChromiumFixture chromium) : IClassFixture<ChromiumFixture>
{
    private static readonly LocatorAssertionsToBeVisibleOptions Soon = new() { Timeout = 30_000 };

    private static string Artifacts => Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "artifacts")).FullName;

    [Fact]
    public async Task The_docs_page_loads_without_errors_from_the_server_alone_and_publishes_with_the_dev_token()
    {
        await using var server = await TestServer.StartAsync(environment: "Development");
        await using var subscriber = await server.ConnectAndSubscribeAsync("u1", "docs-ui");
        await using var context = await chromium.Browser.NewContextAsync(new BrowserNewContextOptions
        {
            ViewportSize = new ViewportSize { Width = 1360, Height = 1000 },
        });
        var page = await context.NewPageAsync();
        var pageErrors = new List<string>();
        var elsewhere = new List<string>();
        page.PageError += (_, error) => pageErrors.Add(error);
        page.Request += (_, request) =>
        {
            var url = new Uri(request.Url);
            if (url.Scheme is "http" or "https" or "ws" or "wss" && url.Authority != $"127.0.0.1:{server.ApiPort}")
                elsewhere.Add(request.Url);
        };

        await page.GotoAsync($"http://127.0.0.1:{server.ApiPort}/api/docs");
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "TradeRoom HTTP API" })).ToBeVisibleAsync(Soon);

        // The publish operation, then its "Test Request" client, which has the development service token filled in.
        await page.GetByRole(AriaRole.Button, new() { Name = "Open Group - Publishing" }).ClickAsync();
        var operation = page.GetByRole(AriaRole.Link, new() { Name = "Publish one event to a bull pen HTTP Method: POST" });
        await Expect(operation).ToBeVisibleAsync(Soon);
        await operation.ClickAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Test Request (post /api/rooms/{bullPenId}/events)" }).ClickAsync();
        var client = page.GetByRole(AriaRole.Dialog, new() { Name = "API Client" });
        await Expect(client.GetByRole(AriaRole.Textbox, new() { Name = "Bearer Token" })).Not.ToBeEmptyAsync(new() { Timeout = 10_000 });

        await client.GetByRole(AriaRole.Row, new() { NameRegex = new Regex("^Include bullPenId in request") })
            .GetByRole(AriaRole.Combobox, new() { Name = "Value" }).ClickAsync();
        await page.Keyboard.InsertTextAsync("docs-ui");
        // The body editor closes brackets as they are typed: select its text and insert the body whole.
        var body = client.GetByRole(AriaRole.Region, new() { Name = "Request: Publish one event to a bull pen" }).GetByRole(AriaRole.Textbox).Last;
        await body.ClickAsync();
        await page.Keyboard.PressAsync("Control+A");
        await page.Keyboard.InsertTextAsync("""{"type":"room_started","data":{"round":7}}""");
        await client.GetByRole(AriaRole.Button, new() { NameRegex = new Regex("^Send post request") }).ClickAsync();

        var delivered = await subscriber.ReceiveTypeAsync("room_started", TimeSpan.FromSeconds(30));
        Assert.Equal("docs-ui", delivered.BullPenId);
        Assert.Equal(7, delivered.Data.GetProperty("round").GetInt32());
        await Expect(client.GetByText("202", new() { Exact = false }).First).ToBeVisibleAsync(Soon);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Artifacts, "api-docs.png") });

        Assert.Empty(pageErrors);
        Assert.Empty(elsewhere);
    }
}
