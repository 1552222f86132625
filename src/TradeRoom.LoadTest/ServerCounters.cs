using System.Globalization;

namespace TradeRoom.LoadTest;

/// <summary>The server's own counts of events published and event frames delivered, read from its Prometheus <c>/metrics</c>.</summary>
internal readonly record struct ServerCounters(long EventsPublished, long FramesDelivered)
{
    private const string EventsSeries = "traderoom_events_published_total";
    private const string FramesSeries = "traderoom_frames_delivered_total";

    /// <summary>
    /// Scrapes until the counts settle: a frame the client has already read is counted a moment later, when the
    /// server's write completes. With <paramref name="framesReceived"/> (what the tester has read since
    /// <paramref name="before"/>), until the server's count has caught up with it, for at most two seconds;
    /// otherwise until two scrapes 50 ms apart agree. Whatever the server then shows is reported, agreeing or not.
    /// </summary>
    public static async Task<ServerCounters> ScrapeSettledAsync(HttpClient http, Uri metricsUrl, string? token, CancellationToken cancellationToken,
        ServerCounters? before = null, long? framesReceived = null)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(2);
        var last = await ScrapeAsync(http, metricsUrl, token, cancellationToken);
        while (DateTime.UtcNow < deadline)
        {
            if (framesReceived is { } received && last.FramesDelivered - (before?.FramesDelivered ?? 0) >= received)
                break;
            await Task.Delay(50, cancellationToken);
            var next = await ScrapeAsync(http, metricsUrl, token, cancellationToken);
            if (framesReceived is null && next == last)
                break;
            last = next;
        }
        return last;
    }

    /// <param name="token">The server's metrics token, if it needs one (it replaces the client's default Authorization).</param>
    public static async Task<ServerCounters> ScrapeAsync(HttpClient http, Uri metricsUrl, string? token, CancellationToken cancellationToken)
    {
        string text;
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, metricsUrl);
            if (token is not null)
                request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
            using var response = await http.SendAsync(request, cancellationToken);
            if (!response.IsSuccessStatusCode)
                throw new LoadTestException($"--metrics-url {metricsUrl} answered {(int)response.StatusCode}");
            text = await response.Content.ReadAsStringAsync(cancellationToken);
        }
        catch (HttpRequestException e)
        {
            throw new LoadTestException($"cannot scrape --metrics-url {metricsUrl}: {e.Message}");
        }
        return Parse(text) ?? throw new LoadTestException($"--metrics-url {metricsUrl} has no {EventsSeries} / {FramesSeries}; is it a TradeRoom server's /metrics?");
    }

    /// <summary>Events summed over their <c>type</c> label; null when either series is missing.</summary>
    public static ServerCounters? Parse(string text)
    {
        double events = 0, frames = 0;
        bool sawEvents = false, sawFrames = false;
        foreach (var line in text.Split('\n'))
        {
            if (line.StartsWith(EventsSeries + "{", StringComparison.Ordinal) || line.StartsWith(EventsSeries + " ", StringComparison.Ordinal))
            {
                events += Value(line);
                sawEvents = true;
            }
            else if (line.StartsWith(FramesSeries + " ", StringComparison.Ordinal) || line.StartsWith(FramesSeries + "{", StringComparison.Ordinal))
            {
                frames += Value(line);
                sawFrames = true;
            }
        }
        return sawEvents && sawFrames ? new ServerCounters((long)events, (long)frames) : null;

        static double Value(string line) =>
            double.Parse(line[(line.LastIndexOf(' ') + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture);
    }
}
