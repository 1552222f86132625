using System.Globalization;

namespace TradeRoom.LoadTest;

/// <summary>What one run does. Parsed from the command line by <see cref="Parse"/>; the smoke test builds it directly.</summary>
public sealed record LoadTestOptions
{
    public Uri WsUrl { get; init; } = new("ws://127.0.0.1:4001/ws");
    public Uri ApiUrl { get; init; } = new("http://127.0.0.1:4000");
    /// <summary>Every <c>--ws</c> given (cluster mode: one per node); connection i goes to the (i mod n)-th. Empty: <see cref="WsUrl"/>.</summary>
    public IReadOnlyList<Uri> WsUrls { get; init; } = [];
    /// <summary>Every <c>--api</c> given; publish requests take turns over them. Empty: <see cref="ApiUrl"/>.</summary>
    public IReadOnlyList<Uri> ApiUrls { get; init; } = [];
    /// <summary>Every <c>--server-pid</c> given (cluster mode: one per node, in the order of <see cref="MetricsUrls"/>).</summary>
    public IReadOnlyList<int> ServerPids { get; init; } = [];
    /// <summary>Every <c>--metrics-url</c> given (one per node): summed, and reported per node.</summary>
    public IReadOnlyList<Uri> MetricsUrls { get; init; } = [];
    public string Secret { get; init; } = Environment.GetEnvironmentVariable("JWT_SECRET") is { Length: > 0 } s ? s : DevelopmentSecret;
    public int Connections { get; init; } = 1000;
    public int Rooms { get; init; } = 10;
    /// <summary>Events per second per room during the steady phase; 0 for none.</summary>
    public double Rate { get; init; }
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Seconds of steady publishing before the measured phase, so a fresh server's JIT and pools settle first.</summary>
    public TimeSpan Warmup { get; init; }
    /// <summary>Events published to every room at once (instead of a steady rate); 0 for none.</summary>
    public int Burst { get; init; }
    public int EventSize { get; init; } = 120;
    public string EventType { get; init; } = "ranking_changed";
    /// <summary>Connections are spread over source addresses 127.0.0.1 … 127.0.0.N (each address has ~28k ports).</summary>
    public int SourceAddresses { get; init; }
    public int ConnectConcurrency { get; init; } = 100;
    /// <summary>Seconds to stay connected and idle before publishing (memory is measured at its end).</summary>
    public TimeSpan Hold { get; init; }
    public TimeSpan Drain { get; init; } = TimeSpan.FromSeconds(15);
    public int? ServerPid { get; init; }
    /// <summary>
    /// Cluster mode, the cost of a cross-node event: <c>host</c> puts each room's subscribers on the node that runs the
    /// room, <c>remote</c> on the next node; either way events are published through the room's own node.
    /// Needs one <c>--api</c> per <c>--ws</c>, in the same node order. Null: connections round-robin over the nodes.
    /// </summary>
    public string? Placement { get; init; }
    /// <summary>The server's Prometheus endpoint: its counts of events published and frames delivered are compared with the tester's own.</summary>
    public Uri? MetricsUrl { get; init; }
    /// <summary>Sent as <c>Authorization: Bearer</c> to <see cref="MetricsUrl"/> (the server's traderoom.http.metrics-token).</summary>
    public string? MetricsToken { get; init; }
    /// <summary>A PEM certificate to trust for wss:// and https:// (e.g. the server's self-signed one).</summary>
    public string? CaCertPath { get; init; }
    /// <summary>Accept any server certificate (wss:// and https://).</summary>
    public bool Insecure { get; init; }
    /// <summary>Self-check against a trivial server: no HTTP API, no publishing; each connection expects this many events.</summary>
    public int ExpectPerConnection { get; init; }
    public string? JsonPath { get; init; }
    public bool Quiet { get; init; }

    /// <summary>The server's development secret (hocon: empty secret in Development).</summary>
    public const string DevelopmentSecret = "traderoom-development-secret-not-for-production";

    public int EffectiveSourceAddresses => SourceAddresses > 0 ? SourceAddresses : Math.Max(1, (Connections + 9_999) / 10_000);

    public const string Usage = """
        TradeRoom.LoadTest: opens WebSocket connections to a TradeRoom server, subscribes them to rooms, publishes
        events through the HTTP batch endpoint and measures delivery, loss, order, latency and the server's cost.

        usage: dotnet run -c Release --project src/TradeRoom.LoadTest -- [options]
               dotnet run -c Release --project src/TradeRoom.LoadTest -- trivial-server --port P --frames K
               dotnet run -c Release --project src/TradeRoom.LoadTest -- report RESULTS_DIR OUTPUT.md
               dotnet run -c Release --project src/TradeRoom.LoadTest -- --attack rooms|idle-rooms [options]
                 (the room-creation attack of docs/benchmarks.md; `--attack rooms --help` lists its options)
               dotnet run -c Release --project src/TradeRoom.LoadTest -- --persist throughput|fill|history|first-subscribe|disk [options]
                 (the durable-room measurements of docs/benchmarks.md; `--persist throughput --help` lists their options)

          --ws URL                 WebSocket endpoint, ws:// or wss://     (ws://127.0.0.1:4001/ws); repeat it for
                                   several nodes: connections are spread over them round-robin
          --api URL                HTTP(S) endpoint for publishing          (http://127.0.0.1:4000); repeat it for
                                   several nodes: publish requests take turns over them
          --ca-cert PATH           PEM certificate to trust for wss:// and https:// (e.g. the server's self-signed one)
          --insecure               accept any server certificate
          --secret S               JWT secret to sign tokens with           (JWT_SECRET, else the development secret)
          --connections N          connections to open                      (1000)
          --rooms R                rooms to spread them over                (10)
          --rate E                 events per second per room, steady       (0: none)
          --duration S             seconds of steady publishing             (30)
          --warmup S               seconds of steady publishing first, not measured (0); before a --burst, at 10 events/s per room
          --burst K                publish K events to every room at once   (0: none)
          --event-size B           approximate bytes of each event's data   (120)
          --event-type T           event type to publish                    (ranking_changed)
          --source-addresses N     spread over 127.0.0.1..127.0.0.N         (1 per 10,000 connections)
          --connect-concurrency C  connections opened in parallel           (100)
          --hold S                 seconds idle before publishing           (0)
          --drain S                seconds to wait for the last events      (15)
          --server-pid PID         measure the server's memory and CPU from /proc; repeat it (with as many
                                   --metrics-url, same order) for several nodes: summed, and reported per node
          --metrics-url URL        the server's /metrics (e.g. http://127.0.0.1:4000/metrics): compare its counts
                                   of events published and frames delivered with the tester's own
          --metrics-token T        bearer token for --metrics-url (the server's traderoom.http.metrics-token)
          --failover ...           cluster failover time (`--failover --help` lists its options)
          --placement host|remote  cluster mode: each room's subscribers on the node running the room, or on the
                                   next node; publishing through the room's node (needs --ws and --api per node)
          --json PATH              write the summary as JSON ("-": stdout)
          --expect-per-connection K  self-check against `trivial-server`: no publishing, K events per connection
          --quiet                  no live progress
        """;

    /// <summary>Options from the command line; throws <see cref="ArgumentException"/> with a message for the user.</summary>
    public static LoadTestOptions Parse(IReadOnlyList<string> args)
    {
        var o = new LoadTestOptions();
        for (var i = 0; i < args.Count; i++)
        {
            var name = args[i];
            string Value() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{name} needs a value");
            int Int(int min) => int.TryParse(Value(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v >= min
                ? v : throw new ArgumentException($"{name} needs a whole number >= {min}");
            double Number() => double.TryParse(Value(), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v >= 0
                ? v : throw new ArgumentException($"{name} needs a number >= 0");
            Uri Url(params string[] schemes) => Uri.TryCreate(Value(), UriKind.Absolute, out var u) && schemes.Contains(u.Scheme)
                ? u : throw new ArgumentException($"{name} needs a {string.Join(" or ", schemes)} URL");

            o = name switch
            {
                "--ws" => Ws(o, Url("ws", "wss")),
                "--api" => Api(o, Url("http", "https")),
                "--ca-cert" => o with { CaCertPath = Value() },
                "--insecure" => o with { Insecure = true },
                "--metrics-token" => o with { MetricsToken = Value() },
                "--secret" => o with { Secret = Value() },
                "--connections" => o with { Connections = Int(1) },
                "--rooms" => o with { Rooms = Int(1) },
                "--rate" => o with { Rate = Number() },
                "--duration" => o with { Duration = TimeSpan.FromSeconds(Number()) },
                "--warmup" => o with { Warmup = TimeSpan.FromSeconds(Number()) },
                "--burst" => o with { Burst = Int(0) },
                "--event-size" => o with { EventSize = Int(0) },
                "--event-type" => o with { EventType = Value() },
                "--source-addresses" => o with { SourceAddresses = Int(1) },
                "--connect-concurrency" => o with { ConnectConcurrency = Int(1) },
                "--hold" => o with { Hold = TimeSpan.FromSeconds(Number()) },
                "--drain" => o with { Drain = TimeSpan.FromSeconds(Number()) },
                "--server-pid" => Pid(o, Int(1)),
                "--placement" => o with { Placement = Value() is var p && p is "host" or "remote" ? p : throw new ArgumentException("--placement is host or remote") },
                "--metrics-url" => Metrics(o, Url("http", "https")),
                "--json" => o with { JsonPath = Value() },
                "--expect-per-connection" => o with { ExpectPerConnection = Int(1) },
                "--quiet" => o with { Quiet = true },
                _ => throw new ArgumentException($"unknown option {name}"),
            };
        }
        if (o.ServerPids.Count > 1 && o.MetricsUrls.Count != o.ServerPids.Count)
            throw new ArgumentException("several --server-pid need as many --metrics-url, in the same order (one per node)");
        if (o.Placement is not null && (o.WsUrls.Count < 2 || o.ApiUrls.Count != o.WsUrls.Count))
            throw new ArgumentException("--placement needs 2 or more nodes, each as --ws and --api in the same order");
        if (o.Rooms > o.Connections)
            throw new ArgumentException("--rooms cannot exceed --connections");
        if (o.MetricsUrl is not null && o.ExpectPerConnection > 0)
            throw new ArgumentException("--metrics-url needs a TradeRoom server, not the trivial server of --expect-per-connection");
        if (o.MetricsToken is not null && o.MetricsUrl is null)
            throw new ArgumentException("--metrics-token needs --metrics-url");
        if (o.CaCertPath is not null && !File.Exists(o.CaCertPath))
            throw new ArgumentException($"--ca-cert {o.CaCertPath} does not exist");
        if (o.SourceAddresses > 254)
            throw new ArgumentException("--source-addresses is at most 254 (127.0.0.1..127.0.0.254)");
        return o;

        // Repeated options add a node; the first also sets the single-node field the rest of the tester reads.
        static LoadTestOptions Ws(LoadTestOptions o, Uri u) => o with { WsUrl = o.WsUrls.Count == 0 ? u : o.WsUrl, WsUrls = [.. o.WsUrls, u] };
        static LoadTestOptions Api(LoadTestOptions o, Uri u) => o with { ApiUrl = o.ApiUrls.Count == 0 ? u : o.ApiUrl, ApiUrls = [.. o.ApiUrls, u] };
        static LoadTestOptions Pid(LoadTestOptions o, int p) => o with { ServerPid = o.ServerPids.Count == 0 ? p : o.ServerPid, ServerPids = [.. o.ServerPids, p] };
        static LoadTestOptions Metrics(LoadTestOptions o, Uri u) =>
            o with { MetricsUrl = o.MetricsUrls.Count == 0 ? u : o.MetricsUrl, MetricsUrls = [.. o.MetricsUrls, u] };
    }
}
