using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace TradeRoom.LoadTest;

/// <summary>
/// Issue 13's evidence of where a connection's memory and a delivery's CPU go, for bench/run.sh's density-gcdump and
/// fanout-perf scenarios: <c>gcdump-diff</c> turns two <c>dotnet-gcdump report</c>s (idle, then with N connections
/// held) into bytes per connection by type and bucket; <c>perf-summary</c> turns <c>perf script</c> output into CPU by
/// library and by bucket, and the top inclusive managed frames. The page's "Where the memory goes" and "Where the CPU
/// goes" sections (<see cref="EvidenceSections"/>) are written from their JSON.
/// </summary>
internal static partial class ProfileEvidence
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public sealed record Share(string Name, double Value);

    public sealed record TypeDelta(string Type, string Bucket, double BytesPerConnection, double CountPerConnection);

    public sealed record MemoryEvidence
    {
        public required string Server { get; init; }
        public required string Command { get; init; }
        public required DateTime RunAtUtc { get; init; }
        public required int Connections { get; init; }
        public required long HeapBytesIdle { get; init; }
        public required long HeapBytesHeld { get; init; }
        /// <summary>Live managed bytes per connection: the GC heap's growth between the two dumps (each after a full GC).</summary>
        public required double LiveBytesPerConnection { get; init; }
        /// <summary>The same from the report's type rows (object size × count): what the buckets below add up to.</summary>
        public required double TypeBytesPerConnection { get; init; }
        /// <summary>Resident memory per connection just before the second dump's full GC (what density measures).</summary>
        public double? RssKiBPerConnection { get; init; }
        /// <summary>The same just after it: what a full GC gives back is garbage and GC slack, the rest live or native.</summary>
        public double? RssKiBPerConnectionAfterGc { get; init; }
        public required IReadOnlyList<Share> Buckets { get; init; }
        public required IReadOnlyList<TypeDelta> Types { get; init; }
    }

    public sealed record Frame(string Symbol, string Dso);

    public sealed record FrameShare(string Frame, string Bucket, double Percent);

    public sealed record CpuEvidence
    {
        public required string Server { get; init; }
        public required string Command { get; init; }
        public required DateTime RunAtUtc { get; init; }
        public required int Samples { get; init; }
        /// <summary>The server's CPU per delivery in the profiled run (perf's own overhead included), to turn shares into µs.</summary>
        public double? ServerCpuMicrosecondsPerDelivery { get; init; }
        public double? DeliveriesPerSecond { get; init; }
        public required IReadOnlyList<Share> Libraries { get; init; }
        public required IReadOnlyList<Share> Buckets { get; init; }
        public required IReadOnlyList<FrameShare> TopManagedFrames { get; init; }
        /// <summary>The runtime's own counters over the window (dotnet-counters, System.Runtime): seconds covered, GC pause and JIT time.</summary>
        public RuntimeCounters? Runtime { get; init; }
    }

    public sealed record RuntimeCounters(int Seconds, double GcPauseSeconds, double JitSeconds, IReadOnlyList<Share> Collections);

    // ---- memory: dotnet-gcdump report ----

    /// <summary>One type row of <c>dotnet-gcdump report</c>: object size, count, type (with a "(Bytes > 10K)" size class), [module].</summary>
    [GeneratedRegex(@"^\s+([\d,]+)\s+([\d,]+)\s+(.*?)(?:\s+\(Bytes > [\dKM]+\))?\s+\[(.*)\]\s*$")]
    private static partial Regex TypeRow();

    [GeneratedRegex(@"^\s*([\d,]+)\s+GC Heap bytes")]
    private static partial Regex HeapBytesRow();

    /// <summary>The heap's total bytes and, per type (its size classes summed), bytes and count.</summary>
    public static (long HeapBytes, Dictionary<string, (long Bytes, long Count, string Module)> Types) ParseGcDumpReport(IEnumerable<string> lines)
    {
        long heap = 0;
        var types = new Dictionary<string, (long Bytes, long Count, string Module)>(StringComparer.Ordinal);
        foreach (var line in lines)
        {
            if (HeapBytesRow().Match(line) is { Success: true } h)
            {
                heap = Number(h.Groups[1].Value);
                continue;
            }
            if (TypeRow().Match(line) is not { Success: true } m)
                continue;
            // The first column is the size of one object of the type (of its size class); the row holds count of them.
            var type = m.Groups[3].Value;
            var count = Number(m.Groups[2].Value);
            types.TryGetValue(type, out var sum);
            types[type] = (sum.Bytes + Number(m.Groups[1].Value) * count, sum.Count + count, m.Groups[4].Value);
        }
        return (heap, types);
        static long Number(string s) => long.Parse(s.Replace(",", "", StringComparison.Ordinal), CultureInfo.InvariantCulture);
    }

    // First match wins. A state machine box or a collection is named with the types it holds: our own names come first
    // so that a box around our transport's loop counts as ours, not as the Kestrel or Akka type beside it.
    private static readonly (string Bucket, string[] Patterns)[] MemoryBuckets =
    [
        ("the reference server's own (rooms, send queues)", ["TradeRoom.BenchReference", "[TradeRoom.BenchReference.dll]"]),
        ("our transport (TradeRoom.Transport, the connection bridge)", ["TradeRoom.Transport.", "TradeRoom.Server.WebSockets.", "[TradeRoom.Transport.dll]",
            "[TradeRoom.Server.dll]"]),
        ("our actors and rooms (TradeRoom.Actors)", ["TradeRoom."]),
        ("WebSocket (System.Net.WebSockets)", ["System.Net.WebSockets.", "[System.Net.WebSockets.dll]"]),
        ("Kestrel (connection, HTTP upgrade, sockets, pipes)", ["Microsoft.AspNetCore.", "System.IO.Pipelines.", "System.Net.Sockets.",
            "[System.IO.Pipelines.dll]", "[System.Net.Sockets.dll]"]),
        ("timers (Akka scheduler, System.Threading timers)", ["TimerQueueTimer", "System.Threading.Timer", "SchedulerRegistration", "Akka.Actor.Cancelable",
            "Akka.Actor.Scheduler", "HashedWheelTimer", "ScheduledTell"]),
        ("logging scopes (Microsoft.Extensions.Logging)", ["[Microsoft.Extensions.Logging"]),
        // FullActorState: an actor's watching and watchedBy sets (the connection manager's per-user HashSet<IActorRef> counts here too).
        ("Akka DeathWatch (FullActorState: watching, watchedBy)", ["Akka.Actor.FullActorState", "Akka.Actor.IActorRef,Akka.Util.Option", "HashSet<Akka.Actor.IActorRef>",
            "Entry<Akka.Actor.IActorRef>[]", "Stack<Akka.Actor.Receive>"]),
        ("Akka actor cell, mailbox, props, path", ["Akka.", "[Akka.dll]"]),
    ];

    /// <summary>The bucket of a type, by its name and then by its module (a nested type's name alone says little).</summary>
    public static string MemoryBucket(string type, string module)
    {
        var named = $"{type} [{module}]";
        foreach (var (bucket, patterns) in MemoryBuckets)
        {
            if (patterns.Any(p => named.Contains(p, StringComparison.Ordinal)))
                return bucket;
        }
        return "other (CoreLib: cancellation sources, tasks, strings, locks, arrays)";
    }

    public static MemoryEvidence DiffHeaps((long HeapBytes, Dictionary<string, (long Bytes, long Count, string Module)> Types) idle,
        (long HeapBytes, Dictionary<string, (long Bytes, long Count, string Module)> Types) held, int connections, string server, string command, DateTime runAtUtc,
        double? rssKiBPerConnection, double? rssKiBPerConnectionAfterGc, int top = 20)
    {
        var deltas = held.Types.Keys.Union(idle.Types.Keys)
            .Select(t =>
            {
                idle.Types.TryGetValue(t, out var a);
                held.Types.TryGetValue(t, out var b);
                return new TypeDelta(t, MemoryBucket(t, b.Module ?? a.Module ?? ""), Math.Round((b.Bytes - a.Bytes) / (double)connections, 1), Math.Round((b.Count - a.Count) / (double)connections, 2));
            })
            .ToList();
        var buckets = deltas.GroupBy(d => d.Bucket).Select(g => new Share(g.Key, Math.Round(g.Sum(d => d.BytesPerConnection), 0)))
            .OrderByDescending(b => b.Value).ToList();
        return new MemoryEvidence
        {
            Server = server,
            Command = command,
            RunAtUtc = runAtUtc,
            Connections = connections,
            HeapBytesIdle = idle.HeapBytes,
            HeapBytesHeld = held.HeapBytes,
            LiveBytesPerConnection = Math.Round((held.HeapBytes - idle.HeapBytes) / (double)connections, 0),
            TypeBytesPerConnection = Math.Round(deltas.Sum(d => d.BytesPerConnection), 0),
            RssKiBPerConnection = rssKiBPerConnection,
            RssKiBPerConnectionAfterGc = rssKiBPerConnectionAfterGc,
            Buckets = buckets,
            Types = deltas.OrderByDescending(d => d.BytesPerConnection).Take(top).ToList(),
        };
    }

    // ---- CPU: perf script ----

    /// <summary>A frame line of <c>perf script</c>: address, symbol (which may hold spaces), (dso).</summary>
    [GeneratedRegex(@"^\s+[0-9a-f]+\s+(.*)\s+\((.*)\)\s*$")]
    private static partial Regex FrameLine();

    /// <summary>The samples of <c>perf script -F comm,tid,ip,sym,dso</c> (with -g): each a stack, leaf first.</summary>
    public static List<List<Frame>> ParsePerfScript(IEnumerable<string> lines)
    {
        var samples = new List<List<Frame>>();
        List<Frame>? current = null;
        foreach (var line in lines)
        {
            if (FrameLine().Match(line) is { Success: true } m)
            {
                current ??= [];
                current.Add(new Frame(m.Groups[1].Value.Trim(), m.Groups[2].Value));
            }
            else if (current is not null)
            {
                // A blank line or the next sample's header ends the stack.
                samples.Add(current);
                current = null;
            }
        }
        if (current is not null)
            samples.Add(current);
        return samples;
    }

    private static bool IsKernel(Frame f) => f.Dso == "[kernel.kallsyms]";
    private static bool IsManaged(Frame f) => f.Dso.Contains("perf-", StringComparison.Ordinal) && f.Dso.EndsWith(".map", StringComparison.Ordinal)
                                              || f.Dso.EndsWith(".dll", StringComparison.Ordinal);

    // Kernel entry points by name, checked as the stack is walked from the leaf: over loopback the receiver's TCP work
    // runs inside the sender's send call, so it counts as sending.
    private static readonly string[] KernelSend = ["__sys_sendto", "__sys_sendmsg", "__x64_sys_sendto", "__x64_sys_sendmsg", "__x64_sys_write", "__x64_sys_writev",
        "sock_sendmsg", "tcp_sendmsg", "sock_write_iter"];
    private static readonly string[] KernelReceive = ["__sys_recvfrom", "__sys_recvmsg", "__x64_sys_recvfrom", "__x64_sys_recvmsg", "__x64_sys_read", "__x64_sys_readv",
        "sock_recvmsg", "tcp_recvmsg", "sock_read_iter", "do_epoll_wait", "__x64_sys_epoll_wait", "ep_poll"];

    // A managed frame by its method's own name (its arguments and return type name other types); a dynamic method's is
    // no guide: perf maps it by address, and a collected one's address is reused.
    private static bool Managed(Frame f, params string[] prefixes) =>
        IsManaged(f) && MethodName(f) is var name && !name.StartsWith("dynamicClass::", StringComparison.Ordinal) &&
        prefixes.Any(p => name.StartsWith(p, StringComparison.Ordinal));

    private static readonly (string Bucket, Func<Frame, bool> Match)[] CpuRules =
    [
        ("kernel: network send (loopback receive included)", f => IsKernel(f) && KernelSend.Contains(f.Symbol)),
        ("kernel: network receive and epoll", f => IsKernel(f) && KernelReceive.Contains(f.Symbol)),
        ("GC", f => f.Dso.Contains("libcoreclr", StringComparison.Ordinal) &&
                    (f.Symbol.Contains("WKS::", StringComparison.Ordinal) || f.Symbol.Contains("SVR::", StringComparison.Ordinal) ||
                     f.Symbol.Contains("gc_heap", StringComparison.Ordinal) || f.Symbol.Contains("GCHeap", StringComparison.Ordinal))),
        ("JIT", f => f.Dso.Contains("libclrjit", StringComparison.Ordinal)),
        // Without the runtime's symbols perf cannot tell its GC from its other native code: then this holds both.
        ("runtime native (libcoreclr: GC, allocation, casts, stubs)", f => f.Dso.Contains("libcoreclr", StringComparison.Ordinal)),
        ("JSON and frames (System.Text.Json, TradeRoom.Protocol)", f => Managed(f, "System.Text.Json", "TradeRoom.Protocol")),
        ("the reference server's own (rooms, send loops)", f => Managed(f, "TradeRoom.BenchReference")),
        ("our transport (TradeRoom.Transport, the connection bridge)", f => Managed(f, "TradeRoom.Transport", "TradeRoom.Server.WebSockets")),
        ("our actors and rooms (TradeRoom.Actors)", f => Managed(f, "TradeRoom.")),
        ("Akka dispatch (mailbox, actor cell, dispatcher)", f => Managed(f, "Akka.")),
        ("Kestrel, WebSockets, sockets, pipes (managed)", f => Managed(f, "Microsoft.AspNetCore", "System.Net.", "System.IO.Pipelines")),
    ];

    /// <summary>
    /// The bucket of one sample: the first frame from the leaf up that a rule names (so a memcpy inside a JSON writer is
    /// JSON, and a socket send called from our transport is the kernel's); else the kernel's or the runtime's by the leaf.
    /// </summary>
    public static string CpuBucket(IReadOnlyList<Frame> stack)
    {
        foreach (var frame in stack)
        {
            foreach (var (bucket, match) in CpuRules)
            {
                if (match(frame))
                    return bucket;
            }
        }
        if (stack.Count > 0 && IsKernel(stack[0]))
            return "kernel: other (scheduling, page faults, futex)";
        return "other (thread pool, runtime, CoreLib)";
    }

    /// <summary>A library's readable name: JIT-compiled code is in the perf map.</summary>
    public static string Library(string dso) =>
        dso.Contains("perf-", StringComparison.Ordinal) && dso.EndsWith(".map", StringComparison.Ordinal) ? "JIT-compiled managed code (perf map)"
        : dso == "[kernel.kallsyms]" ? "kernel"
        : dso == "[unknown]" ? "unknown"
        : Path.GetFileName(dso);

    /// <summary>
    /// A managed frame's method, <c>Namespace.Type::Method</c>: the perf map names it with its return type, module,
    /// arguments and tier (<c>instance void [Akka] Akka.Dispatch.Mailbox::Execute()[OptimizedTier1]</c>). A frame of
    /// precompiled (ReadyToRun) code perf cannot name is its assembly's file name.
    /// </summary>
    public static string MethodName(Frame frame)
    {
        if (frame.Symbol == "[unknown]")
            return Path.GetFileName(frame.Dso);
        var s = frame.Symbol;
        var paren = s.IndexOf('(', StringComparison.Ordinal);
        if (paren > 0)
            s = s[..paren];
        return s[(s.LastIndexOf(' ') + 1)..];
    }

    private static string Short(string name) => name.Length > 110 ? name[..110] + "…" : name;

    public static CpuEvidence SummarizePerf(IReadOnlyList<List<Frame>> samples, string server, string command, DateTime runAtUtc,
        double? serverCpuMicrosecondsPerDelivery, int top = 20)
    {
        double Percent(int n) => samples.Count == 0 ? 0 : Math.Round(100.0 * n / samples.Count, 1);
        var libraries = samples.Where(s => s.Count > 0).GroupBy(s => Library(s[0].Dso))
            .Select(g => new Share(g.Key, Percent(g.Count()))).OrderByDescending(x => x.Value).Take(12).ToList();
        var buckets = samples.GroupBy(CpuBucket).Select(g => new Share(g.Key, Percent(g.Count()))).OrderByDescending(x => x.Value).ToList();
        var inclusive = new Dictionary<string, (int Count, Frame Frame)>(StringComparer.Ordinal);
        foreach (var stack in samples)
        {
            foreach (var frame in stack.Where(f => IsManaged(f) && f.Symbol != "[unknown]").DistinctBy(MethodName))
            {
                var name = MethodName(frame);
                inclusive[name] = (inclusive.TryGetValue(name, out var c) ? c.Count + 1 : 1, frame);
            }
        }
        var frames = inclusive.OrderByDescending(x => x.Value.Count).Take(top)
            .Select(x => new FrameShare(Short(x.Key), x.Key.StartsWith("dynamicClass::", StringComparison.Ordinal)
                ? "dynamic method (its name in the perf map may be a collected one's)" : CpuBucket([x.Value.Frame]), Percent(x.Value.Count))).ToList();
        return new CpuEvidence
        {
            Server = server,
            Command = command,
            RunAtUtc = runAtUtc,
            Samples = samples.Count,
            ServerCpuMicrosecondsPerDelivery = serverCpuMicrosecondsPerDelivery,
            Libraries = libraries,
            Buckets = buckets,
            TopManagedFrames = frames,
        };
    }

    /// <summary>
    /// The GC pause time, JIT time and collections by generation from <c>dotnet-counters collect --format csv
    /// --refresh-interval 1</c>: each rate row is one interval's increment, so they are summed.
    /// </summary>
    public static RuntimeCounters ParseCounters(IEnumerable<string> lines)
    {
        double pause = 0, jit = 0;
        var intervals = new HashSet<string>(StringComparer.Ordinal);
        var collections = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var line in lines)
        {
            var fields = line.Split(',');
            if (fields.Length < 5 || fields[3] != "Rate" || !double.TryParse(fields[4], NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
                continue;
            var counter = fields[2];
            if (counter.StartsWith("dotnet.gc.pause.time", StringComparison.Ordinal))
            {
                pause += value;
                intervals.Add(fields[0]);
            }
            else if (counter.StartsWith("dotnet.jit.compilation.time", StringComparison.Ordinal))
            {
                jit += value;
            }
            else if (counter.StartsWith("dotnet.gc.collections", StringComparison.Ordinal) && counter.IndexOf("generation=", StringComparison.Ordinal) is var g and > 0)
            {
                var generation = counter[(g + "generation=".Length)..].TrimEnd(']');
                collections[generation] = collections.GetValueOrDefault(generation) + value;
            }
        }
        return new RuntimeCounters(intervals.Count, Math.Round(pause, 4), Math.Round(jit, 4),
            collections.OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => new Share(c.Key, c.Value)).ToList());
    }

    // ---- command line ----

    /// <summary>
    /// <c>gcdump-diff --idle R --held R --load-test J --server NAME --command C [--rss-kib IDLE HELD AFTER] --json OUT</c>, or
    /// <c>perf-summary --script S --load-test J --server NAME --command C --json OUT</c>.
    /// </summary>
    public static async Task<int> RunAsync(string[] args, TextWriter output)
    {
        string? idle = null, held = null, script = null, counters = null, loadTest = null, server = null, command = null, json = null;
        double[]? rss = null;
        try
        {
            var a = new ArgReader(args[1..]);
            while (a.Next())
            {
                switch (a.Name)
                {
                    case "--idle": idle = a.Value(); break;
                    case "--held": held = a.Value(); break;
                    case "--script": script = a.Value(); break;
                    case "--counters": counters = a.Value(); break;
                    case "--load-test": loadTest = a.Value(); break;
                    case "--server": server = a.Value(); break;
                    case "--command": command = a.Value(); break;
                    case "--json": json = a.Value(); break;
                    case "--rss-kib": rss = [a.Positive(), a.Positive(), a.Positive()]; break;
                    default: throw new ArgumentException($"unknown option {a.Name}");
                }
            }
            if (server is null || command is null || json is null || loadTest is null)
                throw new ArgumentException("--server, --command, --load-test and --json are required");
            if (args[0] == "gcdump-diff" && (idle is null || held is null))
                throw new ArgumentException("gcdump-diff needs --idle and --held");
            if (args[0] == "perf-summary" && script is null)
                throw new ArgumentException("perf-summary needs --script");
        }
        catch (ArgumentException e)
        {
            await output.WriteLineAsync($"error: {e.Message}");
            return 2;
        }

        // Only two figures of the load tester's result are needed: read them alone, whatever else the result holds.
        int opened = 0;
        double? cpuPerDelivery = null, deliveriesPerSecond = null;
        if (File.Exists(loadTest))
        {
            using var result = JsonDocument.Parse(await File.ReadAllTextAsync(loadTest));
            if (result.RootElement.TryGetProperty("connectionsOpened", out var o))
                opened = o.GetInt32();
            if (result.RootElement.TryGetProperty("serverCpuMicrosecondsPerDelivery", out var c) && c.ValueKind == JsonValueKind.Number)
                cpuPerDelivery = c.GetDouble();
            if (result.RootElement.TryGetProperty("deliveriesPerSecond", out var d) && d.ValueKind == JsonValueKind.Number)
                deliveriesPerSecond = d.GetDouble();
        }
        var at = File.GetLastWriteTimeUtc(File.Exists(loadTest) ? loadTest : (held ?? script)!);
        if (args[0] == "gcdump-diff")
        {
            if (opened == 0)
            {
                await output.WriteLineAsync($"error: no connections opened in {loadTest}");
                return 1;
            }
            var n = opened;
            double? PerConnection(double fromKiB, double toKiB) => Math.Round((toKiB - fromKiB) / n, 2);
            var evidence = DiffHeaps(ParseGcDumpReport(await File.ReadAllLinesAsync(idle!)), ParseGcDumpReport(await File.ReadAllLinesAsync(held!)), n,
                server!, command!, at, rss is null ? null : PerConnection(rss[0], rss[1]), rss is null ? null : PerConnection(rss[0], rss[2]));
            await File.WriteAllTextAsync(json!, JsonSerializer.Serialize(evidence, Json));
            await output.WriteLineAsync(FormatMemory(evidence));
        }
        else
        {
            var evidence = SummarizePerf(ParsePerfScript(File.ReadLines(script!)), server!, command!, at, cpuPerDelivery);
            if (counters is not null && File.Exists(counters))
                evidence = evidence with { Runtime = ParseCounters(File.ReadLines(counters)) };
            evidence = evidence with { DeliveriesPerSecond = deliveriesPerSecond };
            await File.WriteAllTextAsync(json!, JsonSerializer.Serialize(evidence, Json));
            await output.WriteLineAsync(FormatCpu(evidence));
        }
        return 0;
    }

    private static string F(double? v, string format = "0.0") => v is { } x ? x.ToString(format, CultureInfo.InvariantCulture) : "–";

    public static string FormatMemory(MemoryEvidence e)
    {
        var s = new StringBuilder();
        s.AppendLine(CultureInfo.InvariantCulture, $"{e.Server}: {e.Connections:N0} connections; live managed {e.LiveBytesPerConnection:N0} B per connection " +
                                                   $"({e.TypeBytesPerConnection:N0} B in the type rows); " +
                                                   $"RSS {F(e.RssKiBPerConnection, "0.00")} KiB per connection, {F(e.RssKiBPerConnectionAfterGc, "0.00")} KiB after a full GC");
        foreach (var b in e.Buckets)
            s.AppendLine(CultureInfo.InvariantCulture, $"  {b.Value,8:N0} B  {b.Name}");
        foreach (var t in e.Types)
            s.AppendLine(CultureInfo.InvariantCulture, $"  {t.BytesPerConnection,8:N1} B  {t.CountPerConnection,5:0.00}×  {t.Type}");
        return s.ToString().TrimEnd();
    }

    public static string FormatCpu(CpuEvidence e)
    {
        var s = new StringBuilder();
        s.AppendLine(CultureInfo.InvariantCulture, $"{e.Server}: {e.Samples:N0} samples; {F(e.ServerCpuMicrosecondsPerDelivery, "0.00")} µs server CPU per delivery");
        if (e.Runtime is { } rt)
            s.AppendLine(CultureInfo.InvariantCulture, $"  runtime over {rt.Seconds} s: GC pause {rt.GcPauseSeconds * 1000:0.0} ms, JIT {rt.JitSeconds * 1000:0.0} ms, " +
                                                       $"collections {string.Join(", ", rt.Collections.Select(c => $"{c.Name} {c.Value:0}"))}");
        foreach (var b in e.Buckets)
            s.AppendLine(CultureInfo.InvariantCulture, $"  {b.Value,5:0.0}%  {b.Name}");
        s.AppendLine("  by library (self):");
        foreach (var l in e.Libraries)
            s.AppendLine(CultureInfo.InvariantCulture, $"  {l.Value,5:0.0}%  {l.Name}");
        s.AppendLine("  top managed frames (inclusive):");
        foreach (var f in e.TopManagedFrames)
            s.AppendLine(CultureInfo.InvariantCulture, $"  {f.Percent,5:0.0}%  {f.Frame}");
        return s.ToString().TrimEnd();
    }
}

/// <summary>The page's sections from the evidence bench/run.sh wrote to RESULTS/evidence (project-*.json, reference-*.json).</summary>
internal static class EvidenceSections
{
    public const string MemoryHeading = "## Where the memory goes";
    public const string CpuHeading = "## Where the CPU goes";
    public const string MemoryAnchor = "#where-the-memory-goes";
    public const string CpuAnchor = "#where-the-cpu-goes";
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private static T? Load<T>(string dir, string name) where T : class
    {
        var path = Path.Combine(dir, "evidence", name + ".json");
        return File.Exists(path) ? JsonSerializer.Deserialize<T>(File.ReadAllText(path), Json) : null;
    }

    private static string F(double? v, string format) => v is { } x ? x.ToString(format, CultureInfo.InvariantCulture) : "–";

    private static string When(DateTime? at) => at is { } t ? t.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture) + " UTC" : "–";

    /// <summary>Bucket rows, project beside reference, in the project's order and then the reference's own.</summary>
    private static void Buckets(StringBuilder s, IReadOnlyList<ProfileEvidence.Share>? project, IReadOnlyList<ProfileEvidence.Share>? reference,
        Func<double?, string> format)
    {
        var names = (project ?? []).Select(b => b.Name).Concat((reference ?? []).Select(b => b.Name)).Distinct();
        foreach (var name in names)
        {
            double? Of(IReadOnlyList<ProfileEvidence.Share>? shares) => shares?.FirstOrDefault(b => b.Name == name)?.Value;
            s.AppendLine($"| {name} | {format(Of(project))} | {format(Of(reference))} |");
        }
    }

    public static string? Memory(string dir)
    {
        var p = Load<ProfileEvidence.MemoryEvidence>(dir, "project-gcdump");
        var r = Load<ProfileEvidence.MemoryEvidence>(dir, "reference-gcdump");
        if (p is null && r is null)
            return null;
        var any = p ?? r!;
        var s = new StringBuilder();
        s.AppendLine(MemoryHeading);
        s.AppendLine();
        s.AppendLine($"Measured by `{any.Command}`: project run {When(p?.RunAtUtc)}, reference run {When(r?.RunAtUtc)}. On a fresh server of each, a");
        s.AppendLine($"`dotnet-gcdump` idle, then {any.Connections:N0} idle subscribed connections and a second gcdump while they are held. A gcdump");
        s.AppendLine("forces a full, compacting GC, which is why this runs on servers of its own and not within density. Live managed bytes");
        s.AppendLine("are the GC heap's growth between the two dumps; resident memory (RSS, `/proc/PID/status`) is read just before the");
        s.AppendLine("second dump's GC and just after it. RSS above the live bytes is GC slack (garbage not yet collected, the gen0 budget,");
        s.AppendLine("free space in the heap's regions) and native memory (the runtime's own, thread stacks, socket handles); what the full GC");
        s.AppendLine("gives back is the slack. The kernel's socket buffers are not in RSS.");
        s.AppendLine();
        s.AppendLine("| per connection | project | reference |");
        s.AppendLine("|---|---|---|");
        s.AppendLine($"| live managed bytes (GC heap growth) | {F(p?.LiveBytesPerConnection, "N0")} B | {F(r?.LiveBytesPerConnection, "N0")} B |");
        s.AppendLine($"| resident memory, before the dump's full GC | {F(p?.RssKiBPerConnection, "0.00")} KiB | {F(r?.RssKiBPerConnection, "0.00")} KiB |");
        s.AppendLine($"| resident memory, after it | {F(p?.RssKiBPerConnectionAfterGc, "0.00")} KiB | {F(r?.RssKiBPerConnectionAfterGc, "0.00")} KiB |");
        static double? Gap(ProfileEvidence.MemoryEvidence? e) => e?.RssKiBPerConnection is { } rss ? rss - e.LiveBytesPerConnection / 1024 : null;
        s.AppendLine($"| RSS not explained by live managed bytes (GC slack and native), before the GC | {F(Gap(p), "0.00")} KiB | {F(Gap(r), "0.00")} KiB |");
        s.AppendLine();
        s.AppendLine("By bucket, bytes per connection (from the types of `dotnet-gcdump report`: object size × count, held minus idle; their");
        s.AppendLine($"total, project {F(p?.TypeBytesPerConnection, "N0")} B and reference {F(r?.TypeBytesPerConnection, "N0")} B, is a little below the heap's growth):");
        s.AppendLine();
        s.AppendLine("| bucket | project B | reference B |");
        s.AppendLine("|---|---|---|");
        Buckets(s, p?.Buckets, r?.Buckets, v => F(v, "N0"));
        s.AppendLine();
        foreach (var (label, e) in new[] { ("project", p), ("reference", r) })
        {
            if (e is null)
                continue;
            s.AppendLine($"The {label}'s top {e.Types.Count} types, per connection:");
            s.AppendLine();
            s.AppendLine("| bytes | objects | type | bucket |");
            s.AppendLine("|---|---|---|---|");
            foreach (var t in e.Types)
                s.AppendLine($"| {F(t.BytesPerConnection, "N0")} | {F(t.CountPerConnection, "0.00")} | `{t.Type}` | {t.Bucket} |");
            s.AppendLine();
        }
        return s.ToString();
    }

    public static string? Cpu(string dir)
    {
        var p = Load<ProfileEvidence.CpuEvidence>(dir, "project-perf");
        var r = Load<ProfileEvidence.CpuEvidence>(dir, "reference-perf");
        if (p is null && r is null)
            return null;
        var any = p ?? r!;
        var s = new StringBuilder();
        s.AppendLine(CpuHeading);
        s.AppendLine();
        s.AppendLine($"Measured by `{any.Command}`: project run {When(p?.RunAtUtc)} ({p?.Samples ?? 0:N0} samples), reference run {When(r?.RunAtUtc)} " +
                     $"({r?.Samples ?? 0:N0} samples).");
        s.AppendLine("Each server runs with a perf map (`DOTNET_PerfMapEnabled=1`, `DOTNET_EnableWriteXorExecute=0`) so that perf names");
        s.AppendLine("JIT-compiled frames; these runs are not the fanout rows above. A sample counts in the bucket of the first frame, from the");
        s.AppendLine("leaf up, that names one: a copy inside the JSON writer is JSON, a socket send called from the transport is the kernel's");
        s.AppendLine("(over loopback the receiver's TCP work runs inside the sender's send call, so it counts there too). µs per delivery is");
        s.AppendLine("the share times the server's CPU per delivery in the profiled run (profiling included). User stacks end in libc, which");
        s.AppendLine("has no frame pointers, so a managed frame's inclusive share below leaves out the kernel time of the calls it makes.");
        s.AppendLine();
        // perf cannot tell the GC from the runtime's other native code without its symbols: the runtime's own counters say
        // how often it collected and for how long the process was paused. Both times are wall time (a preempted thread's
        // included), so on a loaded machine they exceed the CPU the GC and the JIT used.
        string Runtime(ProfileEvidence.CpuEvidence? e)
        {
            if (e?.Runtime is not { Seconds: > 0 } rt)
                return "–";
            var perDelivery = e.DeliveriesPerSecond is { } rate && rate > 0 ? rt.GcPauseSeconds / rt.Seconds / rate * 1e6 : (double?)null;
            return $"{string.Join(", ", rt.Collections.Select(c => $"{c.Name} {F(c.Value, "0")}"))} collections in {rt.Seconds} s, " +
                   $"paused {F(rt.GcPauseSeconds / rt.Seconds * 1000, "0")} ms per second ({F(perDelivery, "0.00")} µs per delivery); " +
                   $"JIT {F(rt.JitSeconds / rt.Seconds * 1000, "0")} ms per second";
        }
        s.AppendLine("The runtime's own counters over the same 10 s (`dotnet-counters collect --counters System.Runtime`), since perf cannot tell the");
        s.AppendLine("GC from the rest of `libcoreclr` without its symbols; pause and JIT times are wall time, so on a loaded machine they");
        s.AppendLine($"overstate CPU: project {Runtime(p)}; reference {Runtime(r)}.");
        s.AppendLine();
        s.AppendLine($"| bucket | project % (µs per delivery of {F(p?.ServerCpuMicrosecondsPerDelivery, "0.00")}) | reference % (µs per delivery of {F(r?.ServerCpuMicrosecondsPerDelivery, "0.00")}) |");
        s.AppendLine("|---|---|---|");
        string Share(double? percent, double? total) => percent is { } x ? $"{F(x, "0.0")}% ({F(total is { } t ? x * t / 100 : null, "0.00")})" : "–";
        var names = p?.Buckets.Select(b => b.Name).Concat(r?.Buckets.Select(b => b.Name) ?? []).Distinct() ?? r!.Buckets.Select(b => b.Name);
        foreach (var name in names)
        {
            s.AppendLine($"| {name} | {Share(p?.Buckets.FirstOrDefault(b => b.Name == name)?.Value, p?.ServerCpuMicrosecondsPerDelivery)} | " +
                         $"{Share(r?.Buckets.FirstOrDefault(b => b.Name == name)?.Value, r?.ServerCpuMicrosecondsPerDelivery)} |");
        }
        s.AppendLine();
        s.AppendLine("CPU by library (the sample's own frame, `perf report --sort dso`):");
        s.AppendLine();
        s.AppendLine("| library | project % | reference % |");
        s.AppendLine("|---|---|---|");
        Buckets(s, p?.Libraries, r?.Libraries, v => F(v, "0.0"));
        s.AppendLine();
        foreach (var (label, e) in new[] { ("project", p), ("reference", r) })
        {
            if (e is null)
                continue;
            s.AppendLine($"The {label}'s top {e.TopManagedFrames.Count} managed frames, inclusive (share of samples with the frame on the stack):");
            s.AppendLine();
            s.AppendLine("| % | frame | bucket |");
            s.AppendLine("|---|---|---|");
            foreach (var f in e.TopManagedFrames)
                s.AppendLine($"| {F(f.Percent, "0.0")} | `{f.Frame}` | {f.Bucket} |");
            s.AppendLine();
        }
        return s.ToString();
    }
}
