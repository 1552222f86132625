using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using TradeRoom.Actors.Auth;

namespace TradeRoom.LoadTest;

/// <summary>
/// <c>--attack rooms</c>: the room-creation attack of issue 10, scaled to one machine. One user opens its connections and
/// makes up room ids as fast as the message rate lets it (subscribe, then unsubscribe, so max-subscriptions never stops
/// it), reconnecting when closed; meanwhile normal clients (other users) subscribe to a room that a publisher feeds and
/// count what they receive. Reports the server's RSS (before, peak, after), its rooms (from /metrics), refusals by
/// code, and whether every normal client got every event.
/// <c>--attack idle-rooms N</c>: publishes one event to each of N new rooms and reports RSS per room.
/// </summary>
internal static class RoomAttack
{
    public const string Usage = """
        usage: TradeRoom.LoadTest --attack rooms [--ws URL] [--api URL] [--secret S] [--server-pid PID]
                                  [--attackers 20] [--attack-rate 20] [--duration 60] [--normal 10] [--rate 10]
               TradeRoom.LoadTest --attack idle-rooms --rooms N [--api URL] [--secret S] [--server-pid PID]
          --attackers N     connections of the one attacking user           (20: limits.max-connections-per-user)
          --attack-rate M   messages per second each attacker sends         (20: limits.messages-per-second)
          --normal N        normal clients, one user each                   (10)
          --rate E          events per second published to their room      (10)
          --duration S      seconds of attack                               (60)
        """;

    private sealed class Options
    {
        public string Mode = "";
        public Uri Ws = new("ws://127.0.0.1:4001/ws");
        public Uri Api = new("http://127.0.0.1:4000");
        public string Secret = Environment.GetEnvironmentVariable("JWT_SECRET") is { Length: > 0 } s ? s : LoadTestOptions.DevelopmentSecret;
        public int? ServerPid;
        public int Attackers = 20;
        public double AttackRate = 20;
        public int Normal = 10;
        public double Rate = 10;
        public double Duration = 60;
        public int Rooms = 50_000;
    }

    public static async Task<int> RunAsync(string[] args, TextWriter output)
    {
        if (args.Contains("--help") || args.Contains("-h"))
        {
            await output.WriteLineAsync(Usage);
            return 0;
        }
        var o = new Options();
        try
        {
            var a = new ArgReader(args);
            while (a.Next())
            {
                switch (a.Name)
                {
                    case "--attack": o.Mode = a.Value(); break;
                    case "--ws": o.Ws = new Uri(a.Value()); break;
                    case "--api": o.Api = new Uri(a.Value()); break;
                    case "--secret": o.Secret = a.Value(); break;
                    case "--server-pid": o.ServerPid = (int)a.Positive(); break;
                    case "--attackers": o.Attackers = (int)a.Positive(); break;
                    case "--attack-rate": o.AttackRate = a.Positive(); break;
                    case "--normal": o.Normal = (int)a.Positive(); break;
                    case "--rate": o.Rate = a.Positive(); break;
                    case "--duration": o.Duration = a.Positive(); break;
                    case "--rooms": o.Rooms = (int)a.Positive(); break;
                    default: throw new ArgumentException($"unknown option {a.Name}");
                }
            }
            if (o.Mode is not ("rooms" or "idle-rooms"))
                throw new ArgumentException("--attack takes rooms or idle-rooms");
        }
        catch (Exception e) when (e is ArgumentException or UriFormatException)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}\n\n{Usage}");
            return 2;
        }

        var probe = ServerProbe.For(o.ServerPid);
        var tokens = new TokenIssuer(o.Secret);
        using var http = new HttpClient { BaseAddress = o.Api, Timeout = TimeSpan.FromSeconds(60) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", tokens.ServiceToken("load-test", TimeSpan.FromHours(2)));
        return o.Mode == "rooms" ? await AttackAsync(o, probe, tokens, http, output) : await IdleRoomsAsync(o, probe, http, output);
    }

    private static double MiB(long bytes) => Math.Round(bytes / 1048576.0, 1);

    /// <summary>N rooms started by publishes (one small event each): what an idle room with history costs.</summary>
    private static async Task<int> IdleRoomsAsync(Options o, ServerProbe? probe, HttpClient http, TextWriter output)
    {
        var before = probe?.RssBytes();
        var roomsBefore = await GaugeAsync(http, "traderoom_rooms");
        const int batch = 500;
        var refused = new Dictionary<string, int>();
        for (var start = 0; start < o.Rooms + 1; start += batch)
        {
            var count = Math.Min(batch, o.Rooms + 1 - start);
            var events = Enumerable.Range(start, count).Select(i => new { bullPenId = $"idle-{i}", type = "ranking_changed", data = new { n = i } });
            using var response = await http.PostAsync("/api/events", JsonContent(events));
            if (response.StatusCode != HttpStatusCode.Accepted)
            {
                var key = $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}";
                refused[key] = refused.GetValueOrDefault(key) + 1;
            }
        }
        await Task.Delay(TimeSpan.FromSeconds(3)); // let the last rooms start and the GC settle
        var rooms = await GaugeAsync(http, "traderoom_rooms");
        var after = probe?.RssBytes();
        output.WriteLine($"rooms running: {roomsBefore} before, {rooms} after publishing to {o.Rooms + 1} new ids (the last one past the cap)");
        foreach (var (answer, n) in refused)
            output.WriteLine($"refused batches: {n} x {answer}");
        if (before is { } b && after is { } a)
            output.WriteLine($"server RSS: {MiB(b)} MiB before, {MiB(a)} MiB after: {Math.Round((a - b) / 1024.0 / Math.Max(1, rooms - roomsBefore), 2)} KiB per room");
        return 0;
    }

    private static async Task<int> AttackAsync(Options o, ServerProbe? probe, TokenIssuer tokens, HttpClient http, TextWriter output)
    {
        var replies = new ConcurrentDictionary<string, long>();
        long sent = 0, reconnects = 0;
        var rssBefore = probe?.RssBytes();
        using var stopAttack = new CancellationTokenSource(TimeSpan.FromSeconds(o.Duration));

        // The normal room runs (and has history) before anyone subscribes to it, like a real competition.
        const string normalRoom = "normal-room";
        long published = 0, publishFailures = 0;
        await PublishAsync(http, normalRoom, published++);

        var attackerToken = tokens.UserToken("attacker", TimeSpan.FromHours(2));
        var attackers = Enumerable.Range(0, o.Attackers).Select(a => Task.Run(async () =>
        {
            var next = 0L;
            while (!stopAttack.IsCancellationRequested)
            {
                using var ws = new ClientWebSocket();
                try
                {
                    await ws.ConnectAsync(new Uri($"{o.Ws}?token={Uri.EscapeDataString(attackerToken)}"), stopAttack.Token);
                    var reading = ReadAsync(ws, frame =>
                    {
                        var key = Classify(frame);
                        if (key is not null)
                            replies.AddOrUpdate(key, 1, (_, n) => n + 1);
                    }, CancellationToken.None);
                    using var ticker = new PeriodicTimer(TimeSpan.FromSeconds(2 / o.AttackRate));
                    while (await ticker.WaitForNextTickAsync(stopAttack.Token) && ws.State == WebSocketState.Open)
                    {
                        var id = $"atk-{a}-{next++}";
                        await SendAsync(ws, $"{{\"type\":\"subscribe_room\",\"data\":{{\"bullPenId\":\"{id}\"}}}}", stopAttack.Token);
                        await SendAsync(ws, $"{{\"type\":\"unsubscribe_room\",\"data\":{{\"bullPenId\":\"{id}\"}}}}", stopAttack.Token);
                        Interlocked.Add(ref sent, 2);
                    }
                    await reading;
                }
                catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException)
                {
                }
                if (!stopAttack.IsCancellationRequested)
                {
                    replies.AddOrUpdate($"closed {ws.CloseStatus?.ToString() ?? "abort"}", 1, (_, n) => n + 1);
                    Interlocked.Increment(ref reconnects);
                    await Task.Delay(100);
                }
            }
        })).ToArray();

        // Samples every second: peak RSS and rooms.
        long peakRss = 0;
        double peakRooms = 0;
        using var stopSampling = new CancellationTokenSource();
        var sampling = Task.Run(async () =>
        {
            var clock = Stopwatch.StartNew();
            using var ticker = new PeriodicTimer(TimeSpan.FromSeconds(1));
            while (await ticker.WaitForNextTickAsync(stopSampling.Token).AsTask().ContinueWith(t => !t.IsCanceled && t.Result))
            {
                var rss = probe?.RssBytes() ?? 0;
                var rooms = await GaugeAsync(http, "traderoom_rooms");
                peakRss = Math.Max(peakRss, rss);
                peakRooms = Math.Max(peakRooms, rooms);
                if ((int)clock.Elapsed.TotalSeconds % 5 == 0)
                    output.WriteLine($"[{clock.Elapsed.TotalSeconds,4:0}s] rooms {rooms} | RSS {MiB(rss)} MiB | attacker messages {Interlocked.Read(ref sent)} | " +
                                      string.Join(", ", replies.OrderBy(r => r.Key).Select(r => $"{r.Key} {r.Value}")));
            }
        });

        // Normal clients join once the attack is under way, then receive while it goes on.
        await Task.Delay(TimeSpan.FromSeconds(Math.Min(5, o.Duration / 4)));
        var normalReceived = new long[o.Normal];
        var normalSubscribed = new int[o.Normal];
        var normalSockets = new ClientWebSocket[o.Normal];
        var normalReading = new Task[o.Normal];
        var lastSeq = new long[o.Normal];
        for (var i = 0; i < o.Normal; i++)
        {
            var me = i;
            var ws = normalSockets[i] = new ClientWebSocket();
            await ws.ConnectAsync(new Uri($"{o.Ws}?token={Uri.EscapeDataString(tokens.UserToken($"normal-{i}", TimeSpan.FromHours(2)))}"), CancellationToken.None);
            normalReading[i] = ReadAsync(ws, frame =>
            {
                using var doc = JsonDocument.Parse(frame);
                var type = doc.RootElement.GetProperty("type").GetString();
                if (type == "subscribed")
                {
                    lastSeq[me] = doc.RootElement.GetProperty("data").GetProperty("seq").GetInt64();
                    Volatile.Write(ref normalSubscribed[me], 1);
                }
                else if (type == "ranking_changed")
                {
                    lastSeq[me] = doc.RootElement.GetProperty("seq").GetInt64();
                    Interlocked.Increment(ref normalReceived[me]);
                }
            }, CancellationToken.None);
            await SendAsync(ws, $"{{\"type\":\"subscribe_room\",\"data\":{{\"bullPenId\":\"{normalRoom}\"}}}}", CancellationToken.None);
        }
        var subscribedWait = Stopwatch.StartNew();
        while (normalSubscribed.Sum() < o.Normal && subscribedWait.Elapsed < TimeSpan.FromSeconds(10))
            await Task.Delay(20);
        var normalSubscribedCount = normalSubscribed.Sum();
        var seqAtSubscribe = lastSeq.Max();

        // Publish to the normal room until the attack ends.
        var publishedAtSubscribe = published;
        using (var ticker = new PeriodicTimer(TimeSpan.FromSeconds(1 / o.Rate)))
        {
            while (!stopAttack.IsCancellationRequested && await ticker.WaitForNextTickAsync())
            {
                if (!await PublishAsync(http, normalRoom, published))
                    publishFailures++;
                published++;
            }
        }
        var expectedPerClient = published - publishedAtSubscribe - publishFailures;
        var drain = Stopwatch.StartNew();
        while (normalReceived.Min() < expectedPerClient && drain.Elapsed < TimeSpan.FromSeconds(10))
            await Task.Delay(20);
        await Task.WhenAll(attackers);
        var roomsAtEnd = await GaugeAsync(http, "traderoom_rooms");
        var rssAtEnd = probe?.RssBytes();
        await stopSampling.CancelAsync();
        await sampling;
        foreach (var ws in normalSockets)
            ws.Abort();

        // After: the made-up rooms stop (rooms.empty-room-timeout after their last subscriber); wait for that, at most 60 s.
        var settle = Stopwatch.StartNew();
        var roomsAfter = roomsAtEnd;
        while (roomsAfter > 1 && settle.Elapsed < TimeSpan.FromSeconds(60))
        {
            await Task.Delay(1000);
            roomsAfter = await GaugeAsync(http, "traderoom_rooms");
        }
        var rssAfter = probe?.RssBytes();

        var metrics = await http.GetStringAsync("/metrics");
        var refusedLines = metrics.Split('\n').Where(l => l.StartsWith("traderoom_rooms_refused_total{", StringComparison.Ordinal));
        output.WriteLine("Summary");
        output.WriteLine($"  attack: {o.Attackers} connections of one user, {o.AttackRate} messages/s each, {o.Duration} s; {sent} messages sent, {reconnects} reconnects");
        output.WriteLine($"  attacker replies: {string.Join(", ", replies.OrderBy(r => r.Key).Select(r => $"{r.Key} {r.Value}"))}");
        output.WriteLine($"  server refusals: {string.Join(", ", refusedLines)}");
        output.WriteLine($"  rooms running: peak {peakRooms}, at the end of the attack {roomsAtEnd}, {settle.Elapsed.TotalSeconds:0} s later {roomsAfter}");
        if (rssBefore is { } b)
            output.WriteLine($"  server RSS: before {MiB(b)} MiB, peak {MiB(peakRss)} MiB, at the end of the attack {MiB(rssAtEnd ?? 0)} MiB, " +
                              $"{settle.Elapsed.TotalSeconds:0} s later {MiB(rssAfter ?? 0)} MiB");
        output.WriteLine($"  normal clients: {normalSubscribedCount} of {o.Normal} subscribed during the attack; each expected {expectedPerClient} events " +
                          $"(published {published - publishedAtSubscribe}, {publishFailures} refused); received min {normalReceived.Min()}, max {normalReceived.Max()}");
        var served = normalSubscribedCount == o.Normal && normalReceived.All(n => n == expectedPerClient) && publishFailures == 0;
        output.WriteLine($"  verdict: {(served ? "every normal client subscribed and received every event" : "normal clients NOT fully served")} (room seq {seqAtSubscribe} → {lastSeq.Max()})");
        return served ? 0 : 1;
    }

    /// <summary>The attacker's reply, reduced to what is counted: subscribed, unsubscribed, or the error code.</summary>
    private static string? Classify(string frame)
    {
        using var doc = JsonDocument.Parse(frame);
        var type = doc.RootElement.GetProperty("type").GetString();
        return type switch
        {
            "error" => "error " + (doc.RootElement.GetProperty("data").TryGetProperty("code", out var c) ? c.GetString() : "?"),
            "subscribed" or "unsubscribed" => type,
            _ => null,
        };
    }

    private static async Task ReadAsync(ClientWebSocket ws, Action<string> onFrame, CancellationToken cancellationToken)
    {
        var buffer = new byte[64 * 1024];
        var message = new MemoryStream();
        try
        {
            while (ws.State == WebSocketState.Open)
            {
                var result = await ws.ReceiveAsync(buffer, cancellationToken);
                if (result.MessageType == WebSocketMessageType.Close)
                    return;
                message.Write(buffer, 0, result.Count);
                if (!result.EndOfMessage)
                    continue;
                onFrame(Encoding.UTF8.GetString(message.GetBuffer(), 0, (int)message.Length));
                message.SetLength(0);
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
        {
        }
    }

    private static Task SendAsync(ClientWebSocket ws, string text, CancellationToken cancellationToken) =>
        ws.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, cancellationToken);

    private static ByteArrayContent JsonContent(object value)
    {
        var content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(value));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return content;
    }

    private static async Task<bool> PublishAsync(HttpClient http, string room, long n)
    {
        using var response = await http.PostAsync("/api/events", JsonContent(new[] { new { bullPenId = room, type = "ranking_changed", data = new { n } } }));
        return response.StatusCode == HttpStatusCode.Accepted;
    }

    private static async Task<double> GaugeAsync(HttpClient http, string series)
    {
        var text = await http.GetStringAsync("/metrics");
        foreach (var line in text.Split('\n'))
        {
            if (line.StartsWith(series + " ", StringComparison.Ordinal))
                return double.Parse(line[(line.LastIndexOf(' ') + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture);
        }
        throw new LoadTestException($"/metrics has no {series}");
    }
}
