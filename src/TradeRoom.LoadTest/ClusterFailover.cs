using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using TradeRoom.Actors.Auth;

namespace TradeRoom.LoadTest;

/// <summary>
/// <c>--failover</c>: the failover time of issue 12. Given every node of a running cluster (its HTTP API and its pid),
/// starts the rooms, finds the node hosting the most of them (<c>/api/rooms</c>' <c>node</c>), publishes to every room
/// through the other nodes at a short interval (a new request every interval, several in flight, so a request that
/// waits out <c>http.publish-timeout</c> does not hide the moment the room is back), then <c>kill -9</c>s that node.
/// Per affected room it reports the time from the kill until the first 202 of a request sent after the kill; the
/// failover time is the largest of them. Unaffected rooms' longest wait for a 202 shows what the others saw meanwhile.
/// </summary>
internal static class ClusterFailover
{
    public const string Usage = """
        usage: TradeRoom.LoadTest --failover --api URL --server-pid PID [--api URL --server-pid PID ...]
                                  [--secret S] [--rooms 12] [--interval-ms 100] [--before 5] [--give-up 90] [--json PATH]
          --api URL, --server-pid PID   each node's HTTP API and process, in the same order (3 or more nodes)
          --rooms N          rooms, each with its own publisher                                  (12)
          --interval-ms M    a new publish request to each room every M ms, through the survivors  (100)
          --before S         seconds of publishing before the kill                              (5)
          --give-up S        seconds after the kill to wait for every affected room              (90)
        """;

    private sealed class Options
    {
        public readonly List<Uri> Apis = [];
        public readonly List<int> Pids = [];
        public string Secret = Environment.GetEnvironmentVariable("JWT_SECRET") is { Length: > 0 } s ? s : LoadTestOptions.DevelopmentSecret;
        public int Rooms = 12;
        public int IntervalMs = 100;
        public double Before = 5;
        public double GiveUp = 90;
        public string? Json;
    }

    /// <summary>One publish request: when it was sent and answered (ms since the start), and how.</summary>
    private readonly record struct Attempt(double SentMs, double AnsweredMs, int Status, long? Seq);

    public sealed record RoomOutcome(string Room, bool Affected, double? BackAfterMs, double? FirstSentAfterKillMs, int Accepted, int Refused,
        int Failed, double LongestWaitForAcceptMs, int DuplicateSeqs);

    public sealed record FailoverResult(int Nodes, int VictimNode, int VictimRooms, int Rooms, int IntervalMs, double? FailoverMs,
        double? FailoverMedianMs, double UnaffectedLongestWaitMs, int Accepted, int Refused, int Failed, int DuplicateSeqs,
        IReadOnlyDictionary<string, int> RefusalReasons, IReadOnlyList<RoomOutcome> PerRoom);

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
                    case "--failover": break;
                    case "--api":
                        o.Apis.Add(Uri.TryCreate(a.Value(), UriKind.Absolute, out var u) && u.Scheme is "http" or "https"
                            ? u : throw new ArgumentException("--api needs an http or https URL"));
                        break;
                    case "--server-pid": o.Pids.Add(a.Int(1)); break;
                    case "--secret": o.Secret = a.Value(); break;
                    case "--rooms": o.Rooms = a.Int(1); break;
                    case "--interval-ms": o.IntervalMs = a.Int(1); break;
                    case "--before": o.Before = a.Positive(); break;
                    case "--give-up": o.GiveUp = a.Positive(); break;
                    case "--json": o.Json = a.Value(); break;
                    default: throw new ArgumentException($"unknown option {a.Name}");
                }
            }
            if (o.Apis.Count < 3 || o.Pids.Count != o.Apis.Count)
                throw new ArgumentException("--failover needs 3 or more nodes, each as --api URL and --server-pid PID in the same order");
        }
        catch (ArgumentException e)
        {
            await output.WriteLineAsync($"error: {e.Message}\n\n{Usage}");
            return 2;
        }

        var result = await MeasureAsync(o, output);
        await output.WriteLineAsync(Format(result));
        if (o.Json is { } path)
            await File.WriteAllTextAsync(path, JsonSerializer.Serialize(result, new JsonSerializerOptions(JsonSerializerDefaults.Web) { WriteIndented = true }));
        return result.FailoverMs is not null && result.DuplicateSeqs == 0 ? 0 : 1;
    }

    private static async Task<FailoverResult> MeasureAsync(Options o, TextWriter output)
    {
        var token = new TokenIssuer(o.Secret).ServiceToken("failover-bench", TimeSpan.FromHours(1));
        // Requests to a room that is gone wait out the server's publish timeout (5 s) and more: a generous client timeout,
        // so that the client never gives up on a request the server could still accept.
        var nodes = o.Apis.Select(u => new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 1000 })
        {
            BaseAddress = u,
            Timeout = TimeSpan.FromSeconds(60),
            DefaultRequestHeaders = { Authorization = new AuthenticationHeaderValue("Bearer", token) },
        }).ToArray();
        var rooms = Enumerable.Range(0, o.Rooms).Select(r => $"failover-{r}").ToArray();

        // Start the rooms (sharding places them), then ask where each runs and which node each API is.
        foreach (var room in rooms)
        {
            var (status, _, text) = await PublishAsync(nodes[0], room, -1);
            if (status != 202)
                throw new LoadTestException($"publishing to {room} answered {status}: {text}");
        }
        var selves = new string[nodes.Length];
        for (var n = 0; n < nodes.Length; n++)
        {
            using var health = JsonDocument.Parse(await nodes[n].GetStringAsync("/api/health"));
            selves[n] = health.RootElement.TryGetProperty("cluster", out var cluster)
                ? cluster.GetProperty("self").GetString()!
                : throw new LoadTestException($"{o.Apis[n]} is not in cluster mode (no `cluster` in /api/health)");
        }
        using var listing = JsonDocument.Parse(await nodes[0].GetStringAsync("/api/rooms"));
        var hosts = listing.RootElement.GetProperty("rooms").EnumerateArray()
            .Where(r => rooms.Contains(r.GetProperty("bullPenId").GetString()))
            .ToDictionary(r => r.GetProperty("bullPenId").GetString()!, r => Array.IndexOf(selves, r.GetProperty("node").GetString()));
        var victim = Enumerable.Range(0, nodes.Length).OrderByDescending(n => hosts.Count(h => h.Value == n)).First();
        var affected = hosts.Where(h => h.Value == victim).Select(h => h.Key).ToHashSet();
        var survivors = nodes.Where((_, n) => n != victim).ToArray();
        await output.WriteLineAsync($"rooms per node: {string.Join(", ", Enumerable.Range(0, nodes.Length).Select(n => $"node {n + 1} {hosts.Count(h => h.Value == n)}"))}; " +
                                    $"killing node {victim + 1} (pid {o.Pids[victim]}) after {o.Before:0} s, publishing through the others every {o.IntervalMs} ms per room");

        var clock = Stopwatch.StartNew();
        var attempts = rooms.ToDictionary(r => r, _ => new ConcurrentQueue<Attempt>());
        var reasons = new ConcurrentDictionary<string, int>();
        double killedAtMs = double.NaN;
        using var stop = new CancellationTokenSource();
        var inFlight = new ConcurrentBag<Task>();
        var publishing = Task.Run(async () =>
        {
            using var ticker = new PeriodicTimer(TimeSpan.FromMilliseconds(o.IntervalMs));
            var turn = 0;
            while (!stop.IsCancellationRequested && await ticker.WaitForNextTickAsync(CancellationToken.None))
            {
                foreach (var room in rooms)
                {
                    var node = survivors[turn++ % survivors.Length];
                    inFlight.Add(Task.Run(async () =>
                    {
                        var sent = clock.Elapsed.TotalMilliseconds;
                        var (status, seq, text) = await PublishAsync(node, room, turn);
                        attempts[room].Enqueue(new Attempt(sent, clock.Elapsed.TotalMilliseconds, status, seq));
                        if (status != 202)
                            reasons.AddOrUpdate($"{status} {Code(text)}", 1, (_, c) => c + 1);
                    }));
                }
            }
        });

        await Task.Delay(TimeSpan.FromSeconds(o.Before));
        Process.GetProcessById(o.Pids[victim]).Kill(); // SIGKILL on Linux
        killedAtMs = clock.Elapsed.TotalMilliseconds;
        await output.WriteLineAsync($"killed node {victim + 1} at {killedAtMs / 1000:0.000} s");

        bool AllBack() => affected.All(room => attempts[room].Any(a => a.Status == 202 && a.SentMs > killedAtMs));
        var waited = Stopwatch.StartNew();
        while (!AllBack() && waited.Elapsed.TotalSeconds < o.GiveUp)
            await Task.Delay(50);
        // A little more publishing, so every room's flow after the failover is seen too.
        await Task.Delay(TimeSpan.FromSeconds(2));
        await stop.CancelAsync();
        await publishing;
        await Task.WhenAll(inFlight);
        foreach (var node in nodes)
            node.Dispose();

        var perRoom = rooms.Select(room =>
        {
            var all = attempts[room].OrderBy(a => a.AnsweredMs).ToArray();
            var firstBack = all.Where(a => a.Status == 202 && a.SentMs > killedAtMs).Select(a => (double?)a.AnsweredMs).FirstOrDefault();
            var firstSent = all.Where(a => a.Status == 202 && a.SentMs > killedAtMs).Select(a => (double?)a.SentMs).FirstOrDefault();
            // The longest time a request sent during the run waited for an accepted one: sent at t, the next 202 answered after t.
            var accepts = all.Where(a => a.Status == 202).Select(a => a.AnsweredMs).ToArray();
            var longest = all.Select(a => accepts.Where(t => t >= a.SentMs).DefaultIfEmpty(double.NaN).Min() - a.SentMs).Where(w => !double.IsNaN(w))
                .DefaultIfEmpty(0).Max();
            var seqs = all.Where(a => a.Seq is not null).Select(a => a.Seq!.Value).ToArray();
            return new RoomOutcome(room, affected.Contains(room), firstBack - killedAtMs, firstSent - killedAtMs,
                all.Count(a => a.Status == 202), all.Count(a => a.Status is not 202 and > 0), all.Count(a => a.Status == 0),
                Math.Round(longest, 1), seqs.Length - seqs.Distinct().Count());
        }).ToArray();
        var back = perRoom.Where(r => r.Affected).Select(r => r.BackAfterMs).ToArray();
        var failover = back.Length > 0 && back.All(b => b is not null) ? back.Max() : null;
        var sorted = back.Where(b => b is not null).Select(b => b!.Value).Order().ToArray();
        return new FailoverResult(nodes.Length, victim + 1, affected.Count, rooms.Length, o.IntervalMs,
            failover is { } f ? Math.Round(f, 0) : null, sorted.Length > 0 ? Math.Round(sorted[sorted.Length / 2], 0) : null,
            perRoom.Where(r => !r.Affected).Select(r => r.LongestWaitForAcceptMs).DefaultIfEmpty(0).Max(),
            perRoom.Sum(r => r.Accepted), perRoom.Sum(r => r.Refused), perRoom.Sum(r => r.Failed), perRoom.Sum(r => r.DuplicateSeqs),
            reasons.ToDictionary(), perRoom);
    }

    /// <summary>One event; (status, the seq of a 202, the body). Status 0: no answer (connection failed or client timeout).</summary>
    private static async Task<(int Status, long? Seq, string Text)> PublishAsync(HttpClient node, string room, int n)
    {
        try
        {
            using var content = new StringContent("{\"type\":\"leaderboard_update\",\"data\":{\"n\":" + n.ToString(CultureInfo.InvariantCulture) + "}}", Encoding.UTF8, "application/json");
            using var response = await node.PostAsync($"/api/rooms/{room}/events", content);
            var text = await response.Content.ReadAsStringAsync();
            long? seq = null;
            if (response.StatusCode == HttpStatusCode.Accepted)
            {
                using var json = JsonDocument.Parse(text);
                seq = json.RootElement.TryGetProperty("seq", out var s) ? s.GetInt64() : null;
            }
            return ((int)response.StatusCode, seq, text);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return (0, null, e.GetType().Name);
        }
    }

    private static string Code(string text)
    {
        try
        {
            using var json = JsonDocument.Parse(text);
            return json.RootElement.GetProperty("error").GetProperty("code").GetString() ?? text;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return text.Length > 60 ? text[..60] : text;
        }
    }

    public static string Format(FailoverResult r)
    {
        var s = new StringBuilder();
        void Row(string name, string value) => s.AppendLine(CultureInfo.InvariantCulture, $"  {name,-34} {value}");
        string Ms(double? v) => v is { } x ? (x / 1000).ToString("0.00", CultureInfo.InvariantCulture) + " s" : "never";
        s.AppendLine("Failover");
        Row("nodes", $"{r.Nodes}; killed node {r.VictimNode} (kill -9), which hosted {r.VictimRooms} of {r.Rooms} rooms");
        Row("publishing", $"through the survivors, a new request to each room every {r.IntervalMs} ms");
        Row("failover time (last affected room)", $"{Ms(r.FailoverMs)} from the kill to its first 202 of a request sent after the kill (median room {Ms(r.FailoverMedianMs)})");
        foreach (var room in r.PerRoom.Where(x => x.Affected))
            Row($"  {room.Room}", $"back after {Ms(room.BackAfterMs)} (that request sent {Ms(room.FirstSentAfterKillMs)} after the kill); {room.Accepted} accepted, {room.Refused} refused");
        Row("unaffected rooms", $"longest wait from a request to an accepted one: {Ms(r.UnaffectedLongestWaitMs)}");
        Row("requests", $"{r.Accepted} accepted, {r.Refused} refused ({string.Join(", ", r.RefusalReasons.Select(x => $"{x.Value} x {x.Key}"))}), {r.Failed} without an answer");
        Row("seqs handed out twice", r.DuplicateSeqs.ToString(CultureInfo.InvariantCulture));
        return s.ToString();
    }
}
