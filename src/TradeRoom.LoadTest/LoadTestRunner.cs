using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using TradeRoom.Actors.Auth;

namespace TradeRoom.LoadTest;

/// <summary>The measured outcome of a run (also the <c>--json</c> output).</summary>
public sealed record LoadTestResult
{
    public required int ConnectionsRequested { get; init; }
    public required int ConnectionsOpened { get; init; }
    public required int ConnectionsFailed { get; init; }
    public required IReadOnlyDictionary<string, int> FailureReasons { get; init; }
    public required double ConnectSeconds { get; init; }
    public required double ConnectionsPerSecond { get; init; }
    public required int Rooms { get; init; }
    public required long EventsPublished { get; init; }
    public required int PublishFailures { get; init; }
    public required double PublishSeconds { get; init; }
    public required long DeliveriesExpected { get; init; }
    public required long Delivered { get; init; }
    public required double DeliveriesPerSecond { get; init; }
    /// <summary>From the first publish to the last delivery (or the end of the drain).</summary>
    public required double DeliverySeconds { get; init; }
    public required long Lost { get; init; }
    public required long DuplicatedOrOutOfOrder { get; init; }
    public required long Gaps { get; init; }
    public required int ClosedByServer { get; init; }
    public required IReadOnlyDictionary<string, int> CloseCodes { get; init; }
    public required LatencySummary LatencyMs { get; init; }
    public double? ServerRssBaselineMiB { get; init; }
    public double? ServerRssConnectedMiB { get; init; }
    public double? ServerKiBPerConnection { get; init; }
    public double? ServerCpuMicrosecondsPerDelivery { get; init; }
    public double? ServerCpuSecondsInPublishPhase { get; init; }
    /// <summary>With --metrics-url: events the server counted as published while the tester published and drained.</summary>
    public long? ServerEventsPublished { get; init; }
    /// <summary>With --metrics-url: event frames the server counted as delivered in the same time (compare with <see cref="Delivered"/>).</summary>
    public long? ServerFramesDelivered { get; init; }
    /// <summary>With --metrics-url in cluster mode: events sent by rooms to relays on other nodes, summed over the nodes.</summary>
    public long? ServerCrossNodeEventsSent { get; init; }
    /// <summary>With --metrics-url in cluster mode: events relays received from rooms on other nodes, summed over the nodes.</summary>
    public long? ServerCrossNodeEventsReceived { get; init; }
    /// <summary>With several --server-pid and --metrics-url (cluster mode): each node's share, in their order.</summary>
    public IReadOnlyList<NodeResult>? Nodes { get; init; }
    /// <summary>This load tester's own CPU time while publishing and draining (it shares the machine with the server).</summary>
    public required double LoadTesterCpuSecondsInPublishPhase { get; init; }
    /// <summary>
    /// This load tester's CPU over the same window as the server's, per delivery. Over loopback the reader pays part of
    /// the sender's TCP cost and the reverse, so the server's figure alone depends on the client: the sum is the total.
    /// </summary>
    public double? LoadTesterCpuMicrosecondsPerDelivery { get; init; }
    /// <summary>Server plus load tester CPU per delivery (with --server-pid).</summary>
    public double? TotalCpuMicrosecondsPerDelivery { get; init; }

    /// <summary>Everything arrived once, in order, and every connection opened.</summary>
    public bool Clean => ConnectionsFailed == 0 && PublishFailures == 0 && Lost == 0 && DuplicatedOrOutOfOrder == 0 && Gaps == 0;
}

/// <summary>One node's share of a run in cluster mode: its CPU from /proc and its counts from its /metrics while publishing and draining.</summary>
public sealed record NodeResult(int Pid, string MetricsUrl, int Connections, double CpuSeconds, long EventsPublished, long FramesDelivered,
    long CrossNodeEventsSent, long CrossNodeEventsReceived, double? CpuMicrosecondsPerDelivery);

/// <summary>Runs one load test: connect, subscribe, (hold), publish, drain, measure.</summary>
public sealed class LoadTestRunner(LoadTestOptions options, TextWriter output)
{
    private readonly LoadMetrics _metrics = new();
    private readonly ConcurrentDictionary<string, int> _failures = new();
    private readonly ConcurrentDictionary<string, long> _publishedPerRoom = new();
    private int _opened;
    private int _failed;
    private int _publishFailures;
    private long _published;
    private string _phase = "starting";
    private LoadConnection[] _connections = [];
    private HttpClient[] _publishers = [];
    /// <summary>With --placement: per room, the node (index into the --ws and --api lists) its subscribers use, and its own node.</summary>
    private int[]? _roomWs;
    private Dictionary<string, int>? _roomApi;
    private long _publishRequests;

    private sealed class DisposeAll(IEnumerable<IDisposable> items) : IDisposable
    {
        public void Dispose()
        {
            foreach (var item in items)
                item.Dispose();
        }
    }

    public async Task<LoadTestResult> RunAsync(CancellationToken cancellationToken = default)
    {
        var pids = options.ServerPids.Count > 0 ? options.ServerPids : options.ServerPid is { } onePid ? [onePid] : [];
        var probes = pids.Select(p => ServerProbe.For(p)!).ToArray();
        var metricsUrls = options.MetricsUrls.Count > 0 ? options.MetricsUrls : options.MetricsUrl is { } oneUrl ? [oneUrl] : [];
        var wsUrls = options.WsUrls.Count > 0 ? options.WsUrls : [options.WsUrl];
        var tokens = new TokenIssuer(options.Secret);
        var apiUrls = options.ApiUrls.Count > 0 ? options.ApiUrls : [options.ApiUrl];
        var clients = apiUrls.Select(u => new HttpClient(TlsTrust.HttpHandler(options)) { BaseAddress = u, Timeout = TimeSpan.FromSeconds(30) }).ToArray();
        using var disposeClients = new DisposeAll(clients);
        var http = clients[0];
        _publishers = clients;
        var tls = TlsTrust.Callback(options);
        foreach (var client in clients)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", tokens.ServiceToken("load-test", TimeSpan.FromHours(12)));
            if (options.ExpectPerConnection == 0)
                await CheckServerAsync(client, cancellationToken);
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var progress = options.Quiet ? Task.CompletedTask : ReportProgressAsync(stop.Token);
        long? Rss() => probes.Length > 0 ? probes.Sum(p => p.RssBytes()) : null;
        double? Cpu() => probes.Length > 0 ? probes.Sum(p => p.CpuMicroseconds()) : null;
        var rssBaseline = Rss();
        var ownCpuAtStart = Process.GetCurrentProcess().TotalProcessorTime;
        var startTimestamp = Stopwatch.GetTimestamp();

        if (options.Placement is not null)
            await PlaceRoomsAsync(clients, wsUrls.Count, cancellationToken);
        int WsIndex(int connection) => _roomWs is { } placed ? placed[connection % options.Rooms] : connection % wsUrls.Count;

        // Connect and subscribe.
        _phase = "connecting";
        var connections = _connections = new LoadConnection[options.Connections];
        var receiving = new List<Task>(options.Connections);
        var sources = Enumerable.Range(1, options.EffectiveSourceAddresses).Select(i => IPAddress.Parse($"127.0.0.{i}")).ToArray();
        // Plaintext connections are read on epoll threads of the tester's own (Linux), the others by .NET's sockets.
        using var receivers = EpollReceivers.Supported && wsUrls.Any(u => u.Scheme == "ws") ? new EpollReceivers(options.Connections) : null;
        var connectClock = Stopwatch.StartNew();
        // ConnectConcurrency threads of their own open the connections, each taking the next: opened for the epoll
        // threads, a plaintext connection's calls are synchronous (a wss:// one's open is waited for). A thread per
        // connection instead cost the tester more than opening it (615 connections a second, its main thread busy).
        var next = -1;
        var openers = new Thread[Math.Min(options.ConnectConcurrency, options.Connections)];
        for (var t = 0; t < openers.Length; t++)
        {
            openers[t] = new Thread(() =>
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < options.Connections && !cancellationToken.IsCancellationRequested)
                {
                    if (_failed > 0 && _opened == 0 && _failed >= Math.Min(20, options.Connections))
                        return; // nothing works: stop and say why below
                    var connection = connections[i] = new LoadConnection(i, $"load-{i % options.Rooms}", _metrics);
                    var token = tokens.UserToken($"load-user-{i}", TimeSpan.FromHours(12));
                    try
                    {
                        connection.OpenAsync(wsUrls[WsIndex(i)], sources[i % sources.Length], token, tls, forEpoll: receivers is not null, stop.Token)
                            .GetAwaiter().GetResult();
                        Interlocked.Increment(ref _opened);
                        if (connection.ForEpoll)
                            receivers!.Add(connection);
                        lock (receiving)
                            receiving.Add(connection.ForEpoll ? connection.Done : connection.ReceiveLoopAsync(stop.Token));
                    }
                    catch (Exception e) when (e is LoadTestException or IOException or System.Net.Sockets.SocketException)
                    {
                        Interlocked.Increment(ref _failed);
                        _failures.AddOrUpdate(e.Message, 1, (_, n) => n + 1);
                        connection.Close();
                    }
                }
            }) { IsBackground = true, Name = "load-opener" };
            openers[t].Start();
        }
        await Task.Run(() =>
        {
            foreach (var opener in openers)
                opener.Join();
        }, CancellationToken.None);
        var connectSeconds = connectClock.Elapsed.TotalSeconds;
        if (_opened == 0)
            throw new LoadTestException($"no connection could be opened: {string.Join("; ", _failures.Keys.Take(3))}");

        if (options.Hold > TimeSpan.Zero)
        {
            _phase = "holding";
            await Task.Delay(options.Hold, cancellationToken);
        }
        var rssConnected = Rss();

        if (options.Warmup > TimeSpan.Zero && (options.Rate > 0 || options.Burst > 0))
        {
            // Before a burst too: the server's tiered compilation then runs before the measured window, not in it.
            _phase = "warming up";
            await PublishSteadyAsync(http, options.Rate > 0 ? options.Rate : BurstWarmupRate, options.Warmup, cancellationToken);
            var warmupDeadline = Stopwatch.StartNew();
            while (warmupDeadline.Elapsed < options.Drain && _metrics.Delivered < ExpectedSoFar())
                await Task.Delay(20, cancellationToken);
            _metrics.ResetLatency();
        }

        // Publish, then drain.
        _phase = "publishing";
        // A self-check counts from the start: the trivial server sends as soon as a connection subscribes.
        var selfCheck = options.ExpectPerConnection > 0;
        var serverBefore = metricsUrls.Count > 0
            ? await ServerCounters.ScrapeAllSettledAsync(http, metricsUrls, options.MetricsToken, cancellationToken)
            : null;
        var nodeCpuBefore = probes.Select(p => p.CpuMicroseconds()).ToArray();
        var cpuBefore = Cpu();
        var ownCpuBefore = selfCheck ? ownCpuAtStart : Process.GetCurrentProcess().TotalProcessorTime;
        var deliveredBefore = selfCheck ? 0 : _metrics.Delivered;
        var publishedBefore = _published; // the warm-up's events are not measured, like its deliveries
        var expectedBefore = selfCheck ? 0 : ExpectedSoFar();
        var publishStart = selfCheck ? startTimestamp : Stopwatch.GetTimestamp();
        var publishClock = Stopwatch.StartNew();
        if (options.Burst > 0)
            await PublishBurstAsync(http, cancellationToken);
        if (options.Rate > 0)
            await PublishSteadyAsync(http, options.Rate, options.Duration, cancellationToken);
        var publishSeconds = publishClock.Elapsed.TotalSeconds;

        _phase = "draining";
        var open = connections.Where(c => c is not null && c.Failure is null && c.SubscribedSeq >= 0).ToArray();
        long Expected() => options.ExpectPerConnection > 0
            ? (long)open.Length * options.ExpectPerConnection
            : open.Sum(c => _publishedPerRoom.GetValueOrDefault(c.Room));
        var drainDeadline = Stopwatch.StartNew();
        while (drainDeadline.Elapsed < options.Drain && open.Sum(c => Interlocked.Read(ref c.Received)) < Expected()
               && open.Any(c => c.CloseCode is null && c.Failure is null))
            await Task.Delay(20, cancellationToken);
        var deliverySeconds = Stopwatch.GetElapsedTime(publishStart, Math.Max(_metrics.LastDeliveryTimestamp, publishStart)).TotalSeconds;
        var cpuAfter = Cpu();
        var nodeCpuAfter = probes.Select(p => p.CpuMicroseconds()).ToArray();
        var ownCpu = Process.GetCurrentProcess().TotalProcessorTime - ownCpuBefore;
        var delivered = _metrics.Delivered - deliveredBefore;
        var serverAfter = metricsUrls.Count > 0
            ? await ServerCounters.ScrapeAllSettledAsync(http, metricsUrls, options.MetricsToken, cancellationToken, serverBefore, delivered)
            : null;
        ServerCounters? serverDelta = serverBefore is not null && serverAfter is not null
            ? serverAfter.Aggregate((a, b) => a + b) - serverBefore.Aggregate((a, b) => a + b)
            : null;
        NodeResult[]? nodes = null;
        if (probes.Length > 1 && serverBefore is not null && serverAfter is not null)
        {
            nodes = new NodeResult[probes.Length];
            for (var n = 0; n < nodes.Length; n++)
            {
                var d = serverAfter[n] - serverBefore[n];
                var cpu = nodeCpuAfter[n] - nodeCpuBefore[n];
                nodes[n] = new NodeResult(probes[n].Pid, metricsUrls[n].ToString(),
                    wsUrls.Count == probes.Length ? connections.Count(c => c is not null && c.Failure is null && WsIndex(c.Index) == n) : 0,
                    Math.Round(cpu / 1e6, 2), d.EventsPublished, d.FramesDelivered, d.CrossNodeSent, d.CrossNodeReceived,
                    d.FramesDelivered > 0 ? Math.Round(cpu / d.FramesDelivered, 2) : null);
            }
        }

        _phase = "done";
        await stop.CancelAsync();
        receivers?.Stop(); // before the sockets close: their descriptors are not read again
        foreach (var connection in open)
            connection.Close();
        await Task.WhenAll(receiving.ToArray());
        await progress;

        var expected = Expected();
        var received = open.Sum(c => c.Received);
        var closed = open.Where(c => c.CloseCode is not null).ToArray();
        return new LoadTestResult
        {
            ConnectionsRequested = options.Connections,
            ConnectionsOpened = _opened,
            ConnectionsFailed = options.Connections - _opened,
            FailureReasons = _failures.ToDictionary(),
            ConnectSeconds = Math.Round(connectSeconds, 2),
            ConnectionsPerSecond = Math.Round(_opened / connectSeconds, 0),
            Rooms = options.Rooms,
            EventsPublished = _published - publishedBefore,
            PublishFailures = _publishFailures,
            PublishSeconds = Math.Round(publishSeconds, 2),
            DeliveriesExpected = expected - expectedBefore,
            Delivered = delivered,
            DeliveriesPerSecond = Math.Round(delivered / Math.Max(deliverySeconds, 0.001), 0),
            DeliverySeconds = Math.Round(deliverySeconds, 3),
            Lost = Math.Max(0, expected - received),
            DuplicatedOrOutOfOrder = open.Sum(c => c.Backwards),
            Gaps = open.Sum(c => c.Gaps),
            ClosedByServer = closed.Length,
            CloseCodes = closed.GroupBy(c => c.CloseCode!.Value.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToDictionary(g => g.Key, g => g.Count()),
            LatencyMs = _metrics.Latency(),
            ServerRssBaselineMiB = rssBaseline / 1048576.0,
            ServerRssConnectedMiB = rssConnected / 1048576.0,
            ServerKiBPerConnection = rssBaseline is { } b && rssConnected is { } c ? Math.Round((c - b) / 1024.0 / _opened, 2) : null,
            ServerCpuMicrosecondsPerDelivery = cpuBefore is { } c0 && cpuAfter is { } c1 && delivered > 0 ? Math.Round((c1 - c0) / delivered, 2) : null,
            ServerCpuSecondsInPublishPhase = cpuBefore is { } s0 && cpuAfter is { } s1 ? Math.Round((s1 - s0) / 1e6, 2) : null,
            LoadTesterCpuSecondsInPublishPhase = Math.Round(ownCpu.TotalSeconds, 2),
            LoadTesterCpuMicrosecondsPerDelivery = delivered > 0 ? Math.Round(ownCpu.TotalMicroseconds / delivered, 2) : null,
            TotalCpuMicrosecondsPerDelivery = cpuBefore is { } t0 && cpuAfter is { } t1 && delivered > 0
                ? Math.Round((t1 - t0 + ownCpu.TotalMicroseconds) / delivered, 2) : null,
            ServerEventsPublished = serverDelta?.EventsPublished,
            ServerFramesDelivered = serverDelta?.FramesDelivered,
            ServerCrossNodeEventsSent = serverDelta?.CrossNodeSent,
            ServerCrossNodeEventsReceived = serverDelta?.CrossNodeReceived,
            Nodes = nodes,
        };
    }

    /// <summary>Deliveries expected from everything published so far, over the connections that opened.</summary>
    private long ExpectedSoFar() =>
        _connections.Where(c => c is not null && c.Failure is null).Sum(c => _publishedPerRoom.GetValueOrDefault(c.Room));

    /// <summary>
    /// --placement: starts every room with one event through the first node (not counted: nobody is subscribed yet), asks
    /// where each runs (<c>/api/rooms</c>' <c>node</c> against each node's <c>/api/health</c> <c>cluster.self</c>), and
    /// picks each room's subscribers' node: its own (host) or the next one (remote).
    /// </summary>
    private async Task PlaceRoomsAsync(HttpClient[] nodes, int nodeCount, CancellationToken cancellationToken)
    {
        for (var r = 0; r < options.Rooms; r++)
        {
            using var content = new StringContent($"[{{\"bullPenId\":\"load-{r}\",\"type\":\"{options.EventType}\",\"data\":{{\"start\":true}}}}]",
                Encoding.UTF8, "application/json");
            using var response = await nodes[0].PostAsync("/api/events", content, cancellationToken);
            if (response.StatusCode != HttpStatusCode.Accepted)
                throw new LoadTestException($"starting room load-{r} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(cancellationToken)}");
        }
        var selves = new string[nodeCount];
        for (var n = 0; n < nodeCount; n++)
        {
            using var health = JsonDocument.Parse(await nodes[n].GetStringAsync("/api/health", cancellationToken));
            selves[n] = health.RootElement.TryGetProperty("cluster", out var cluster)
                ? cluster.GetProperty("self").GetString()!
                : throw new LoadTestException($"--placement needs cluster mode; {nodes[n].BaseAddress} has no `cluster` in /api/health");
        }
        using var listing = JsonDocument.Parse(await nodes[0].GetStringAsync("/api/rooms", cancellationToken));
        var hosts = listing.RootElement.GetProperty("rooms").EnumerateArray()
            .ToDictionary(r => r.GetProperty("bullPenId").GetString()!, r => Array.IndexOf(selves, r.GetProperty("node").GetString()));
        _roomWs = new int[options.Rooms];
        _roomApi = [];
        for (var r = 0; r < options.Rooms; r++)
        {
            var host = hosts.GetValueOrDefault($"load-{r}", -1);
            if (host < 0)
                throw new LoadTestException($"room load-{r} is not listed on any node's /api/health self in /api/rooms");
            _roomApi[$"load-{r}"] = host;
            _roomWs[r] = options.Placement == "host" ? host : (host + 1) % nodeCount;
        }
        await output.WriteLineAsync($"placement {options.Placement}: rooms per node {string.Join(", ", Enumerable.Range(0, nodeCount).Select(n => $"node {n + 1}: {_roomApi.Values.Count(h => h == n)}"))}; " +
                                    $"rooms load-0.. on node {string.Join(",", Enumerable.Range(0, options.Rooms).Select(r => _roomApi[$"load-{r}"] + 1))}, " +
                                    $"their subscribers on node {string.Join(",", _roomWs.Select(w => w + 1))}");
    }

    private async Task CheckServerAsync(HttpClient http, CancellationToken cancellationToken)
    {
        try
        {
            using var health = await http.GetAsync("/api/health", cancellationToken);
            if (!health.IsSuccessStatusCode)
                throw new LoadTestException($"{options.ApiUrl}api/health answered {(int)health.StatusCode}; is this a TradeRoom server?");
        }
        catch (HttpRequestException e)
        {
            throw new LoadTestException($"cannot reach the server's HTTP API at {options.ApiUrl}: {e.Message}. Is the server running (dotnet run --project src/TradeRoom.Server)?");
        }
    }

    /// <summary>Events per second per room while warming up before a burst (<c>--warmup</c> with <c>--burst</c>).</summary>
    private const double BurstWarmupRate = 10;

    private async Task PublishBurstAsync(HttpClient http, CancellationToken cancellationToken)
    {
        var perRoom = Enumerable.Range(0, options.Rooms).ToDictionary(r => $"load-{r}", _ => options.Burst);
        await PublishAsync(http, perRoom, cancellationToken);
    }

    /// <summary>
    /// Each room's events are evenly spaced and the rooms are offset from each other, so the offered load is
    /// steady rather than a burst every tick; every 10 ms whatever is due goes out in one batch request.
    /// </summary>
    private async Task PublishSteadyAsync(HttpClient http, double rate, TimeSpan duration, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var sent = new long[options.Rooms];
        var total = (long)Math.Round(rate * duration.TotalSeconds);
        using var ticker = new PeriodicTimer(TimeSpan.FromMilliseconds(10));
        while (sent.Any(n => n < total) && await ticker.WaitForNextTickAsync(cancellationToken))
        {
            var now = clock.Elapsed.TotalSeconds;
            var due = new Dictionary<string, int>();
            for (var r = 0; r < options.Rooms; r++)
            {
                var dueCount = Math.Min(total, (long)Math.Floor(now * rate - (double)r / options.Rooms) + 1) - sent[r];
                if (dueCount <= 0)
                    continue;
                sent[r] += dueCount;
                due[$"load-{r}"] = (int)dueCount;
            }
            if (due.Count > 0)
                await PublishAsync(http, due, cancellationToken);
        }
    }

    /// <summary>One batch request with <c>count</c> events for each room; each event carries its send time in <c>data.t</c>.</summary>
    private async Task PublishAsync(HttpClient http, Dictionary<string, int> perRoom, CancellationToken cancellationToken)
    {
        if (_roomApi is { } roomApi && perRoom.Keys.Select(r => roomApi[r]).Distinct().Count() > 1)
        {
            // --placement: each room's events go through its own node, so that only the delivery crosses nodes.
            foreach (var group in perRoom.GroupBy(p => roomApi[p.Key]))
                await PublishAsync(http, group.ToDictionary(p => p.Key, p => p.Value), cancellationToken);
            return;
        }
        var pad = new string('x', Math.Max(0, options.EventSize - 40));
        var body = new MemoryStream();
        await using (var w = new Utf8JsonWriter(body))
        {
            w.WriteStartArray();
            var now = Stopwatch.GetTimestamp();
            foreach (var (room, count) in perRoom)
            {
                for (var i = 0; i < count; i++)
                {
                    w.WriteStartObject();
                    w.WriteString("bullPenId", room);
                    w.WriteString("type", options.EventType);
                    w.WriteStartObject("data");
                    w.WriteNumber("t", now);
                    w.WriteNumber("n", i);
                    w.WriteString("pad", pad);
                    w.WriteEndObject();
                    w.WriteEndObject();
                }
            }
            w.WriteEndArray();
        }
        using var content = new ByteArrayContent(body.ToArray());
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        // Several nodes' APIs take turns (cluster mode); one is the usual single server.
        var publisher = _roomApi is { } placed ? _publishers[placed[perRoom.Keys.First()]]
            : _publishers.Length == 1 ? http : _publishers[(int)(Interlocked.Increment(ref _publishRequests) % _publishers.Length)];
        using var response = await publisher.PostAsync("/api/events", content, cancellationToken);
        if (response.StatusCode != HttpStatusCode.Accepted)
        {
            Interlocked.Increment(ref _publishFailures);
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
                throw new LoadTestException($"the server refused the service token ({(int)response.StatusCode} {text}); pass the server's secret with --secret");
            _failures.AddOrUpdate($"publish {(int)response.StatusCode}: {text}", 1, (_, n) => n + 1);
            return;
        }
        foreach (var (room, count) in perRoom)
        {
            _publishedPerRoom.AddOrUpdate(room, count, (_, n) => n + count);
            Interlocked.Add(ref _published, count);
        }
    }

    private async Task ReportProgressAsync(CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        long last = 0;
        try
        {
            using var ticker = new PeriodicTimer(TimeSpan.FromSeconds(1));
            while (await ticker.WaitForNextTickAsync(cancellationToken))
            {
                var delivered = _metrics.Delivered;
                var latency = _metrics.Latency();
                await output.WriteLineAsync(
                    $"[{clock.Elapsed.TotalSeconds,5:0}s] {_phase,-10} conns {_opened}/{options.Connections} ({_failed} failed) | " +
                    $"published {_published} | delivered {delivered} ({delivered - last}/s) | " +
                    $"latency p50 {latency.P50:0.0} ms p99 {latency.P99:0.0} ms max {latency.Max:0.0} ms");
                last = delivered;
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>The summary as a table for people.</summary>
    public static string Format(LoadTestResult r)
    {
        var s = new StringBuilder();
        void Row(string name, string value) => s.AppendLine($"  {name,-34} {value}");
        s.AppendLine("Summary");
        Row("connections opened", $"{r.ConnectionsOpened} of {r.ConnectionsRequested} ({r.ConnectionsFailed} failed) in {r.ConnectSeconds:0.00} s, {r.ConnectionsPerSecond:0}/s");
        foreach (var (reason, count) in r.FailureReasons.OrderByDescending(f => f.Value).Take(5))
            Row("  failure", $"{count} x {reason}");
        Row("rooms", r.Rooms.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Row("events published", $"{r.EventsPublished} in {r.PublishSeconds:0.00} s ({r.PublishFailures} failed requests)");
        Row("deliveries", $"{r.Delivered} of {r.DeliveriesExpected} expected, {r.DeliveriesPerSecond:0}/s");
        Row("lost / dup or reordered / gaps", $"{r.Lost} / {r.DuplicatedOrOutOfOrder} / {r.Gaps}");
        Row("closed by the server", r.ClosedByServer == 0 ? "0" : $"{r.ClosedByServer} ({string.Join(", ", r.CloseCodes.Select(c => $"{c.Value} x {c.Key}"))})");
        Row("latency publish→receive", $"p50 {r.LatencyMs.P50:0.00} ms, p95 {r.LatencyMs.P95:0.00} ms, p99 {r.LatencyMs.P99:0.00} ms, max {r.LatencyMs.Max:0.00} ms ({r.LatencyMs.Samples} samples)");
        if (r.ServerKiBPerConnection is { } kib)
            Row("server memory", $"{r.ServerRssBaselineMiB:0.0} MiB idle → {r.ServerRssConnectedMiB:0.0} MiB connected: {kib:0.00} KiB per connection");
        if (r.ServerCpuMicrosecondsPerDelivery is { } cpu)
            Row("server CPU", $"{r.ServerCpuSecondsInPublishPhase:0.00} s while publishing and draining: {cpu:0.00} µs per delivery");
        if (r.ServerEventsPublished is { } serverEvents && r.ServerFramesDelivered is { } serverFrames)
        {
            var agree = serverEvents == r.EventsPublished && serverFrames == r.Delivered;
            Row("server's /metrics", $"{serverEvents} events published, {serverFrames} frames delivered " +
                                     (agree ? "(agree with the tester's counts)" : $"(tester: {r.EventsPublished} published, {r.Delivered} received)"));
        }
        if (r.ServerCrossNodeEventsSent is { } sent && r.ServerCrossNodeEventsReceived is { } got && (sent > 0 || got > 0 || r.Nodes is not null))
            Row("cross-node events (/metrics)", $"{sent} sent by rooms to other nodes' relays, {got} received by relays");
        foreach (var (n, i) in (r.Nodes ?? []).Select((n, i) => (n, i)))
        {
            Row($"  node {i + 1} (pid {n.Pid})", $"{n.Connections} connections, CPU {n.CpuSeconds:0.00} s, {n.FramesDelivered} frames delivered: " +
                $"{(n.CpuMicrosecondsPerDelivery is { } c ? c.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture) : "–")} µs per delivery; " +
                $"{n.EventsPublished} events published by its rooms; cross-node {n.CrossNodeEventsSent} sent, {n.CrossNodeEventsReceived} received");
        }
        Row("load tester CPU", $"{r.LoadTesterCpuSecondsInPublishPhase:0.00} s while publishing and draining" +
            (r.LoadTesterCpuMicrosecondsPerDelivery is { } own ? $": {own:0.00} µs per delivery" : ""));
        if (r.TotalCpuMicrosecondsPerDelivery is { } total)
            Row("server + load tester CPU", $"{total:0.00} µs per delivery");
        Row("verdict", r.Clean ? "clean: every event arrived once, in order" : "NOT clean: see above");
        return s.ToString();
    }
}
