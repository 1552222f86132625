using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Npgsql;
using TradeRoom.Actors.Auth;
using TradeRoom.Actors.Rooms;

namespace TradeRoom.LoadTest;

/// <summary>
/// <c>--persist MODE</c>: the durable-room scenarios of docs/benchmarks.md (issue 11). bench/run.sh drives them and
/// restarts the server between the steps of one scenario:
/// <list type="bullet">
/// <item><c>throughput</c>: publishers POST batches to <c>/api/events</c> for a fixed time; events/s counting only
/// 202-accepted events, the server's CPU per event, and whether the seqs the server answered number every room's
/// accepted events 1..n without a gap or a duplicate.</item>
/// <item><c>fill</c>: N events into each of R rooms, then the rooms' seq and epoch (from <c>GET /api/rooms</c>) into a state file.</item>
/// <item><c>history</c>: after a restart, one client resumes the state file's first room from seq 0 with its epoch:
/// time to <c>subscribed</c> and to the last replayed event, and the server's <c>traderoom_room_recovery_seconds</c>.</item>
/// <item><c>first-subscribe</c>: after a restart, one client per room of the state file subscribes, all at once or one
/// after another: time to <c>subscribed</c>.</item>
/// <item><c>disk</c>: with the server stopped, the store's bytes divided by the events its journal and snapshots hold.</item>
/// </list>
/// </summary>
internal static class PersistenceBench
{
    public const string Usage = """
        usage: TradeRoom.LoadTest --persist throughput [--rooms 1] [--publishers 8] [--batch 100] [--duration 10] [--warmup 3]
               TradeRoom.LoadTest --persist fill --rooms R --events N --state FILE
               TradeRoom.LoadTest --persist history --state FILE
               TradeRoom.LoadTest --persist first-subscribe --state FILE [--sequential]
               TradeRoom.LoadTest --persist disk --state FILE (--sqlite FILE | --pg CONNECTION-STRING)
          common: [--ws URL] [--api URL] [--secret S] [--server-pid PID] [--db-pid PID] [--provider NAME] [--json PATH]
          --publishers P    concurrent HTTP publishers, each with one request in flight   (8)
          --batch B         events per POST /api/events, spread over the rooms round-robin (100)
          --db-pid PID      a database server's main process (PostgreSQL's postmaster): its CPU, and its children's, is reported too
          --provider NAME   a label for the report (sqlite, postgresql, memory)
        """;

    private sealed class Options
    {
        public string Mode = "";
        public Uri Ws = new("ws://127.0.0.1:4001/ws");
        public Uri Api = new("http://127.0.0.1:4000");
        public string Secret = Environment.GetEnvironmentVariable("JWT_SECRET") is { Length: > 0 } s ? s : LoadTestOptions.DevelopmentSecret;
        public int? ServerPid;
        public int? DbPid;
        public string Provider = "";
        public int Rooms = 1;
        public int Publishers = 8;
        public int Batch = 100;
        public double Duration = 10;
        public double Warmup = 3;
        public int Events = 1000;
        public int EventSize = 120;
        public string? State;
        public bool Sequential;
        public string? SqliteFile;
        public string? Pg;
        public string? Json;
    }

    private sealed record RoomMark(string BullPenId, long Seq, string Epoch);

    private sealed record StateFile(IReadOnlyList<RoomMark> Rooms);

    private static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web) { WriteIndented = true };

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
                int Int() => (int)a.NonNegative() is var n and > 0 ? n : throw new ArgumentException($"{a.Name} needs a whole number > 0");
                switch (a.Name)
                {
                    case "--persist": o.Mode = a.Value(); break;
                    case "--ws": o.Ws = new Uri(a.Value()); break;
                    case "--api": o.Api = new Uri(a.Value()); break;
                    case "--secret": o.Secret = a.Value(); break;
                    case "--server-pid": o.ServerPid = Int(); break;
                    case "--db-pid": o.DbPid = Int(); break;
                    case "--provider": o.Provider = a.Value(); break;
                    case "--rooms": o.Rooms = Int(); break;
                    case "--publishers": o.Publishers = Int(); break;
                    case "--batch": o.Batch = Int(); break;
                    case "--duration": o.Duration = a.NonNegative(); break;
                    case "--warmup": o.Warmup = a.NonNegative(); break;
                    case "--events": o.Events = Int(); break;
                    case "--event-size": o.EventSize = (int)a.NonNegative(); break;
                    case "--state": o.State = a.Value(); break;
                    case "--sequential": o.Sequential = true; break;
                    case "--sqlite": o.SqliteFile = a.Value(); break;
                    case "--pg": o.Pg = a.Value(); break;
                    case "--json": o.Json = a.Value(); break;
                    default: throw new ArgumentException($"unknown option {a.Name}");
                }
            }
            if (o.Mode is not ("throughput" or "fill" or "history" or "first-subscribe" or "disk"))
                throw new ArgumentException("--persist takes throughput, fill, history, first-subscribe or disk");
            if (o.Mode is "fill" or "history" or "first-subscribe" or "disk" && o.State is null)
                throw new ArgumentException($"--persist {o.Mode} needs --state FILE");
            if (o.Mode == "disk" && (o.SqliteFile is null) == (o.Pg is null))
                throw new ArgumentException("--persist disk needs one of --sqlite FILE or --pg CONNECTION-STRING");
        }
        catch (Exception e) when (e is ArgumentException or UriFormatException)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}\n\n{Usage}");
            return 2;
        }

        var tokens = new TokenIssuer(o.Secret);
        using var http = new HttpClient { BaseAddress = o.Api, Timeout = TimeSpan.FromSeconds(60) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", tokens.ServiceToken("load-test", TimeSpan.FromHours(2)));
        try
        {
            var result = o.Mode switch
            {
                "throughput" => await ThroughputAsync(o, http, output),
                "fill" => await FillAsync(o, http, output),
                "history" => await HistoryAsync(o, http, tokens, output),
                "first-subscribe" => await FirstSubscribeAsync(o, tokens, output),
                _ => await DiskAsync(o, output),
            };
            if (o.Json is { } path)
                await File.WriteAllTextAsync(path, JsonSerializer.Serialize(result, Web));
            return result.Clean ? 0 : 1;
        }
        catch (LoadTestException e)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}");
            return 2;
        }
    }

    // ---- throughput ----

    private static async Task<PersistResult> ThroughputAsync(Options o, HttpClient http, TextWriter output)
    {
        var probe = ServerProbe.For(o.ServerPid);
        var rooms = Enumerable.Range(0, o.Rooms).Select(r => $"pub-{r}").ToArray();
        var pad = Math.Max(0, o.EventSize - 40);
        var seqs = rooms.ToDictionary(r => r, _ => new List<long>());
        var refusals = new ConcurrentDictionary<string, int>();
        long accepted = 0, measuredAccepted = 0, requests = 0;
        var measuring = false;
        var next = 0L;
        using var stop = new CancellationTokenSource();

        async Task PublisherAsync()
        {
            var targets = new string[o.Batch];
            while (!stop.IsCancellationRequested)
            {
                for (var i = 0; i < o.Batch; i++)
                    targets[i] = rooms[(int)(Interlocked.Increment(ref next) % rooms.Length)];
                var body = EventsBody(targets, "ranking_changed", pad);
                using var content = new ByteArrayContent(body);
                content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                HttpResponseMessage response;
                try
                {
                    response = await http.PostAsync("/api/events", content, CancellationToken.None);
                }
                catch (HttpRequestException e)
                {
                    refusals.AddOrUpdate($"request failed: {e.Message}", 1, (_, n) => n + 1);
                    continue;
                }
                using (response)
                {
                    Interlocked.Increment(ref requests);
                    var text = await response.Content.ReadAsStringAsync(CancellationToken.None);
                    if (response.StatusCode != HttpStatusCode.Accepted)
                    {
                        refusals.AddOrUpdate($"{(int)response.StatusCode} {ErrorCode(text)}", o.Batch, (_, n) => n + o.Batch);
                        continue;
                    }
                    using var doc = JsonDocument.Parse(text);
                    var answered = doc.RootElement.GetProperty("seqs");
                    var i = 0;
                    foreach (var seq in answered.EnumerateArray())
                    {
                        var list = seqs[targets[i++]];
                        lock (list)
                            list.Add(seq.GetInt64());
                    }
                    Interlocked.Add(ref accepted, i);
                    if (Volatile.Read(ref measuring))
                        Interlocked.Add(ref measuredAccepted, i);
                }
            }
        }

        var publishers = Enumerable.Range(0, o.Publishers).Select(_ => Task.Run(PublisherAsync)).ToArray();
        await Task.Delay(TimeSpan.FromSeconds(o.Warmup));
        var metricsBefore = await Prometheus.ScrapeAsync(http);
        var cpuBefore = probe?.CpuMicroseconds();
        var dbCpuBefore = o.DbPid is { } db0 ? ProcessTreeCpuMicroseconds(db0) : (double?)null;
        var clock = Stopwatch.StartNew();
        Volatile.Write(ref measuring, true);
        await Task.Delay(TimeSpan.FromSeconds(o.Duration));
        Volatile.Write(ref measuring, false);
        var seconds = clock.Elapsed.TotalSeconds;
        var cpuAfter = probe?.CpuMicroseconds();
        var dbCpuAfter = o.DbPid is { } db1 ? ProcessTreeCpuMicroseconds(db1) : (double?)null;
        var metricsAfter = await Prometheus.ScrapeAsync(http);
        await stop.CancelAsync();
        await Task.WhenAll(publishers);

        // Every accepted event of a room must carry a distinct seq, and together they must be 1..n (a fresh store).
        long gaps = 0, duplicates = 0;
        foreach (var list in seqs.Values)
        {
            var distinct = list.Distinct().Count();
            duplicates += list.Count - distinct;
            if (list.Count > 0)
                gaps += list.Max() - distinct;
        }
        var journal = Prometheus.HistogramDelta(metricsBefore, metricsAfter, "traderoom_journal_write_seconds");
        var result = new PersistResult
        {
            Mode = "throughput",
            Provider = o.Provider,
            Rooms = o.Rooms,
            Publishers = o.Publishers,
            Batch = o.Batch,
            Seconds = Math.Round(seconds, 2),
            Accepted = measuredAccepted,
            AcceptedInRun = accepted,
            Refused = refusals.ToDictionary(),
            EventsPerSecond = Math.Round(measuredAccepted / seconds, 0),
            ServerCpuMicrosPerEvent = cpuBefore is { } c0 && cpuAfter is { } c1 && measuredAccepted > 0 ? Math.Round((c1 - c0) / measuredAccepted, 2) : null,
            ServerCpuCores = cpuBefore is { } u0 && cpuAfter is { } u1 ? Math.Round((u1 - u0) / 1e6 / seconds, 2) : null,
            DbCpuMicrosPerEvent = dbCpuBefore is { } d0 && dbCpuAfter is { } d1 && measuredAccepted > 0 ? Math.Round((d1 - d0) / measuredAccepted, 2) : null,
            NumberingGaps = gaps,
            NumberingDuplicates = duplicates,
            JournalWriteMeanMs = journal.Count > 0 ? Math.Round(journal.Sum / journal.Count * 1000, 3) : null,
            JournalWriteP50Ms = journal.Quantile(0.50) * 1000,
            JournalWriteP99Ms = journal.Quantile(0.99) * 1000,
            EventsPersisted = (long)(Prometheus.Sum(metricsAfter, "traderoom_events_persisted_total") - Prometheus.Sum(metricsBefore, "traderoom_events_persisted_total")),
            Gen0Collections = (long)(Prometheus.Value(metricsAfter, "dotnet_collection_count_total{generation=\"0\"}") - Prometheus.Value(metricsBefore, "dotnet_collection_count_total{generation=\"0\"}")),
            Gen2Collections = (long)(Prometheus.Value(metricsAfter, "dotnet_collection_count_total{generation=\"2\"}") - Prometheus.Value(metricsBefore, "dotnet_collection_count_total{generation=\"2\"}")),
            Requests = requests,
        };
        var s = new StringBuilder();
        s.AppendLine(CultureInfo.InvariantCulture, $"publish throughput ({o.Provider}): {o.Rooms} room(s), {o.Publishers} publishers × POST /api/events of {o.Batch} events, {o.Warmup:0} s warm-up, {seconds:0.00} s measured");
        s.AppendLine(CultureInfo.InvariantCulture, $"  accepted (202)                 {measuredAccepted} events in {seconds:0.00} s = {result.EventsPerSecond:N0} events/s ({accepted} in the whole run, {requests} requests)");
        s.AppendLine(CultureInfo.InvariantCulture, $"  refused                        {(refusals.IsEmpty ? "none" : string.Join(", ", refusals.Select(r => $"{r.Value} events: {r.Key}")))}");
        s.AppendLine(CultureInfo.InvariantCulture, $"  numbering (seqs answered)      {gaps} missing, {duplicates} duplicated over {o.Rooms} room(s): {(gaps == 0 && duplicates == 0 ? "every accepted event numbered 1..n without gap" : "NOT gap-free")}");
        if (result.ServerCpuMicrosPerEvent is { } cpu)
            s.AppendLine(CultureInfo.InvariantCulture, $"  server CPU                     {cpu:0.00} µs per event ({result.ServerCpuCores:0.00} cores busy)");
        if (result.DbCpuMicrosPerEvent is { } dbCpu)
            s.AppendLine(CultureInfo.InvariantCulture, $"  database CPU (postmaster tree) {dbCpu:0.00} µs per event");
        s.AppendLine(CultureInfo.InvariantCulture, $"  journal write (server metric)  {result.EventsPersisted} persisted; mean {result.JournalWriteMeanMs:0.000} ms, p50 ≤ {result.JournalWriteP50Ms:0.###} ms, p99 ≤ {result.JournalWriteP99Ms:0.###} ms (bucket bounds)");
        s.AppendLine(CultureInfo.InvariantCulture, $"  server GCs while measuring     gen0 {result.Gen0Collections}, gen2 {result.Gen2Collections}");
        await output.WriteAsync(s.ToString());
        return result;
    }

    private static string ErrorCode(string body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            return doc.RootElement.GetProperty("error").GetProperty("code").GetString() ?? body;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return body.Length > 80 ? body[..80] : body;
        }
    }

    /// <summary>
    /// A batch with one event for each entry of <paramref name="rooms"/>. Each event's <c>pad</c> is fresh random
    /// letters and digits: they do not compress, unlike repeated text, which PostgreSQL's TOAST would shrink to
    /// almost nothing and make its disk per event look far smaller than real data's.
    /// </summary>
    private static byte[] EventsBody(IReadOnlyList<string> rooms, string type, int padLength)
    {
        const string alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        Span<char> pad = stackalloc char[padLength];
        var body = new MemoryStream();
        using (var w = new Utf8JsonWriter(body))
        {
            w.WriteStartArray();
            var now = Stopwatch.GetTimestamp();
            for (var i = 0; i < rooms.Count; i++)
            {
                w.WriteStartObject();
                w.WriteString("bullPenId", rooms[i]);
                w.WriteString("type", type);
                w.WriteStartObject("data");
                w.WriteNumber("t", now);
                w.WriteNumber("n", i);
                for (var c = 0; c < pad.Length; c++)
                    pad[c] = alphabet[Random.Shared.Next(alphabet.Length)];
                w.WriteString("pad", pad);
                w.WriteEndObject();
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        return body.ToArray();
    }

    /// <summary>CPU of a process, of its children already reaped (cutime/cstime) and of its live children, in microseconds.</summary>
    private static double ProcessTreeCpuMicroseconds(int pid)
    {
        static long[] Fields(int p)
        {
            var stat = File.ReadAllText($"/proc/{p}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].Split(' ').Select(f => long.TryParse(f, CultureInfo.InvariantCulture, out var v) ? v : 0).ToArray();
        }
        // After the command name: field index 1 is ppid; 11-14 are utime, stime, cutime, cstime (in 1/100 s).
        var own = Fields(pid);
        long ticks = own[11] + own[12] + own[13] + own[14];
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var child) || child == pid)
                continue;
            try
            {
                var f = Fields(child);
                if (f[1] == pid)
                    ticks += f[11] + f[12];
            }
            catch (IOException)
            {
                // gone meanwhile: its time is now in the parent's cutime
            }
        }
        return ticks * 10_000.0;
    }

    // ---- fill ----

    private static async Task<PersistResult> FillAsync(Options o, HttpClient http, TextWriter output)
    {
        var pad = Math.Max(0, o.EventSize - 40);
        var rooms = Enumerable.Range(0, o.Rooms).Select(r => $"kept-{r}").ToArray();
        var all = new List<string>(o.Rooms * o.Events);
        for (var n = 0; n < o.Events; n++)
            all.AddRange(rooms);
        // Requests of 100 events, 2 in flight: a request that starts many rooms waits for each to recover from the
        // store, and 500 new rooms in one request outlast http.publish-timeout on SQLite.
        var chunks = all.Chunk(100).ToArray();
        var clock = Stopwatch.StartNew();
        var refused = 0;
        var reasons = new ConcurrentDictionary<string, int>();
        using (var gate = new SemaphoreSlim(2))
        {
            await Task.WhenAll(chunks.Select(async chunk =>
            {
                await gate.WaitAsync();
                try
                {
                    using var content = new ByteArrayContent(EventsBody(chunk, "ranking_changed", pad));
                    content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                    using var response = await http.PostAsync("/api/events", content);
                    if (response.StatusCode != HttpStatusCode.Accepted)
                    {
                        Interlocked.Add(ref refused, chunk.Length);
                        reasons.AddOrUpdate($"{(int)response.StatusCode} {ErrorCode(await response.Content.ReadAsStringAsync())}", 1, (_, n) => n + 1);
                    }
                }
                finally
                {
                    gate.Release();
                }
            }));
        }
        var seconds = clock.Elapsed.TotalSeconds;
        var marks = new List<RoomMark>();
        string? after = null;
        do
        {
            using var doc = JsonDocument.Parse(await http.GetStringAsync($"/api/rooms?limit=1000{(after is null ? "" : "&after=" + Uri.EscapeDataString(after))}"));
            foreach (var room in doc.RootElement.GetProperty("rooms").EnumerateArray())
            {
                var id = room.GetProperty("bullPenId").GetString()!;
                if (id.StartsWith("kept-", StringComparison.Ordinal))
                    marks.Add(new RoomMark(id, room.GetProperty("seq").GetInt64(), room.GetProperty("epoch").GetString()!));
            }
            after = doc.RootElement.GetProperty("next").ValueKind == JsonValueKind.String ? doc.RootElement.GetProperty("next").GetString() : null;
        } while (after is not null);
        await File.WriteAllTextAsync(o.State!, JsonSerializer.Serialize(new StateFile(marks), Web));
        var complete = marks.Count == o.Rooms && marks.All(m => m.Seq == o.Events) && refused == 0;
        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"fill ({o.Provider}): {o.Events} events into each of {o.Rooms} rooms in {seconds:0.00} s ({(long)o.Rooms * o.Events / seconds:N0} events/s), {refused} refused{string.Concat(reasons.Select(r => $" ({r.Value} requests: {r.Key})"))}; " +
            $"{marks.Count} rooms running, {(complete ? $"each at seq {o.Events}" : "NOT all at the expected seq")}"));
        return new PersistResult { Mode = "fill", Provider = o.Provider, Rooms = o.Rooms, Accepted = (long)o.Rooms * o.Events - refused, Seconds = Math.Round(seconds, 2), FillComplete = complete };
    }

    private static StateFile ReadState(Options o) =>
        JsonSerializer.Deserialize<StateFile>(File.ReadAllText(o.State!), Web) ?? throw new LoadTestException($"{o.State} is empty");

    // ---- history: recovery of one room with a full history ----

    private static async Task<PersistResult> HistoryAsync(Options o, HttpClient http, TokenIssuer tokens, TextWriter output)
    {
        // The first room a fresh server recovers also pays for the journal's own start (connections, query
        // compilation, JIT); the second shows what a room's recovery costs by itself. The same size, in a different order.
        var rooms = ReadState(o).Rooms;
        if (rooms.Count < 2)
            throw new LoadTestException("the state file needs two rooms (the first recovered cold, the second warm)");
        var cold = await ResumeFromZeroAsync(o, http, tokens, rooms[0]);
        var warm = await ResumeFromZeroAsync(o, http, tokens, rooms[1]);
        var result = new PersistResult
        {
            Mode = "history",
            Provider = o.Provider,
            Rooms = 2,
            HistoryEvents = rooms[0].Seq,
            Recovered = cold.Recovered && warm.Recovered,
            Replayed = Math.Min(cold.Replayed, warm.Replayed),
            ReplayOutOfOrder = cold.OutOfOrder + warm.OutOfOrder,
            SubscribedMs = cold.SubscribedMs,
            LastEventMs = cold.LastMs,
            RoomRecoveryMs = cold.RecoveryMs,
            WarmSubscribedMs = warm.SubscribedMs,
            WarmLastEventMs = warm.LastMs,
            WarmRoomRecoveryMs = warm.RecoveryMs,
        };
        foreach (var (label, r) in new[] { ("first room after the start", cold), ("second room", warm) })
        {
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"recovery of a room with {r.Room.Seq} events of history ({o.Provider}), after a restart, {label}: resume from seq 0 with its epoch: " +
                $"subscribed (recovered:{r.Recovered.ToString().ToLowerInvariant()}) after {r.SubscribedMs:0.0} ms, last replayed event (seq {r.LastSeq}) after {r.LastMs:0.0} ms; " +
                $"{r.Replayed} events replayed, {r.OutOfOrder} out of order; server's traderoom_room_recovery_seconds for it: {r.RecoveryMs:0.0} ms"));
        }
        return result;
    }

    private sealed record Resume(RoomMark Room, bool Recovered, double? SubscribedMs, double? LastMs, long LastSeq, long Replayed, long OutOfOrder, double? RecoveryMs);

    private static async Task<Resume> ResumeFromZeroAsync(Options o, HttpClient http, TokenIssuer tokens, RoomMark room)
    {
        var before = await Prometheus.ScrapeAsync(http);
        using var client = await ConnectAsync(o, tokens.UserToken("recovery-" + room.BullPenId, TimeSpan.FromHours(1)));
        var buffer = new byte[1 << 20];
        var start = Stopwatch.GetTimestamp();
        await SendAsync(client, new { type = "subscribe_room", data = new { bullPenId = room.BullPenId, sinceSeq = 0, epoch = room.Epoch } });
        double? subscribedMs = null, lastMs = null;
        var recovered = false;
        long expectedSeq = 1, replayed = 0, outOfOrder = 0;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (lastMs is null)
        {
            using var doc = JsonDocument.Parse(await ReceiveTextAsync(client, buffer, timeout.Token));
            var type = doc.RootElement.GetProperty("type").GetString();
            if (type == "subscribed")
            {
                subscribedMs = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                recovered = doc.RootElement.GetProperty("data").GetProperty("recovered").GetBoolean();
                if (!recovered)
                    break;
            }
            else if (type is "error" or "auth_error")
                throw new LoadTestException($"subscribe refused: {doc.RootElement}");
            else if (doc.RootElement.TryGetProperty("seq", out var seqElement))
            {
                var seq = seqElement.GetInt64();
                if (seq != expectedSeq)
                    outOfOrder++;
                expectedSeq = seq + 1;
                replayed++;
                if (seq >= room.Seq)
                    lastMs = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }
        }
        var after = await Prometheus.ScrapeAsync(http);
        var recovery = Prometheus.HistogramDelta(before, after, "traderoom_room_recovery_seconds");
        return new Resume(room, recovered, Round(subscribedMs), Round(lastMs), expectedSeq - 1, replayed, outOfOrder,
            recovery.Count > 0 ? Math.Round(recovery.Sum / recovery.Count * 1000, 1) : null);

        static double? Round(double? v) => v is { } x ? Math.Round(x, 1) : null;
    }

    // ---- first subscribe after a restart ----

    private static async Task<PersistResult> FirstSubscribeAsync(Options o, TokenIssuer tokens, TextWriter output)
    {
        var rooms = ReadState(o).Rooms;
        var clients = new ClientWebSocket[rooms.Count];
        using (var gate = new SemaphoreSlim(50))
        {
            await Task.WhenAll(rooms.Select(async (_, i) =>
            {
                await gate.WaitAsync();
                try
                {
                    clients[i] = await ConnectAsync(o, tokens.UserToken($"first-{i}", TimeSpan.FromHours(1)));
                }
                finally
                {
                    gate.Release();
                }
            }));
        }
        var latencies = new double[rooms.Count];
        var wrong = 0;
        async Task SubscribeAsync(int i)
        {
            var buffer = new byte[64 * 1024];
            var start = Stopwatch.GetTimestamp();
            await SendAsync(clients[i], new { type = "subscribe_room", data = new { bullPenId = rooms[i].BullPenId } });
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            while (true)
            {
                using var doc = JsonDocument.Parse(await ReceiveTextAsync(clients[i], buffer, timeout.Token));
                var type = doc.RootElement.GetProperty("type").GetString();
                if (type == "subscribed")
                {
                    latencies[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                    var data = doc.RootElement.GetProperty("data");
                    if (data.GetProperty("seq").GetInt64() != rooms[i].Seq || data.GetProperty("epoch").GetString() != rooms[i].Epoch)
                        Interlocked.Increment(ref wrong); // the room did not come back as it was
                    return;
                }
                if (type is "error" or "auth_error")
                    throw new LoadTestException($"subscribe to {rooms[i].BullPenId} refused: {doc.RootElement}");
            }
        }
        var probe = ServerProbe.For(o.ServerPid);
        var cpuBefore = probe?.CpuMicroseconds();
        var clock = Stopwatch.StartNew();
        if (o.Sequential)
        {
            for (var i = 0; i < rooms.Count; i++)
                await SubscribeAsync(i);
        }
        else
            await Task.WhenAll(Enumerable.Range(0, rooms.Count).Select(i => Task.Run(() => SubscribeAsync(i))));
        var total = clock.Elapsed.TotalSeconds;
        var cpuAfter = probe?.CpuMicroseconds();
        foreach (var c in clients)
            c.Abort();
        Array.Sort(latencies);
        double P(double q) => Math.Round(latencies[Math.Min(latencies.Length - 1, (int)Math.Ceiling(q * latencies.Length) - 1)], 1);
        var result = new PersistResult
        {
            Mode = o.Sequential ? "first-subscribe-sequential" : "first-subscribe",
            Provider = o.Provider,
            Rooms = rooms.Count,
            HistoryEvents = rooms.Count > 0 ? rooms[0].Seq : 0,
            SubscribeP50Ms = P(0.50),
            SubscribeP99Ms = P(0.99),
            SubscribeMaxMs = Math.Round(latencies[^1], 1),
            Seconds = Math.Round(total, 2),
            WrongState = wrong,
            ServerCpuMsPerRoom = cpuBefore is { } c0 && cpuAfter is { } c1 ? Math.Round((c1 - c0) / 1000 / rooms.Count, 2) : null,
            ServerCpuCores = cpuBefore is { } u0 && cpuAfter is { } u1 ? Math.Round((u1 - u0) / 1e6 / total, 2) : null,
        };
        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"first subscribe after a restart ({o.Provider}), {rooms.Count} rooms of {result.HistoryEvents} events, one client each, {(o.Sequential ? "one after another" : "all at once")}: " +
            $"time to subscribed p50 {result.SubscribeP50Ms:0.0} ms, p99 {result.SubscribeP99Ms:0.0} ms, max {result.SubscribeMaxMs:0.0} ms; all done in {total:0.00} s; " +
            $"server CPU {result.ServerCpuMsPerRoom:0.00} ms per room ({result.ServerCpuCores:0.00} cores busy); {wrong} rooms came back with another seq or epoch"));
        return result;
    }

    private static async Task<ClientWebSocket> ConnectAsync(Options o, string token)
    {
        var client = new ClientWebSocket();
        await client.ConnectAsync(new Uri($"{o.Ws}?token={Uri.EscapeDataString(token)}"), CancellationToken.None);
        var first = await ReceiveTextAsync(client, new byte[64 * 1024], CancellationToken.None);
        if (!first.Contains("\"auth_success\"", StringComparison.Ordinal))
            throw new LoadTestException($"auth refused: {first}");
        return client;
    }

    private static Task SendAsync(ClientWebSocket client, object message) =>
        client.SendAsync(JsonSerializer.SerializeToUtf8Bytes(message), WebSocketMessageType.Text, true, CancellationToken.None);

    private static async Task<string> ReceiveTextAsync(ClientWebSocket client, byte[] buffer, CancellationToken cancellationToken)
    {
        var count = 0;
        while (true)
        {
            var r = await client.ReceiveAsync(buffer.AsMemory(count), cancellationToken);
            if (r.MessageType == WebSocketMessageType.Close)
                throw new LoadTestException($"the server closed the connection: {client.CloseStatus} {client.CloseStatusDescription}");
            count += r.Count;
            if (r.EndOfMessage)
                return Encoding.UTF8.GetString(buffer, 0, count);
            if (count == buffer.Length)
                throw new LoadTestException("a frame larger than the buffer");
        }
    }

    // ---- disk bytes per event kept ----

    private static async Task<PersistResult> DiskAsync(Options o, TextWriter output)
    {
        var expected = ReadState(o).Rooms.Sum(r => Math.Min(r.Seq, 1000));
        var serializer = new RoomSerializer(null!);
        long storeBytes, liveBytes, journalRows = 0, journalKept = 0, snapshots = 0, snapshotHistory = 0, eventsKept = 0;
        string how;
        if (o.SqliteFile is { } file)
        {
            await using (var c = new SqliteConnection($"Data Source={file}"))
            {
                await c.OpenAsync();
                // Everything in the write-ahead log goes into the file, so that the file alone holds the data.
                await Scalar(c, "PRAGMA wal_checkpoint(TRUNCATE)");
                var pageSize = await Scalar(c, "PRAGMA page_size");
                var pages = await Scalar(c, "PRAGMA page_count");
                var free = await Scalar(c, "PRAGMA freelist_count");
                liveBytes = (pages - free) * pageSize;
                (journalRows, journalKept, snapshots, snapshotHistory, eventsKept) = await CountAsync(c, serializer);
            }
            SqliteConnection.ClearAllPools();
            var wal = new FileInfo(file + "-wal");
            storeBytes = new FileInfo(file).Length + (wal.Exists ? wal.Length : 0);
            how = "SQLite file + -wal after PRAGMA wal_checkpoint(TRUNCATE); live = (page_count - freelist_count) × page_size";
        }
        else
        {
            await using var c = new NpgsqlConnection(o.Pg);
            await c.OpenAsync();
            storeBytes = await Scalar(c, "SELECT pg_total_relation_size('journal') + pg_total_relation_size('snapshot')");
            (journalRows, journalKept, snapshots, snapshotHistory, eventsKept) = await CountAsync(c, serializer);
            // Live: after VACUUM FULL rewrites both tables without dead rows (the deleted journal rows, old snapshot versions).
            await Scalar(c, "VACUUM FULL journal");
            await Scalar(c, "VACUUM FULL snapshot");
            liveBytes = await Scalar(c, "SELECT pg_total_relation_size('journal') + pg_total_relation_size('snapshot')");
            how = "pg_total_relation_size(journal) + pg_total_relation_size(snapshot) (tables, indexes, TOAST); live = the same after VACUUM FULL";
        }
        var result = new PersistResult
        {
            Mode = "disk",
            Provider = o.Provider,
            Rooms = ReadState(o).Rooms.Count,
            StoreBytes = storeBytes,
            LiveBytes = liveBytes,
            JournalRows = journalRows,
            JournalEventsKept = journalKept,
            Snapshots = snapshots,
            SnapshotHistoryEvents = snapshotHistory,
            EventsKept = eventsKept,
            BytesPerEvent = eventsKept > 0 ? Math.Round((double)storeBytes / eventsKept, 0) : null,
            LiveBytesPerEvent = eventsKept > 0 ? Math.Round((double)liveBytes / eventsKept, 0) : null,
            FillComplete = eventsKept == expected,
        };
        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"disk ({o.Provider}): {storeBytes:N0} bytes ({liveBytes:N0} live) for {eventsKept:N0} events kept = {result.BytesPerEvent:N0} bytes per event ({result.LiveBytesPerEvent:N0} live); " +
            $"events kept = per room, the history in its latest snapshot ({snapshotHistory:N0} over {snapshots} snapshots) + its journal rows after that snapshot ({journalKept:N0}; {journalRows:N0} journal rows in all); " +
            $"expected {expected:N0}; measured as {how}"));
        return result;
    }

    /// <summary>Journal rows, journal events after each room's latest snapshot, snapshots, history events in the latest snapshots, events kept.</summary>
    private static async Task<(long, long, long, long, long)> CountAsync(System.Data.Common.DbConnection c, RoomSerializer serializer)
    {
        var latest = new Dictionary<string, (long Seq, int History)>();
        long snapshots = 0;
        await using (var command = c.CreateCommand())
        {
            command.CommandText = "SELECT persistence_id, sequence_number, manifest, snapshot FROM snapshot";
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                snapshots++;
                var id = reader.GetString(0);
                var seq = reader.GetInt64(1);
                if (latest.TryGetValue(id, out var known) && known.Seq >= seq)
                    continue;
                var snapshot = (RoomSnapshot)serializer.FromBinary((byte[])reader.GetValue(3), reader.GetString(2));
                latest[id] = (seq, snapshot.History.Count);
            }
        }
        long rows = 0, kept = 0;
        await using (var command = c.CreateCommand())
        {
            command.CommandText = "SELECT persistence_id, sequence_number, deleted FROM journal";
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                rows++;
                var deleted = Convert.ToBoolean(reader.GetValue(2), CultureInfo.InvariantCulture);
                var after = !latest.TryGetValue(reader.GetString(0), out var snap) || reader.GetInt64(1) > snap.Seq;
                if (!deleted && after)
                    kept++;
            }
        }
        var history = latest.Values.Sum(v => (long)v.History);
        return (rows, kept, snapshots, history, history + kept);
    }

    private static async Task<long> Scalar(System.Data.Common.DbConnection c, string sql)
    {
        await using var command = c.CreateCommand();
        command.CommandText = sql;
        var value = await command.ExecuteScalarAsync();
        return value is null or DBNull ? 0 : Convert.ToInt64(value, CultureInfo.InvariantCulture);
    }
}

/// <summary>The outcome of one <c>--persist</c> run (its <c>--json</c>); fields not measured by its mode are null.</summary>
public sealed record PersistResult
{
    public required string Mode { get; init; }
    public required string Provider { get; init; }
    public int Rooms { get; init; }
    public int? Publishers { get; init; }
    public int? Batch { get; init; }
    public double? Seconds { get; init; }
    public long? Accepted { get; init; }
    public long? AcceptedInRun { get; init; }
    public long? Requests { get; init; }
    public IReadOnlyDictionary<string, int>? Refused { get; init; }
    public double? EventsPerSecond { get; init; }
    public double? ServerCpuMicrosPerEvent { get; init; }
    public double? ServerCpuCores { get; init; }
    public double? DbCpuMicrosPerEvent { get; init; }
    public long? NumberingGaps { get; init; }
    public long? NumberingDuplicates { get; init; }
    public double? JournalWriteMeanMs { get; init; }
    public double? JournalWriteP50Ms { get; init; }
    public double? JournalWriteP99Ms { get; init; }
    public long? EventsPersisted { get; init; }
    public long? Gen0Collections { get; init; }
    public long? Gen2Collections { get; init; }
    public bool? FillComplete { get; init; }
    public long? HistoryEvents { get; init; }
    public bool? Recovered { get; init; }
    public long? Replayed { get; init; }
    public long? ReplayOutOfOrder { get; init; }
    public double? SubscribedMs { get; init; }
    public double? LastEventMs { get; init; }
    public double? RoomRecoveryMs { get; init; }
    public double? WarmSubscribedMs { get; init; }
    public double? WarmLastEventMs { get; init; }
    public double? WarmRoomRecoveryMs { get; init; }
    public double? SubscribeP50Ms { get; init; }
    public double? SubscribeP99Ms { get; init; }
    public double? SubscribeMaxMs { get; init; }
    public int? WrongState { get; init; }
    public double? ServerCpuMsPerRoom { get; init; }
    public long? StoreBytes { get; init; }
    public long? LiveBytes { get; init; }
    public long? JournalRows { get; init; }
    public long? JournalEventsKept { get; init; }
    public long? Snapshots { get; init; }
    public long? SnapshotHistoryEvents { get; init; }
    public long? EventsKept { get; init; }
    public double? BytesPerEvent { get; init; }
    public double? LiveBytesPerEvent { get; init; }

    public bool Clean => Mode switch
    {
        "throughput" => NumberingGaps == 0 && NumberingDuplicates == 0,
        "fill" or "disk" => FillComplete == true,
        "history" => Recovered == true && ReplayOutOfOrder == 0 && Replayed == HistoryEvents,
        _ => WrongState == 0,
    };
}

/// <summary>A Prometheus text scrape as series → value, and what the benchmarks take from it.</summary>
internal static class Prometheus
{
    public static async Task<Dictionary<string, double>> ScrapeAsync(HttpClient http)
    {
        var text = await http.GetStringAsync("/metrics");
        var series = new Dictionary<string, double>();
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#')
                continue;
            var space = line.LastIndexOf(' ');
            if (space > 0 && double.TryParse(line[(space + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
                series[line[..space]] = v;
        }
        return series;
    }

    public static double Value(Dictionary<string, double> s, string series) => s.GetValueOrDefault(series);

    /// <summary>A metric summed over its labels.</summary>
    public static double Sum(Dictionary<string, double> s, string name) =>
        s.Where(kv => kv.Key == name || kv.Key.StartsWith(name + "{", StringComparison.Ordinal)).Sum(kv => kv.Value);

    public sealed record Histogram(double Count, double Sum, IReadOnlyList<(double Le, double Count)> Buckets)
    {
        /// <summary>The upper bound of the bucket holding quantile <paramref name="q"/> (null when empty).</summary>
        public double? Quantile(double q)
        {
            if (Count <= 0)
                return null;
            foreach (var (le, count) in Buckets)
            {
                if (count >= q * Count)
                    return le;
            }
            return null; // past the highest finite bucket
        }
    }

    /// <summary>The observations of histogram <paramref name="name"/> between two scrapes.</summary>
    public static Histogram HistogramDelta(Dictionary<string, double> before, Dictionary<string, double> after, string name)
    {
        var prefix = name + "_bucket{le=\"";
        var buckets = after.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal))
            .Select(kv =>
            {
                var le = kv.Key[prefix.Length..kv.Key.IndexOf('"', prefix.Length)];
                var bound = le == "+Inf" ? double.PositiveInfinity : double.Parse(le, NumberStyles.Float, CultureInfo.InvariantCulture);
                return (bound, kv.Value - before.GetValueOrDefault(kv.Key));
            })
            .OrderBy(b => b.bound).ToList();
        return new Histogram(Value(after, name + "_count") - Value(before, name + "_count"), Value(after, name + "_sum") - Value(before, name + "_sum"), buckets);
    }
}
