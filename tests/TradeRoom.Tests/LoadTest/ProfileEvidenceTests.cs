using System.Text.Json;
using TradeRoom.LoadTest;

namespace TradeRoom.Tests.LoadTest;

/// <summary>
/// bench/run.sh's density-gcdump and fanout-perf evidence: the load tester's gcdump-diff and perf-summary read the tools'
/// real output formats (lines as dotnet-gcdump 10.0, perf 6.1 and dotnet-counters 10.0 print them), and the page's
/// "Where the memory goes" / "Where the CPU goes" sections are written from what they produce.
/// </summary>
public sealed class ProfileEvidenceTests : IDisposable
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly string _dir = Directory.CreateTempSubdirectory("traderoom-evidence-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private const string IdleReport = """
              1,695,421  GC Heap bytes
                 24,973  GC Heap objects

           Object Bytes     Count  Type
                    288         1  System.IO.Pipelines.Pipe  [System.IO.Pipelines.dll]
                     48         3  Akka.Actor.FullActorState  [Akka.dll]
                    100         4  System.String  [System.Private.CoreLib.dll]
        """;

    // Two connections more than idle: the Pipe twice each, one of them in a size class of its own (summed with the
    // other row), one actor and its FullActorState each, and two more strings in all.
    private const string HeldReport = """
              1,716,021  GC Heap bytes
                 24,990  GC Heap objects

           Object Bytes     Count  Type
                    288         4  System.IO.Pipelines.Pipe  [System.IO.Pipelines.dll]
                    288         1  System.IO.Pipelines.Pipe (Bytes > 1K)  [System.IO.Pipelines.dll]
                    184         2  TradeRoom.Actors.Connections.ConnectionActor  [TradeRoom.Actors.dll]
                     48         5  Akka.Actor.FullActorState  [Akka.dll]
                    100         6  System.String  [System.Private.CoreLib.dll]
                    176         2  AsyncStateMachineBox<System.Threading.Tasks.VoidTaskResult,TradeRoom.Transport.WebSocketConnectionHandler+<OnConnectedAsync>d__5>  [System.Private.CoreLib.dll]
                     32         2  System.Threading.AsyncMutex  [System.Net.WebSockets.dll]
        """;

    // Four samples, leaf first: a send whose loopback receive runs inside it (the user stack ends in libc, as perf shows
    // it), the runtime's unsymbolized code under our actor, JSON under our actor, and a dynamic method under Akka.
    private const string PerfScript = """
        .NET TP Worker 31333 
        	ffffffff81e35126 sock_def_readable ([kernel.kallsyms])
        	ffffffff820369a2 tcp_v4_rcv ([kernel.kallsyms])
        	ffffffff82010ddb tcp_sendmsg ([kernel.kallsyms])
        	ffffffff81e31462 __sys_sendto ([kernel.kallsyms])
        	ffffffff81000130 entry_SYSCALL_64_after_hwframe ([kernel.kallsyms])
        	          10aba4 __send (/usr/lib/x86_64-linux-gnu/libc.so.6)

        .NET TP Worker 31334 
        	          5d4d85 [unknown] (/usr/share/dotnet/shared/Microsoft.NETCore.App/10.0.12/libcoreclr.so)
        	    7fe062922354 instance void [TradeRoom.Actors] TradeRoom.Actors.Rooms.RoomRelay::Deliver(class TradeRoom.Actors.Rooms.RoomEvent)[OptimizedTier1] (/tmp/perf-30827.map)
        	    7fe062523149 instance void [Akka] Akka.Dispatch.Mailbox::Execute()[OptimizedTier1] (/tmp/perf-30827.map)

        .NET TP Worker 31334 
        	    7fe062900000 instance void [System.Text.Json] System.Text.Json.Utf8JsonWriter::WriteStringValue(valuetype System.ReadOnlySpan`1<char>)[OptimizedTier1] (/tmp/perf-30827.map)
        	    7fe062922354 instance void [TradeRoom.Actors] TradeRoom.Actors.Rooms.RoomRelay::Deliver(class TradeRoom.Actors.Rooms.RoomEvent)[OptimizedTier1] (/tmp/perf-30827.map)
        	    7fe062523149 instance void [Akka] Akka.Dispatch.Mailbox::Execute()[OptimizedTier1] (/tmp/perf-30827.map)

        .NET TP Worker 31335 
        	    7fe05d3e5ebf object [System.Private.CoreLib] dynamicClass::InvokeStub_JsonPropertyInfo`1..ctor(object,System.Span`1 /* MT: 0x7fe05b74fe30 */<object>)[Optimized] (/tmp/perf-30827.map)
        	    7fe062523149 instance void [Akka] Akka.Dispatch.Mailbox::Execute()[OptimizedTier1] (/tmp/perf-30827.map)

        """;

    private const string Counters = """
        Timestamp,Provider,Counter Name,Counter Type,Mean/Increment
        11/27/2026 11:46:04,System.Runtime,dotnet.process.memory.working_set (By),Metric,60342272
        11/27/2026 11:46:05,System.Runtime,dotnet.gc.collections ({collection} / 1 sec)[gc.heap.generation=gen0],Rate,3
        11/27/2026 11:46:05,System.Runtime,dotnet.jit.compilation.time (s / 1 sec),Rate,0.002
        11/27/2026 11:46:05,System.Runtime,dotnet.gc.pause.time (s / 1 sec),Rate,0.004
        11/27/2026 11:46:06,System.Runtime,dotnet.gc.collections ({collection} / 1 sec)[gc.heap.generation=gen0],Rate,2
        11/27/2026 11:46:06,System.Runtime,dotnet.gc.collections ({collection} / 1 sec)[gc.heap.generation=gen1],Rate,1
        11/27/2026 11:46:06,System.Runtime,dotnet.gc.pause.time (s / 1 sec),Rate,0.006
        """;

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        return path;
    }

    private async Task<string> GcdumpDiffAsync(string server)
    {
        var loadTest = Write($"evidence/{server}-gcdump.load.json", """{"connectionsOpened": 2}""");
        var json = Path.Combine(_dir, "evidence", $"{server}-gcdump.json");
        var output = new StringWriter();
        var exit = await ProfileEvidence.RunAsync(["gcdump-diff", "--idle", Write("idle.types", IdleReport), "--held", Write("held.types", HeldReport),
            "--load-test", loadTest, "--rss-kib", "1000", "1040", "1030", "--server", server, "--command", "bash bench/run.sh density-gcdump", "--json", json], output);
        Assert.True(exit == 0, output.ToString());
        return json;
    }

    private async Task<string> PerfSummaryAsync(string server)
    {
        var loadTest = Write($"evidence/{server}-perf.load.json", """{"connectionsOpened": 10, "serverCpuMicrosecondsPerDelivery": 8.0, "deliveriesPerSecond": 100}""");
        var json = Path.Combine(_dir, "evidence", $"{server}-perf.json");
        var output = new StringWriter();
        var exit = await ProfileEvidence.RunAsync(["perf-summary", "--script", Write("perf.script", PerfScript),
            "--counters", Write("counters.csv", Counters), "--load-test", loadTest, "--server", server,
            "--command", "bash bench/run.sh fanout-perf", "--json", json], output);
        Assert.True(exit == 0, output.ToString());
        return json;
    }

    [Fact]
    public async Task A_gcdump_diff_gives_each_type_and_bucket_per_connection_beside_resident_memory()
    {
        var evidence = JsonSerializer.Deserialize<ProfileEvidence.MemoryEvidence>(await File.ReadAllTextAsync(await GcdumpDiffAsync("project")), Json)!;

        Assert.Equal(2, evidence.Connections);
        Assert.Equal((1_716_021 - 1_695_421) / 2.0, evidence.LiveBytesPerConnection);
        Assert.Equal(20.0, evidence.RssKiBPerConnection); // (1040 - 1000) KiB / 2
        Assert.Equal(15.0, evidence.RssKiBPerConnectionAfterGc);
        var pipe = Assert.Single(evidence.Types, t => t.Type == "System.IO.Pipelines.Pipe"); // both size classes, one row
        Assert.Equal(288 * (5 - 1) / 2.0, pipe.BytesPerConnection);
        Assert.Equal(2.0, pipe.CountPerConnection);
        Assert.Equal("System.IO.Pipelines.Pipe", evidence.Types[0].Type); // largest first
        string BucketOf(string type) => evidence.Types.Single(t => t.Type == type).Bucket;
        Assert.StartsWith("Kestrel", BucketOf("System.IO.Pipelines.Pipe"));
        Assert.StartsWith("our actors", BucketOf("TradeRoom.Actors.Connections.ConnectionActor"));
        Assert.StartsWith("Akka DeathWatch", BucketOf("Akka.Actor.FullActorState"));
        Assert.StartsWith("our transport", BucketOf("AsyncStateMachineBox<System.Threading.Tasks.VoidTaskResult,TradeRoom.Transport.WebSocketConnectionHandler+<OnConnectedAsync>d__5>"));
        Assert.StartsWith("WebSocket", BucketOf("System.Threading.AsyncMutex")); // by its module: its name alone says CoreLib
        Assert.StartsWith("other", BucketOf("System.String"));
        // The buckets add up to the type rows.
        Assert.Equal(evidence.TypeBytesPerConnection, evidence.Buckets.Sum(b => b.Value));
        Assert.Equal((288 * 4 + 184 * 2 + 48 * 2 + 100 * 2 + 176 * 2 + 32 * 2) / 2.0, evidence.TypeBytesPerConnection);
    }

    [Fact]
    public async Task A_perf_profile_is_split_by_the_first_named_frame_from_the_leaf_with_libraries_frames_and_the_runtime_counters()
    {
        var evidence = JsonSerializer.Deserialize<ProfileEvidence.CpuEvidence>(await File.ReadAllTextAsync(await PerfSummaryAsync("project")), Json)!;

        Assert.Equal(4, evidence.Samples);
        double Bucket(string prefix) => Assert.Single(evidence.Buckets, b => b.Name.StartsWith(prefix, StringComparison.Ordinal)).Value;
        Assert.Equal(25.0, Bucket("kernel: network send"));
        Assert.Equal(25.0, Bucket("runtime native"));
        Assert.Equal(25.0, Bucket("JSON"));
        Assert.Equal(25.0, Bucket("Akka dispatch")); // the dynamic method's (stale) name is no guide: its caller decides
        Assert.Equal(100.0, evidence.Buckets.Sum(b => b.Value));
        Assert.Equal(25.0, evidence.Libraries.Single(l => l.Name == "kernel").Value); // by the leaf's library
        Assert.Equal(50.0, evidence.Libraries.Single(l => l.Name == "JIT-compiled managed code (perf map)").Value);
        Assert.Equal(25.0, evidence.Libraries.Single(l => l.Name == "libcoreclr.so").Value);
        var mailbox = evidence.TopManagedFrames[0];
        Assert.Equal("Akka.Dispatch.Mailbox::Execute", mailbox.Frame);
        Assert.Equal(75.0, mailbox.Percent);
        Assert.Equal(50.0, evidence.TopManagedFrames.Single(f => f.Frame == "TradeRoom.Actors.Rooms.RoomRelay::Deliver").Percent);
        Assert.Equal(8.0, evidence.ServerCpuMicrosecondsPerDelivery);
        Assert.Equal(2, evidence.Runtime!.Seconds);
        Assert.Equal(0.010, evidence.Runtime.GcPauseSeconds, 6);
        Assert.Equal(0.002, evidence.Runtime.JitSeconds, 6);
        Assert.Equal(new ProfileEvidence.Share[] { new("gen0", 5), new("gen1", 1) }, evidence.Runtime.Collections);
    }

    [Fact]
    public async Task The_page_says_where_memory_and_CPU_go_links_them_from_targets_not_met_and_keeps_them_when_not_rerun()
    {
        await GcdumpDiffAsync("project");
        await GcdumpDiffAsync("reference");
        await PerfSummaryAsync("project");
        await PerfSummaryAsync("reference");
        static LoadTestResult Run(double kib, double cpu) => new()
        {
            ConnectionsRequested = 10, ConnectionsOpened = 10, ConnectionsFailed = 0, FailureReasons = new Dictionary<string, int>(),
            ConnectSeconds = 1, ConnectionsPerSecond = 10, Rooms = 1, EventsPublished = 10, PublishFailures = 0, PublishSeconds = 1,
            DeliveriesExpected = 100, Delivered = 100, DeliveriesPerSecond = 100, DeliverySeconds = 1, Lost = 0, DuplicatedOrOutOfOrder = 0, Gaps = 0,
            ClosedByServer = 0, CloseCodes = new Dictionary<string, int>(), LatencyMs = new LatencySummary(100, 1, 2, 3, 4),
            ServerKiBPerConnection = kib, ServerCpuMicrosecondsPerDelivery = cpu, LoadTesterCpuSecondsInPublishPhase = 0.001,
        };
        Write("density.json", JsonSerializer.Serialize(Run(kib: 9, cpu: 0), Json));
        Write("density-reference.json", JsonSerializer.Serialize(Run(kib: 10, cpu: 0), Json));
        Write("fanout.json", JsonSerializer.Serialize(Run(kib: 9, cpu: 5), Json)); // ×1.25 of the reference's: not met
        Write("fanout-reference.json", JsonSerializer.Serialize(Run(kib: 10, cpu: 4), Json));
        var page = Path.Combine(_dir, "benchmarks.md");

        await BenchmarkReport.WriteAsync(_dir, page);

        var text = await File.ReadAllTextAsync(page);
        var densityRow = text.Split('\n').Single(l => l.StartsWith("| memory per idle subscribed connection |", StringComparison.Ordinal));
        Assert.Contains("**not met** ([where the memory goes](#where-the-memory-goes))", densityRow);
        var fanoutRow = text.Split('\n').Single(l => l.StartsWith("| steady CPU per delivery", StringComparison.Ordinal));
        Assert.Contains("**not met** ([where the CPU goes](#where-the-cpu-goes))", fanoutRow);
        Assert.Contains("\n## Where the memory goes\n", text);
        Assert.Contains("| live managed bytes (GC heap growth) | 10,300 B | 10,300 B |", text);
        Assert.Contains("| resident memory, before the dump's full GC | 20.00 KiB | 20.00 KiB |", text);
        Assert.Contains("`System.IO.Pipelines.Pipe`", text);
        Assert.Contains("\n## Where the CPU goes\n", text);
        Assert.Contains("| kernel: network send (loopback receive included) | 25.0% (2.00) | 25.0% (2.00) |", text);
        // 10 ms paused in 2 s at 100 deliveries/s: 50 µs per delivery.
        Assert.Contains("project gen0 5, gen1 1 collections in 2 s, paused 5 ms per second (50.00 µs per delivery); JIT 1 ms per second", text);
        Assert.Contains("`bash bench/run.sh fanout-perf`", text);

        // A later run of other scenarios, in a results directory without the evidence, keeps the sections as they were.
        Directory.Delete(Path.Combine(_dir, "evidence"), recursive: true);
        await BenchmarkReport.WriteAsync(_dir, page);
        var again = await File.ReadAllTextAsync(page);
        Assert.Contains("| live managed bytes (GC heap growth) | 10,300 B | 10,300 B |", again);
        Assert.Contains("| kernel: network send (loopback receive included) | 25.0% (2.00) | 25.0% (2.00) |", again);
        Assert.Contains("**not met** ([where the memory goes](#where-the-memory-goes))", again);
    }
}
