using System.Diagnostics;
using Microsoft.Playwright;
using TradeRoom.Tests.Integration;

namespace TradeRoom.Tests.Browser;

/// <summary>
/// One headless Chromium for the browser tests, driven by Playwright. Playwright cannot download its own browser
/// here, so it drives Debian's <c>chromium</c> (<c>/usr/bin/chromium</c>, or <c>TRADEROOM_CHROMIUM</c>); when that is
/// missing the fixture runs <c>tests/install-browser.sh</c> (as .ci/run does) and fails with a clear message if
/// the browser is still not there.
/// </summary>
public sealed class ChromiumFixture : IAsyncLifetime
{
    private IPlaywright? _playwright;

    public IBrowser Browser { get; private set; } = null!;

    public static string ExecutablePath =>
        Environment.GetEnvironmentVariable("TRADEROOM_CHROMIUM") is { Length: > 0 } path ? path : "/usr/bin/chromium";

    public async Task InitializeAsync()
    {
        await EnsureInstalledAsync();
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ExecutablePath,
            Headless = true,
        });
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null)
            await Browser.DisposeAsync();
        _playwright?.Dispose();
    }

    private static async Task EnsureInstalledAsync()
    {
        if (File.Exists(ExecutablePath))
            return;

        var script = Path.Combine(RepositoryRoot.Path, "tests", "install-browser.sh");
        var info = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(script);
        using var install = Process.Start(info)!;
        var output = install.StandardOutput.ReadToEndAsync();
        var errors = install.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        await install.WaitForExitAsync(deadline.Token);

        if (install.ExitCode != 0 || !File.Exists(ExecutablePath))
        {
            throw new InvalidOperationException(
                $"The browser tests need Chromium at {ExecutablePath} (set TRADEROOM_CHROMIUM to use another). " +
                $"Running {script} did not install it (exit code {install.ExitCode}); install Debian's package by hand: " +
                $"apt-get install chromium.\n{await output}\n{await errors}");
        }
    }
}
