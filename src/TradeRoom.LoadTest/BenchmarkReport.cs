using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace TradeRoom.LoadTest;

/// <summary>Writes docs/benchmarks.md (and the growth plot beside it) from the JSON results of bench/run.sh.</summary>
internal static class BenchmarkReport
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static async Task WriteAsync(string resultsDirectory, string outputPath)
    {
        LoadTestResult? Load(string name)
        {
            var path = Path.Combine(resultsDirectory, name + ".json");
            return File.Exists(path) ? JsonSerializer.Deserialize<LoadTestResult>(File.ReadAllText(path), Json) : null;
        }
        string Args(string name)
        {
            var path = Path.Combine(resultsDirectory, name + ".args");
            return File.Exists(path) ? File.ReadAllText(path).Trim() : "";
        }
        static string F(double? v, string format = "0.00") => v is { } x ? x.ToString(format, CultureInfo.InvariantCulture) : "–";
        static string Verdict(bool ok) => ok ? "**met**" : "**not met**";

        var s = new StringBuilder();
        s.AppendLine("# Benchmarks");
        s.AppendLine();
        s.AppendLine("Measured by `bash bench/run.sh` (or `dotnet pwsh build.ps1 bench`), which builds Release, starts a fresh server for");
        s.AppendLine("each scenario, with no runtime environment of its own: the server runs with the settings it ships with (its");
        s.AppendLine("runtimeconfig, as `dotnet run` and a published server do), and runs `TradeRoom.LoadTest` against it; this page is");
        s.AppendLine("generated from the results (`artifacts/bench/`).");
        s.AppendLine("Server memory is resident memory from `/proc/PID/status` (connected minus idle, per connection); server CPU is");
        s.AppendLine("user + system time from `/proc/PID/stat` while publishing and draining, divided by deliveries. The load tester runs on");
        s.AppendLine("the same 2 cores, so it competes with the server; its own CPU over the same window is shown beside the server's.");
        s.AppendLine("Each row is the latest run of its scenario; when each ran is in \"Every run in full\" below.");
        s.AppendLine();
        s.AppendLine($"Machine: {Environment.ProcessorCount} cores, {GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (1L << 30)} GiB, " +
                     $"{RuntimeInformation.OSDescription}, .NET {Environment.Version}; generated {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC.");
        s.AppendLine();
        var runtimes = Directory.GetFiles(resultsDirectory, "*.runtime")
            .Select(f => File.ReadAllText(f).Trim().ReplaceLineEndings("; ")).Where(l => l.Length > 0).Distinct().Order().ToList();
        if (runtimes.Count > 0)
        {
            s.AppendLine("Runtime settings, as the server logged them at start in these runs: " + string.Join(" / ", runtimes.Select(r => $"`{r}`")) +
                         " (README, \"The two commands\").");
            s.AppendLine();
        }

        // Where the memory and the CPU go (bench/run.sh density-gcdump, fanout-perf): from this results directory, else kept
        // from the page as it was; the targets' "not met" rows link to them.
        var previous = File.Exists(outputPath) ? await File.ReadAllTextAsync(outputPath) : "";
        var memoryEvidence = EvidenceSections.Memory(resultsDirectory) ?? Section(previous, EvidenceSections.MemoryHeading + "\n");
        var cpuEvidence = EvidenceSections.Cpu(resultsDirectory) ?? Section(previous, EvidenceSections.CpuHeading + "\n");
        AgainstReference(s, resultsDirectory, Load, Args, memoryEvidence is not null, cpuEvidence is not null);
        foreach (var evidence in new[] { memoryEvidence, cpuEvidence })
        {
            if (evidence is not null)
                s.AppendLine(evidence.TrimEnd()).AppendLine();
        }

        s.AppendLine("## Results against the earlier targets");
        s.AppendLine();
        s.AppendLine("| scenario | command (load tester options) | measured | target | |");
        s.AppendLine("|---|---|---|---|---|");
        if (Load("density") is { } density)
        {
            s.AppendLine($"| 1. density: {density.ConnectionsOpened:N0} idle subscribed connections, {density.Rooms} rooms | `{Args("density")}` | " +
                         $"{F(density.ServerKiBPerConnection)} KiB per connection ({F(density.ServerRssBaselineMiB, "0")} → {F(density.ServerRssConnectedMiB, "0")} MiB); " +
                         $"{density.ConnectionsPerSecond:N0} connections/s, {density.ConnectionsFailed} failed | ≤ 6 KiB (stretch ≤ 3) | {Verdict(density.ServerKiBPerConnection <= 6)} |");
        }
        if (Load("fanout") is { } fanout)
        {
            s.AppendLine($"| 2. fan-out: {fanout.ConnectionsOpened:N0} connections, {fanout.Rooms} rooms, 10 events/s per room | `{Args("fanout")}` | " +
                         $"{F(fanout.ServerCpuMicrosecondsPerDelivery)} µs CPU per delivery; {fanout.Delivered:N0} deliveries ({fanout.DeliveriesPerSecond:N0}/s); " +
                         $"lost {fanout.Lost}, duplicated/reordered {fanout.DuplicatedOrOutOfOrder}, gaps {fanout.Gaps}; latency p50 {F(fanout.LatencyMs.P50, "0.0")} ms, " +
                         $"p99 {F(fanout.LatencyMs.P99, "0.0")} ms, max {F(fanout.LatencyMs.Max, "0.0")} ms | ≤ 8 µs, zero loss/dups/reordering, p99 ≤ 50 ms | " +
                         $"{Verdict(fanout.ServerCpuMicrosecondsPerDelivery <= 8 && fanout.Clean && fanout.LatencyMs.P99 <= 50)} |");
        }
        if (Load("fanout-tls") is { } fanoutTls)
        {
            s.AppendLine($"| 2b. fan-out over TLS (wss://, https://): {fanoutTls.ConnectionsOpened:N0} connections, {fanoutTls.Rooms} rooms, 10 events/s per room | `{Args("fanout-tls")}` | " +
                         $"{F(fanoutTls.ServerCpuMicrosecondsPerDelivery)} µs CPU per delivery; {fanoutTls.Delivered:N0} deliveries ({fanoutTls.DeliveriesPerSecond:N0}/s); " +
                         $"lost {fanoutTls.Lost}, duplicated/reordered {fanoutTls.DuplicatedOrOutOfOrder}, gaps {fanoutTls.Gaps}; latency p50 {F(fanoutTls.LatencyMs.P50, "0.0")} ms, " +
                         $"p99 {F(fanoutTls.LatencyMs.P99, "0.0")} ms, max {F(fanoutTls.LatencyMs.Max, "0.0")} ms | zero loss/dups/reordering, p99 ≤ 50 ms | " +
                         $"{Verdict(fanoutTls.Clean && fanoutTls.LatencyMs.P99 <= 50)} |");
            // Numbers drift between sessions on a shared machine: a difference is only meaningful within one run.
            var sameSession = Math.Abs((File.GetLastWriteTimeUtc(Path.Combine(resultsDirectory, "fanout.json")) -
                                        File.GetLastWriteTimeUtc(Path.Combine(resultsDirectory, "fanout-tls.json"))).TotalMinutes) < 15;
            if (!sameSession)
            {
                s.AppendLine("| the cost of TLS per delivery: 2b minus 2 | | not shown: 2 and 2b come from runs at different times " +
                             "(`bash bench/run.sh fanout fanout-tls` measures both together) | (measured, no target) | |");
            }
            else if (Load("fanout") is { } plain && plain.ServerCpuMicrosecondsPerDelivery is { } plainCpu && fanoutTls.ServerCpuMicrosecondsPerDelivery is { } tlsCpu)
            {
                s.AppendLine($"| the cost of TLS per delivery: 2b minus 2 | | " +
                             $"{F(tlsCpu - plainCpu)} µs CPU per delivery ({F(plainCpu)} → {F(tlsCpu)} µs, ×{F(tlsCpu / plainCpu)}); " +
                             $"server memory {F(plain.ServerKiBPerConnection)} → {F(fanoutTls.ServerKiBPerConnection)} KiB per connection | (measured, no target) | |");
            }
        }
        if (Load("burst") is { } burst)
        {
            s.AppendLine($"| 3. burst: 1 room × {burst.ConnectionsOpened:N0} subscribers × 100 events | `{Args("burst")}` | " +
                         $"{F(burst.ServerCpuMicrosecondsPerDelivery)} µs CPU per delivery; {burst.Delivered:N0} deliveries in {F(burst.DeliverySeconds, "0.00")} s; " +
                         $"lost {burst.Lost}, duplicated/reordered {burst.DuplicatedOrOutOfOrder} | ≤ 2 µs, within 4 s | " +
                         $"{Verdict(burst.ServerCpuMicrosecondsPerDelivery <= 2 && burst.DeliverySeconds <= 4 && burst.Clean)} |");
        }
        var growth = new[] { 1000, 5000, 10000, 15000 }.Select(n => (N: n, R: Load($"growth-{n}"))).Where(g => g.R is not null).ToList();
        if (growth.Count >= 2)
        {
            var first = growth[0].R!;
            var last = growth[^1].R!;
            var memoryRatio = last.ServerKiBPerConnection / first.ServerKiBPerConnection;
            var cpuRatio = last.ServerCpuMicrosecondsPerDelivery / first.ServerCpuMicrosecondsPerDelivery;
            s.AppendLine($"| 4. growth: scenario 2 at {string.Join(", ", growth.Select(g => g.N.ToString("N0", CultureInfo.InvariantCulture)))} connections | see below | " +
                         $"at {growth[^1].N:N0} vs {growth[0].N:N0}: memory per connection ×{F(memoryRatio)}, CPU per delivery ×{F(cpuRatio)} | both within 20% (×0.80 to ×1.20) | " +
                         $"{Verdict(Math.Abs(memoryRatio!.Value - 1) <= 0.2 && Math.Abs(cpuRatio!.Value - 1) <= 0.2)} |");
        }
        if (Load("selfcheck") is { } self)
        {
            var perCpuSecond = self.Delivered / Math.Max(self.LoadTesterCpuSecondsInPublishPhase, 0.001);
            s.AppendLine($"| load tester self-check: against a trivial server, each pinned to one core | `{Args("selfcheck")}` | " +
                         $"{self.Delivered:N0} frames in {F(self.DeliverySeconds)} s = {self.DeliveriesPerSecond:N0} frames/s; {perCpuSecond:N0} frames per second of its own CPU | ≥ 200,000 frames/s on one core | " +
                         $"{Verdict(self.DeliveriesPerSecond >= 200_000 && self.Clean)} |");
        }
        s.AppendLine();

        // Sections whose results are not in this results directory (another machine's or session's runs) are kept from
        // the page as it was, so that running some scenarios never drops the others' numbers.
        var before = s.Length;
        DurableRooms(s, resultsDirectory, Load);
        if (s.Length == before && Section(previous, "## Durable rooms: the store's cost") is { } keptDurable)
            s.AppendLine(keptDurable.TrimEnd()).AppendLine();

        if (growth.Count > 0)
        {
            s.AppendLine("## Growth (scenario 2 at increasing size)");
            s.AppendLine();
            s.AppendLine("| connections | KiB per connection | µs CPU per delivery | deliveries/s | p50 ms | p99 ms | lost | load tester CPU s |");
            s.AppendLine("|---|---|---|---|---|---|---|---|");
            foreach (var (n, r) in growth)
            {
                s.AppendLine($"| {n:N0} | {F(r!.ServerKiBPerConnection)} | {F(r.ServerCpuMicrosecondsPerDelivery)} | {r.DeliveriesPerSecond:N0} | " +
                             $"{F(r.LatencyMs.P50, "0.0")} | {F(r.LatencyMs.P99, "0.0")} | {r.Lost} | {F(r.LoadTesterCpuSecondsInPublishPhase)} |");
            }
            s.AppendLine();
            var svg = Path.Combine(Path.GetDirectoryName(outputPath) ?? ".", "benchmark-growth.svg");
            await File.WriteAllTextAsync(svg, GrowthPlot(growth.Select(g => (g.N, g.R!.ServerKiBPerConnection ?? 0, g.R.ServerCpuMicrosecondsPerDelivery ?? 0)).ToList()));
            s.AppendLine("![memory per connection and CPU per delivery as connections grow](benchmark-growth.svg)");
            s.AppendLine();
        }

        if (ClusterReport.Section(resultsDirectory) is { } cluster)
            s.AppendLine(cluster.TrimEnd()).AppendLine();
        else if (Section(previous, "## Cluster mode (issue 12)\n") is { } keptCluster)
            s.AppendLine(keptCluster.TrimEnd()).AppendLine();

        s.AppendLine("## Every run in full");
        s.AppendLine();
        // The cluster runs are in full in their own section; runs kept from the page keep their own date.
        var runs = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var file in Directory.GetFiles(resultsDirectory, "*.txt").Where(f => !Path.GetFileName(f).StartsWith("cluster-", StringComparison.Ordinal)))
        {
            var name = Path.GetFileNameWithoutExtension(file);
            runs[name] = $"### {name}: `{Args(name)}` (run {File.GetLastWriteTimeUtc(file):yyyy-MM-dd HH:mm} UTC)\n\n```\n" +
                         (await File.ReadAllTextAsync(file)).TrimEnd() + "\n```\n";
        }
        if (Section(previous, "## Every run in full") is { } keptRuns)
        {
            foreach (var block in keptRuns.Split("\n### ").Skip(1))
            {
                var name = block[..block.IndexOf(':', StringComparison.Ordinal)];
                runs.TryAdd(name, "### " + block.TrimEnd() + "\n");
            }
        }
        foreach (var run in runs.Values)
            s.AppendLine(run.TrimEnd()).AppendLine();

        var analysis = Path.Combine("bench", "analysis.md");
        if (File.Exists(analysis))
            s.AppendLine((await File.ReadAllTextAsync(analysis)).TrimEnd());
        await File.WriteAllTextAsync(outputPath, s.ToString());
    }

    /// <summary>The page's section that starts with <paramref name="heading"/>, up to the next <c>## </c> heading; null if none.</summary>
    private static string? Section(string page, string heading)
    {
        var start = page.IndexOf(heading, StringComparison.Ordinal);
        if (start < 0)
            return null;
        var end = page.IndexOf("\n## ", start + heading.Length, StringComparison.Ordinal);
        return end < 0 ? page[start..] : page[start..(end + 1)];
    }

    /// <summary>
    /// Issue 13: every scenario that has one beside its run on the reference server (bench/reference, NAME-reference),
    /// the targets computed from the ratios, then every figure as project / reference.
    /// </summary>
    private static void AgainstReference(StringBuilder s, string resultsDirectory, Func<string, LoadTestResult?> load, Func<string, string> args,
        bool memoryEvidence, bool cpuEvidence)
    {
        static string F(double? v, string format = "0.00") => v is { } x ? x.ToString(format, CultureInfo.InvariantCulture) : "–";
        static double? Ratio(double? project, double? reference) => project is { } p && reference is { } r && r > 0 ? p / r : null;
        static string X(double? ratio) => ratio is { } x ? $"×{x.ToString("0.00", CultureInfo.InvariantCulture)}" : "×–";
        static string Verdict(bool? ok) => ok switch { true => "**met**", false => "**not met**", null => "no result" };
        // A target not met links to the evidence of where that memory or CPU goes, when the page has it.
        string Memory(bool? ok) => Verdict(ok) + (ok == false && memoryEvidence ? $" ([where the memory goes]({EvidenceSections.MemoryAnchor}))" : "");
        string Cpu(bool? ok) => Verdict(ok) + (ok == false && cpuEvidence ? $" ([where the CPU goes]({EvidenceSections.CpuAnchor}))" : "");
        static double? Tester(LoadTestResult r) => r.LoadTesterCpuMicrosecondsPerDelivery
            ?? (r.Delivered > 0 ? Math.Round(r.LoadTesterCpuSecondsInPublishPhase * 1e6 / r.Delivered, 2) : null);
        static double? Total(LoadTestResult r) => r.TotalCpuMicrosecondsPerDelivery
            ?? (r.ServerCpuMicrosecondsPerDelivery is { } c && Tester(r) is { } t ? c + t : null);
        string PR(double? p, double? r, string unit, string format = "0.00", bool ratio = true) =>
            $"{F(p, format)} / {F(r, format)}{(unit.Length > 0 ? " " + unit : "")}" + (ratio ? $" ({X(Ratio(p, r))})" : "");

        var scenarios = new[] { "density", "fanout", "steady-50k", "burst", "growth-1000", "growth-5000", "growth-10000", "growth-15000" };
        var pairs = scenarios.Select(n => (Name: n, P: load(n), R: load(n + "-reference"))).Where(x => x.P is not null || x.R is not null).ToList();
        if (pairs.Count == 0)
            return;
        // A ratio means something only within one session on this shared machine: the two runs of a pair minutes apart.
        bool SameSession(string name)
        {
            var p = Path.Combine(resultsDirectory, name + ".json");
            var r = Path.Combine(resultsDirectory, name + "-reference.json");
            return File.Exists(p) && File.Exists(r) && Math.Abs((File.GetLastWriteTimeUtc(p) - File.GetLastWriteTimeUtc(r)).TotalMinutes) < 15;
        }
        (LoadTestResult? P, LoadTestResult? R) Pair(string name) => pairs.FirstOrDefault(x => x.Name == name) is var x && x.Name is not null ? (x.P, x.R) : (null, null);

        s.AppendLine("## Against the reference server (issue 13)");
        s.AppendLine();
        s.AppendLine("Every scenario below runs twice in the same `bench/run.sh` invocation, one right after the other with the same load");
        s.AppendLine("tester and options: on the project, then on the **reference server** (`bench/reference`): plain Kestrel with ASP.NET");
        s.AppendLine("Core's `UseWebSockets`, one `WebSocket` per connection, a list of sockets per room and a plain send loop per socket");
        s.AppendLine("(one `SendAsync` per frame), no actors, workstation GC and otherwise .NET's default runtime settings; the same JSON");
        s.AppendLine("frames, JWTs, `subscribe_room` and `POST /api/events`. Over loopback the reader pays part of the sender's TCP cost");
        s.AppendLine("and the reverse, and the machine is shared, so an absolute figure depends on the harness and the hour: the ratio");
        s.AppendLine("project / reference from the same run is the figure the targets are judged by. Not run against the reference:");
        s.AppendLine("fan-out over TLS (the reference has no TLS), the durable-room rows (it keeps nothing), the cluster rows (it has no");
        s.AppendLine("cluster) and the load tester's self-check (no server).");
        s.AppendLine();
        s.AppendLine("| target (issue 13) | scenario | measured: project / reference | target | |");
        s.AppendLine("|---|---|---|---|---|");
        var (density, densityRef) = Pair("density");
        if (density is not null)
        {
            s.AppendLine($"| memory per idle subscribed connection | density | {PR(density.ServerKiBPerConnection, densityRef?.ServerKiBPerConnection, "KiB")} | " +
                         $"≤ 6 KiB (Node `ws`: 6.3 KB); stretch 4 KiB | {Memory(density.ServerKiBPerConnection <= 6)}" +
                         $"{(density.ServerKiBPerConnection <= 4 ? ", stretch met" : "")} |");
        }
        // Each row says the rate it measured (the scenario's planned rate unless the machine could not keep up or the options were changed).
        foreach (var name in new[] { "fanout", "steady-50k" })
        {
            var (p, r) = Pair(name);
            if (p is null)
                continue;
            var ratio = Ratio(p.ServerCpuMicrosecondsPerDelivery, r?.ServerCpuMicrosecondsPerDelivery);
            s.AppendLine($"| steady CPU per delivery ({p.DeliveriesPerSecond:N0} deliveries/s) | {name} | server {PR(p.ServerCpuMicrosecondsPerDelivery, r?.ServerCpuMicrosecondsPerDelivery, "µs")}; " +
                         $"load tester {PR(Tester(p), r is null ? null : Tester(r), "µs")}; sum {PR(Total(p), r is null ? null : Total(r), "µs")} | " +
                         $"server ≤ 0.8 × the reference's | {Cpu(ratio is { } x ? x <= 0.8 && p.Clean : null)} |");
        }
        var (burst, burstRef) = Pair("burst");
        if (burst is not null)
        {
            var ratio = Ratio(burst.ServerCpuMicrosecondsPerDelivery, burstRef?.ServerCpuMicrosecondsPerDelivery);
            s.AppendLine($"| burst CPU per delivery | burst | server {PR(burst.ServerCpuMicrosecondsPerDelivery, burstRef?.ServerCpuMicrosecondsPerDelivery, "µs")}; " +
                         $"load tester {PR(Tester(burst), burstRef is null ? null : Tester(burstRef), "µs")}; sum {PR(Total(burst), burstRef is null ? null : Total(burstRef), "µs")}; " +
                         $"all delivered in {F(burst.DeliverySeconds)} / {F(burstRef?.DeliverySeconds)} s | ≤ 1.0 × the reference's; stretch ≤ 1 µs | " +
                         $"{Cpu(ratio is { } x ? x <= 1.0 && burst.Clean : null)}{(burst.ServerCpuMicrosecondsPerDelivery <= 1 ? ", stretch met" : "")} |");
        }
        var (steady, steadyRef) = Pair("steady-50k");
        if (steady is not null)
        {
            var ratio = Ratio(steady.LatencyMs.P99, steadyRef?.LatencyMs.P99);
            s.AppendLine($"| p99 publish→receive at 50,000 deliveries/s ({steady.DeliveriesPerSecond:N0} measured) | steady-50k | {PR(steady.LatencyMs.P99, steadyRef?.LatencyMs.P99, "ms", "0.0")}; " +
                         $"p50 {PR(steady.LatencyMs.P50, steadyRef?.LatencyMs.P50, "ms", "0.0", ratio: false)} | ≤ 0.8 × the reference's, and ≤ 20 ms | " +
                         $"{Cpu(ratio is { } x ? x <= 0.8 && steady.LatencyMs.P99 <= 20 && steady.Clean : null)} |");
        }
        var (fanout, fanoutRef) = Pair("fanout");
        if (fanout is not null)
        {
            s.AppendLine($"| p99 publish→receive at 100,000 deliveries/s ({fanout.DeliveriesPerSecond:N0} measured) | fanout | {PR(fanout.LatencyMs.P99, fanoutRef?.LatencyMs.P99, "ms", "0.0")}; " +
                         $"p50 {PR(fanout.LatencyMs.P50, fanoutRef?.LatencyMs.P50, "ms", "0.0", ratio: false)} | ≤ 50 ms | {Cpu(fanout.LatencyMs.P99 <= 50 && fanout.Clean)} |");
        }
        var (g1, g1Ref) = Pair("growth-1000");
        var (g15, g15Ref) = Pair("growth-15000");
        if (g1 is not null && g15 is not null)
        {
            var memory = Ratio(g15.ServerKiBPerConnection, g1.ServerKiBPerConnection);
            var cpu = Ratio(g15.ServerCpuMicrosecondsPerDelivery, g1.ServerCpuMicrosecondsPerDelivery);
            var reference = g1Ref is not null && g15Ref is not null
                ? $" (reference: memory {X(Ratio(g15Ref.ServerKiBPerConnection, g1Ref.ServerKiBPerConnection))}, CPU {X(Ratio(g15Ref.ServerCpuMicrosecondsPerDelivery, g1Ref.ServerCpuMicrosecondsPerDelivery))})"
                : "";
            s.AppendLine($"| growth from 1,000 to 15,000 connections | growth | memory per connection {X(memory)}, CPU per delivery {X(cpu)}{reference} | " +
                         $"no figure rises by more than 20% (≤ ×1.20) | {Verdict(memory is { } m && cpu is { } c ? m <= 1.2 && c <= 1.2 : null)}" +
                         (memory > 1.2 && memoryEvidence ? $" ([where the memory goes]({EvidenceSections.MemoryAnchor}))" : "") +
                         (cpu > 1.2 && cpuEvidence ? $" ([where the CPU goes]({EvidenceSections.CpuAnchor}))" : "") + " |");
        }
        s.AppendLine();

        // The machine is shared: how loaded it was says how far the absolute figures (latency above all) are the server's own.
        var loads = pairs.SelectMany(x => new[] { x.Name, x.Name + "-reference" })
            .Select(n => Path.Combine(resultsDirectory, n + ".txt")).Where(File.Exists)
            .SelectMany(File.ReadLines).Where(l => l.StartsWith("machine load average at the end: ", StringComparison.Ordinal))
            .Select(l => double.Parse(l.Split(' ')[6], CultureInfo.InvariantCulture)).ToList();
        if (loads.Count > 0)
        {
            s.AppendLine($"Load average (1 min) at the end of these runs: {F(loads.Min(), "0.0")} to {F(loads.Max(), "0.0")} on {Environment.ProcessorCount} cores, " +
                         "other work included: latencies above a few ms measure the queue for the cores, not the server; the ratios hold better.");
            s.AppendLine();
        }
        s.AppendLine("Every figure, project / reference (ratio where it is one the targets use or a cost). CPU is per delivery:");
        s.AppendLine("the server's, the load tester's own over the same window, and their sum.");
        s.AppendLine();
        s.AppendLine("| scenario | command | server µs CPU | load tester µs CPU | sum µs CPU | p50 ms | p99 ms | KiB per connection | deliveries/s | clean |");
        s.AppendLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var (name, p, r) in pairs)
        {
            string Clean(LoadTestResult? x) => x is null ? "–" : x.Clean ? "yes" : $"NO (lost {x.Lost}, dup {x.DuplicatedOrOutOfOrder}, failed {x.ConnectionsFailed})";
            var note = SameSession(name) ? "" : " (not from the same session: compare with care)";
            var deliveries = p?.Delivered > 0 || r?.Delivered > 0;
            s.AppendLine($"| {name}{note} | `{args(name)}` | " +
                         (deliveries ? $"{PR(p?.ServerCpuMicrosecondsPerDelivery, r?.ServerCpuMicrosecondsPerDelivery, "")} | " +
                                       $"{PR(p is null ? null : Tester(p), r is null ? null : Tester(r), "", ratio: false)} | " +
                                       $"{PR(p is null ? null : Total(p), r is null ? null : Total(r), "")} | " +
                                       $"{PR(p?.LatencyMs.P50, r?.LatencyMs.P50, "", "0.0", ratio: false)} | {PR(p?.LatencyMs.P99, r?.LatencyMs.P99, "", "0.0")} | "
                                     : "– | – | – | – | – | ") +
                         $"{PR(p?.ServerKiBPerConnection, r?.ServerKiBPerConnection, "")} | " +
                         $"{(deliveries ? $"{F(p?.DeliveriesPerSecond, "N0")} / {F(r?.DeliveriesPerSecond, "N0")}" : "–")} | {Clean(p)} / {Clean(r)} |");
        }
        s.AppendLine();
    }

    /// <summary>
    /// The rows of issue 11 (durable rooms): each scenario with the rooms' store on SQLite (the default) beside memory
    /// (nothing kept) and PostgreSQL, from the same bench/run.sh invocation.
    /// </summary>
    private static void DurableRooms(StringBuilder s, string resultsDirectory, Func<string, LoadTestResult?> load)
    {
        PersistResult? Persist(string name)
        {
            var path = Path.Combine(resultsDirectory, name + ".json");
            return File.Exists(path) ? JsonSerializer.Deserialize<PersistResult>(File.ReadAllText(path), Json) : null;
        }
        static string F(double? v, string format = "0.00") => v is { } x ? x.ToString(format, CultureInfo.InvariantCulture) : "–";
        static string N(double? v) => v is { } x ? x.ToString("N0", CultureInfo.InvariantCulture) : "–";
        static string Verdict(bool ok) => ok ? "**met**" : "**not met**";
        string Cmd(string name) => $"`bash bench/run.sh {name}`";
        var providers = new[] { ("sqlite", ""), ("memory", "-memory"), ("postgresql", "-pg") };

        var rows = new List<string>();
        var memoryFanout = load("fanout-memory");
        foreach (var (provider, suffix) in providers)
        {
            if (load("fanout" + suffix) is not { } r)
                continue;
            var ratio = memoryFanout?.ServerCpuMicrosecondsPerDelivery is { } m && r.ServerCpuMicrosecondsPerDelivery is { } c ? c / m : (double?)null;
            var p99Ok = r.LatencyMs.P99 <= 50;
            var verdict = provider == "memory" ? (p99Ok && r.Clean ? "(reference) p99 **met**" : "(reference) p99 **not met**")
                : Verdict(ratio is { } x && x <= 1.10 && p99Ok && r.Clean);
            rows.Add($"| fan-out, {provider} | {Cmd("fanout" + suffix)} | {F(r.ServerCpuMicrosecondsPerDelivery)} µs CPU per delivery" +
                     (provider == "memory" ? "" : $" (×{F(ratio)} of memory)") +
                     $"; {r.Delivered:N0} deliveries, lost {r.Lost}, dup/reordered {r.DuplicatedOrOutOfOrder}; latency p50 {F(r.LatencyMs.P50, "0.0")} ms, p99 {F(r.LatencyMs.P99, "0.0")} ms | " +
                     $"CPU per delivery within 10% of memory (×1.10), p99 ≤ 50 ms | {verdict} |");
        }
        foreach (var (provider, suffix) in providers)
        {
            if (load("burst" + suffix) is not { } r)
                continue;
            var ok = r.ServerCpuMicrosecondsPerDelivery <= 2 && r.Clean;
            rows.Add($"| burst, {provider} | {Cmd("burst" + suffix)} | {F(r.ServerCpuMicrosecondsPerDelivery)} µs CPU per delivery; {r.Delivered:N0} deliveries in {F(r.DeliverySeconds)} s; lost {r.Lost} | " +
                     $"≤ 2 µs per delivery | {(provider == "memory" ? "(reference) " : "")}{Verdict(ok)} |");
        }
        foreach (var (rooms, target) in new[] { ("1room", 10_000), ("100rooms", 20_000) })
        {
            foreach (var (provider, suffix) in providers)
            {
                var name = $"publish-{rooms}{suffix}";
                if (Persist(name) is not { } r)
                    continue;
                var ok = r.EventsPerSecond >= target && r.Clean;
                var refused = r.Refused is { Count: > 0 } f ? string.Join(", ", f.Select(x => $"{x.Value:N0} events {x.Key}")) : "none";
                rows.Add($"| publish throughput into {(rooms == "1room" ? "one room" : "100 rooms")}, {provider} | {Cmd(name)} | " +
                         $"{N(r.EventsPerSecond)} events/s accepted (202) over {F(r.Seconds, "0")} s; refused: {refused}; {F(r.ServerCpuMicrosPerEvent)} µs server CPU per event" +
                         (r.DbCpuMicrosPerEvent is { } db ? $" + {F(db)} µs in PostgreSQL" : "") +
                         $"; numbering: {r.NumberingGaps} missing, {r.NumberingDuplicates} duplicated; journal write mean {F(r.JournalWriteMeanMs, "0.0")} ms | " +
                         $"≥ {target:N0} events/s | {(provider == "memory" ? "(reference) " : "")}{Verdict(ok)} |");
            }
        }
        foreach (var (provider, suffix) in providers)
        {
            if (Persist("recovery" + suffix) is not { } r)
                continue;
            rows.Add($"| recovery of a room with a full history ({r.HistoryEvents:N0} events), {provider} | {Cmd("recovery" + suffix)} | " +
                     $"resume from seq 0 after SIGTERM and start: first room after the start: `subscribed` {F(r.SubscribedMs, "0.0")} ms, last replayed event {F(r.LastEventMs, "0.0")} ms " +
                     $"(server's recovery {F(r.RoomRecoveryMs, "0.0")} ms); second room: {F(r.WarmSubscribedMs, "0.0")} / {F(r.WarmLastEventMs, "0.0")} ms (recovery {F(r.WarmRoomRecoveryMs, "0.0")} ms); " +
                     $"recovered {(r.Recovered == true ? "true" : "FALSE")}, {r.Replayed:N0} replayed in order | (measured, no target) | |");
        }
        foreach (var (provider, suffix) in providers)
        {
            var all = Persist("first-subscribe" + suffix);
            var one = Persist("first-subscribe" + suffix + "-sequential");
            if (all is null && one is null)
                continue;
            string Line(PersistResult? r, string how) => r is null ? "" :
                $"{how}: p50 {F(r.SubscribeP50Ms, "0.0")} ms, p99 {F(r.SubscribeP99Ms, "0.0")} ms, max {F(r.SubscribeMaxMs, "0.0")} ms, all in {F(r.Seconds)} s, {F(r.ServerCpuMsPerRoom)} ms server CPU per room; ";
            rows.Add($"| first-subscribe latency after a restart, {all?.Rooms ?? one?.Rooms:N0} rooms of {all?.HistoryEvents ?? one?.HistoryEvents} events, {provider} | {Cmd("first-subscribe" + suffix)} | " +
                     Line(all, "all at once") + Line(one, "one after another") +
                     $"rooms back with another seq or epoch: {(all?.WrongState ?? 0) + (one?.WrongState ?? 0)} | (measured, no target) | |");
        }
        foreach (var (provider, suffix) in providers)
        {
            if (Persist("disk" + suffix) is not { } r)
                continue;
            rows.Add($"| disk bytes per event kept, {provider} | {Cmd("disk" + suffix)} | " +
                     $"**{N(r.BytesPerEvent)} bytes per event** ({N(r.StoreBytes)} bytes for {N(r.EventsKept)} events kept); live data {N(r.LiveBytesPerEvent)} bytes per event ({N(r.LiveBytes)} bytes); " +
                     $"kept = history in the {r.Snapshots} snapshots ({N(r.SnapshotHistoryEvents)}) + journal rows after them ({N(r.JournalEventsKept)}; {N(r.JournalRows)} rows in all) | (measured, no target) | |");
        }
        if (rows.Count == 0)
            return;
        s.AppendLine("## Durable rooms: the store's cost (issue 11)");
        s.AppendLine();
        s.AppendLine("Each row's scenario runs on a fresh server with a fresh store: a new SQLite file (`sqlite`, the default), nothing kept");
        s.AppendLine("(`memory`, the comparison row), or a new database on a throwaway PostgreSQL 15 instance on the same machine");
        s.AppendLine("(`postgresql`; its CPU is not in the server's and is shown apart where measured). Restarts are SIGTERM, then a");
        s.AppendLine("start on the same store. Publishers are 8 concurrent HTTP clients, each with one `POST /api/events` of 100");
        s.AppendLine("events in flight; only 202-accepted events count, and the seqs in the 202 answers must number each room's");
        s.AppendLine("accepted events 1..n without a gap or a duplicate. How disk is counted: SQLite, the file plus its `-wal`");
        s.AppendLine("after `PRAGMA wal_checkpoint(TRUNCATE)` (live: pages in use, without the free list); PostgreSQL,");
        s.AppendLine("`pg_total_relation_size` of `journal` and `snapshot` (live: the same after `VACUUM FULL`); divided by the");
        s.AppendLine("events the store holds for resume: per room the history in its latest snapshot plus its journal rows after it.");
        s.AppendLine();
        s.AppendLine("| scenario | command | measured | target | |");
        s.AppendLine("|---|---|---|---|---|");
        foreach (var row in rows)
            s.AppendLine(row);
        s.AppendLine();
    }

    /// <summary>A small SVG line chart: KiB per connection and µs per delivery against connections.</summary>
    private static string GrowthPlot(IReadOnlyList<(int N, double KiB, double Micros)> points)
    {
        const int width = 640, height = 320, left = 60, right = 60, top = 30, bottom = 50;
        var maxN = points.Max(p => p.N);
        var maxKiB = Math.Max(1, points.Max(p => p.KiB)) * 1.2;
        var maxMicros = Math.Max(1, points.Max(p => p.Micros)) * 1.2;
        double X(int n) => left + (width - left - right) * n / (double)maxN;
        double Y(double v, double max) => height - bottom - (height - top - bottom) * v / max;
        string Line(Func<(int N, double KiB, double Micros), double> value, double max) =>
            string.Join(" ", points.Select(p => $"{X(p.N):0.0},{Y(value(p), max):0.0}"));
        var inv = CultureInfo.InvariantCulture;
        var svg = new StringBuilder();
        svg.AppendLine(CultureInfo.InvariantCulture, $"""<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">""");
        svg.AppendLine("""<rect width="100%" height="100%" fill="white"/>""");
        svg.AppendLine(inv, $"""<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="black"/>""");
        svg.AppendLine(inv, $"""<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#1f77b4"/>""");
        svg.AppendLine(inv, $"""<line x1="{width - right}" y1="{top}" x2="{width - right}" y2="{height - bottom}" stroke="#d62728"/>""");
        svg.AppendLine(inv, $"""<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{Line(p => p.KiB, maxKiB)}"/>""");
        svg.AppendLine(inv, $"""<polyline fill="none" stroke="#d62728" stroke-width="2" points="{Line(p => p.Micros, maxMicros)}"/>""");
        foreach (var p in points)
        {
            svg.AppendLine(inv, $"""<text x="{X(p.N):0}" y="{height - bottom + 16}" text-anchor="middle">{p.N:N0}</text>""");
            svg.AppendLine(inv, $"""<circle cx="{X(p.N):0.0}" cy="{Y(p.KiB, maxKiB):0.0}" r="3" fill="#1f77b4"/><text x="{X(p.N) + 4:0.0}" y="{Y(p.KiB, maxKiB) - 6:0.0}" fill="#1f77b4">{p.KiB:0.0}</text>""");
            svg.AppendLine(inv, $"""<circle cx="{X(p.N):0.0}" cy="{Y(p.Micros, maxMicros):0.0}" r="3" fill="#d62728"/><text x="{X(p.N) + 4:0.0}" y="{Y(p.Micros, maxMicros) + 14:0.0}" fill="#d62728">{p.Micros:0.0}</text>""");
        }
        svg.AppendLine(inv, $"""<text x="{width / 2}" y="{height - 12}" text-anchor="middle">connections (10 rooms, 10 events/s per room)</text>""");
        svg.AppendLine(inv, $"""<text x="{left}" y="{top - 10}" fill="#1f77b4">server KiB per connection</text>""");
        svg.AppendLine(inv, $"""<text x="{width - right}" y="{top - 10}" fill="#d62728" text-anchor="end">server µs CPU per delivery</text>""");
        svg.AppendLine("</svg>");
        return svg.ToString();
    }
}
