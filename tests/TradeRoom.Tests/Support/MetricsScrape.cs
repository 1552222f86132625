using System.Globalization;

namespace TradeRoom.Tests.Support;

/// <summary>One scrape of <c>/metrics</c>: every sample line, by its name and labels exactly as exposed.</summary>
public sealed record MetricsScrape(string Text, IReadOnlyDictionary<string, double> Samples)
{
    /// <summary>A sample, e.g. <c>traderoom_rooms</c> or <c>traderoom_auth_failures_total{reason="timeout"}</c>; fails the test when absent.</summary>
    public double this[string series] =>
        Samples.TryGetValue(series, out var value) ? value : throw new Xunit.Sdk.XunitException($"no series {series} in /metrics:\n{Text}");

    public static MetricsScrape Parse(string text)
    {
        var samples = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#')
                continue;
            var space = line.LastIndexOf(' ');
            samples[line[..space]] = double.Parse(line[(space + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture);
        }
        return new MetricsScrape(text, samples);
    }
}

public static class MetricsTestExtensions
{
    public static async Task<MetricsScrape> ScrapeAsync(this TestServer server) =>
        MetricsScrape.Parse(await server.Http.GetStringAsync("/metrics"));

    /// <summary>Scrapes until <paramref name="series"/> reads <paramref name="expected"/>; fails with the last value after 10 s.</summary>
    public static async Task<MetricsScrape> WaitForMetricAsync(this TestServer server, string series, double expected)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            var scrape = await server.ScrapeAsync();
            if (scrape[series] == expected)
                return scrape;
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"{series} stayed {scrape[series]}, expected {expected}");
            await Task.Delay(20);
        }
    }
}
