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
        s.AppendLine("each scenario (with the runtime settings in `SERVER_ENV` of `bench/common.sh`: a 1 MB gen-0 budget and 1 MB GC regions) and runs");
        s.AppendLine("`TradeRoom.LoadTest` against it; this page is generated from the results (`artifacts/bench/`).");
        s.AppendLine("Server memory is resident memory from `/proc/PID/status` (connected minus idle, per connection); server CPU is");
        s.AppendLine("user + system time from `/proc/PID/stat` while publishing and draining, divided by deliveries. The load tester runs on");
        s.AppendLine("the same 2 cores, so it competes with the server; its own CPU is shown.");
        s.AppendLine();
        s.AppendLine($"Machine: {Environment.ProcessorCount} cores, {GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (1L << 30)} GiB, " +
                     $"{RuntimeInformation.OSDescription}, .NET {Environment.Version}; generated {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC.");
        s.AppendLine();

        s.AppendLine("## Results against the targets");
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
            if (Load("fanout") is { } plain && plain.ServerCpuMicrosecondsPerDelivery is { } plainCpu && fanoutTls.ServerCpuMicrosecondsPerDelivery is { } tlsCpu)
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

        s.AppendLine("## Every run in full");
        s.AppendLine();
        foreach (var file in Directory.GetFiles(resultsDirectory, "*.txt").Order())
        {
            s.AppendLine($"### {Path.GetFileNameWithoutExtension(file)}: `{Args(Path.GetFileNameWithoutExtension(file))}`");
            s.AppendLine();
            s.AppendLine("```");
            s.AppendLine((await File.ReadAllTextAsync(file)).TrimEnd());
            s.AppendLine("```");
            s.AppendLine();
        }

        var analysis = Path.Combine("bench", "analysis.md");
        if (File.Exists(analysis))
            s.AppendLine((await File.ReadAllTextAsync(analysis)).TrimEnd());
        await File.WriteAllTextAsync(outputPath, s.ToString());
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
