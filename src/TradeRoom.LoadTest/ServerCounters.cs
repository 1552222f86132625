using System.Globalization;

namespace TradeRoom.LoadTest;

/// <summary>The server's own counts of events published and event frames delivered, read from its Prometheus <c>/metrics</c>.</summary>
/// <remarks>In cluster mode also the events this node's rooms sent to relays on other nodes and those its relays received
/// from rooms on other nodes (0 on a single node, where the series are absent).</remarks>
internal readonly record struct ServerCounters(long EventsPublished, long FramesDelivered, long CrossNodeSent = 0, long CrossNodeReceived = 0)
{
    private const string EventsSeries = "traderoom_events_published_total";
    private const string FramesSeries = "traderoom_frames_delivered_total";
    private const string SentSeries = "traderoom_cluster_events_sent_total";
    private const string ReceivedSeries = "traderoom_cluster_events_received_total";

    public static ServerCounters operator +(ServerCounters a, ServerCounters b) =>
        new(a.EventsPublished + b.EventsPublished, a.FramesDelivered + b.FramesDelivered, a.CrossNodeSent + b.CrossNodeSent, a.CrossNodeReceived + b.CrossNodeReceived);

    public static ServerCounters operator -(ServerCounters a, ServerCounters b) =>
        new(a.EventsPublished - b.EventsPublished, a.FramesDelivered - b.FramesDelivered, a.CrossNodeSent - b.CrossNodeSent, a.CrossNodeReceived - b.CrossNodeReceived);

    /// <summary>
    /// Every node's counts, scraped until they settle (as <see cref="ScrapeSettledAsync"/> does for one node, with the
    /// frames summed over the nodes): one entry per URL, in order.
    /// </summary>
    public static async Task<ServerCounters[]> ScrapeAllSettledAsync(HttpClient http, IReadOnlyList<Uri> metricsUrls, string? token,
        CancellationToken cancellationToken, ServerCounters[]? before = null, long? framesReceived = null)
    {
        async Task<ServerCounters[]> All()
        {
            var all = new ServerCounters[metricsUrls.Count];
            for (var i = 0; i < all.Length; i++)
                all[i] = await ScrapeAsync(http, metricsUrls[i], token, cancellationToken);
            return all;
        }
        long Frames(ServerCounters[] all) => all.Sum(c => c.FramesDelivered) - (before?.Sum(c => c.FramesDelivered) ?? 0);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(2);
        var last = await All();
        while (DateTime.UtcNow < deadline)
        {
            if (framesReceived is { } received && Frames(last) >= received)
                break;
            await Task.Delay(50, cancellationToken);
            var next = await All();
            if (framesReceived is null && next.SequenceEqual(last))
                break;
            last = next;
        }
        return last;
    }

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
        double events = 0, frames = 0, sent = 0, received = 0;
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
            else if (line.StartsWith(SentSeries + " ", StringComparison.Ordinal) || line.StartsWith(SentSeries + "{", StringComparison.Ordinal))
                sent += Value(line);
            else if (line.StartsWith(ReceivedSeries + " ", StringComparison.Ordinal) || line.StartsWith(ReceivedSeries + "{", StringComparison.Ordinal))
                received += Value(line);
        }
        return sawEvents && sawFrames ? new ServerCounters((long)events, (long)frames, (long)sent, (long)received) : null;

        static double Value(string line) =>
            double.Parse(line[(line.LastIndexOf(' ') + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture);
    }
}
