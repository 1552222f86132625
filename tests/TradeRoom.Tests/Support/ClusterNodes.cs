using System.Globalization;
using System.Net;
using System.Text.Json;
using TradeRoom.Actors.Auth;

namespace TradeRoom.Tests.Support;

/// <summary>
/// N real server processes (<c>dotnet TradeRoom.Server.dll</c>) in cluster mode on loopback, sharing one PostgreSQL
/// database (the journal every node recovers rooms from). Each node has its own free WebSocket, HTTP and cluster
/// ports; node 0 is the seed of all. Start them with <see cref="StartAsync"/> (all at once, waiting until every node
/// is Up and ready), or place them with <see cref="Create"/> and start them one by one with <see cref="Start"/>.
/// Disposing kills every process still running.
/// </summary>
/// <example><code>
/// [Collection(PostgresCollection.Name)]
/// public sealed class MyClusterTests(PostgresServer postgres)
/// {
///     await using var cluster = await ClusterNodes.StartAsync(3, await postgres.CreateDatabaseAsync());
///     await using var client = await cluster[2].ConnectAsync("alice");
/// }
/// </code></example>
public sealed class ClusterNodes : IAsyncDisposable
{
    public const string Secret = "cluster-nodes-test-secret-0123456789-abcdef";

    /// <summary>How long a node may take to start and join (three processes starting at once on a busy 2-core machine).</summary>
    public static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    private readonly ClusterNode[] _nodes;

    private ClusterNodes(ClusterNode[] nodes) => _nodes = nodes;

    public IReadOnlyList<ClusterNode> Nodes => _nodes;

    public ClusterNode this[int index] => _nodes[index];

    public TokenIssuer Tokens { get; } = new(Secret);

    /// <summary>The nodes whose process runs now.</summary>
    public IEnumerable<ClusterNode> Running => _nodes.Where(n => n.IsRunning);

    /// <summary>
    /// The environment that gives every node <paramref name="hocon"/> over its settings: a file of it, named by
    /// <c>TRADEROOM_CONFIG</c> (the way an operator sets what has no variable of its own).
    /// </summary>
    public static IReadOnlyDictionary<string, string> HoconEnvironment(string hocon)
    {
        var file = Path.Combine(Path.GetTempPath(), $"traderoom-cluster-{Guid.NewGuid():N}.conf");
        File.WriteAllText(file, hocon);
        return new Dictionary<string, string> { ["TRADEROOM_CONFIG"] = file };
    }

    /// <summary>Places <paramref name="count"/> nodes on free ports without starting any.</summary>
    /// <param name="database">The Npgsql connection string of the database all nodes share.</param>
    /// <param name="environment">Extra variables for every node (e.g. <c>TRADEROOM_CONFIG</c>), over the ones set here.</param>
    public static ClusterNodes Create(int count, string database, IReadOnlyDictionary<string, string>? environment = null)
    {
        var nodes = new ClusterNode[count];
        for (var i = 0; i < count; i++)
            nodes[i] = new ClusterNode(i, ServerProcess.FreePort(), ServerProcess.FreePort(), ServerProcess.FreePort(), database, environment);
        return new ClusterNodes(nodes);
    }

    /// <summary>Starts <paramref name="count"/> nodes at once and waits until each is Up, sees all of them Up, and answers /api/ready 200.</summary>
    public static async Task<ClusterNodes> StartAsync(int count, string database, IReadOnlyDictionary<string, string>? environment = null)
    {
        var cluster = Create(count, database, environment);
        try
        {
            foreach (var node in cluster._nodes)
                cluster.Start(node.Index);
            await cluster.WaitUntilFormedAsync();
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Starts node <paramref name="index"/>'s process. Its seeds: <paramref name="seeds"/> when given; else node 0, or,
    /// for node 0 itself while others run (a restart), those others, so that it joins them instead of forming a cluster of its own.
    /// </summary>
    public ClusterNode Start(int index, IReadOnlyList<string>? seeds = null)
    {
        var node = _nodes[index];
        if (seeds is null)
        {
            var others = Running.Where(n => n.Index != index).Select(n => n.Address).ToArray();
            seeds = index == 0 && others.Length > 0 ? others : [_nodes[0].Address];
        }
        node.Start(seeds);
        return node;
    }

    /// <summary>Waits until every running node answers /api/ready 200 and sees exactly the running nodes, all Up, none unreachable.</summary>
    public async Task WaitUntilFormedAsync(TimeSpan? timeout = null)
    {
        var expected = Running.Select(n => n.Address).Order(StringComparer.Ordinal).ToArray();
        await Task.WhenAll(Running.Select(node => Eventually.MatchAsync(async () =>
        {
            var view = await node.ClusterViewAsync();
            var ready = await node.GetAsync("/api/ready");
            return (ready.Status, Members: view is null ? "" : string.Join(",", view.Up), Unreachable: view?.Unreachable.Count ?? -1);
        }, s => s.Status == HttpStatusCode.OK && s.Members == string.Join(",", expected) && s.Unreachable == 0,
            $"node {node.Index} ready and seeing {expected.Length} members up", timeout ?? StartTimeout)));
    }

    /// <summary>SIGTERM to node <paramref name="index"/>; returns its exit code once it exited (fails if it does not within <paramref name="timeout"/>).</summary>
    public async Task<int> TerminateAsync(int index, TimeSpan? timeout = null)
    {
        var process = _nodes[index].Process ?? throw new InvalidOperationException($"node {index} is not running");
        await process.TerminateAsync();
        if (!await process.WaitForExitAsync(timeout ?? TimeSpan.FromSeconds(30)))
            throw new TimeoutException($"node {index} did not exit after SIGTERM.\n{_nodes[index].Output}");
        return process.Process.ExitCode;
    }

    /// <summary>SIGKILL to node <paramref name="index"/>, and waits until the process is gone.</summary>
    public async Task KillAsync(int index)
    {
        var process = _nodes[index].Process ?? throw new InvalidOperationException($"node {index} is not running");
        process.Process.Kill();
        if (!await process.WaitForExitAsync(TimeSpan.FromSeconds(10)))
            throw new TimeoutException($"node {index} still runs after SIGKILL");
    }

    /// <summary>Starts a stopped node again on the same ports (so with the same address), joining the running nodes, and waits until the cluster has it Up.</summary>
    public async Task<ClusterNode> RestartAsync(int index)
    {
        if (_nodes[index].IsRunning)
            throw new InvalidOperationException($"node {index} still runs; terminate or kill it first");
        Start(index);
        await WaitUntilFormedAsync();
        return _nodes[index];
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in _nodes)
            node.Dispose();
        await Task.CompletedTask;
    }
}

/// <summary>One node of <see cref="ClusterNodes"/>: its ports, its address, its process when running, and an HTTP client for its API port.</summary>
public sealed class ClusterNode : IDisposable
{
    private readonly string _database;
    private readonly IReadOnlyDictionary<string, string>? _environment;
    private readonly TokenIssuer _tokens = new(ClusterNodes.Secret);

    internal ClusterNode(int index, int wsPort, int apiPort, int clusterPort, string database, IReadOnlyDictionary<string, string>? environment)
    {
        Index = index;
        WsPort = wsPort;
        ApiPort = apiPort;
        ClusterPort = clusterPort;
        _database = database;
        _environment = environment;
        Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{apiPort}"), Timeout = TimeSpan.FromSeconds(10) };
    }

    public int Index { get; }
    public int WsPort { get; }
    public int ApiPort { get; }
    public int ClusterPort { get; }

    /// <summary>The node's cluster address, as /api/health and auth_success name it.</summary>
    public string Address => $"akka.tcp://traderoom@127.0.0.1:{ClusterPort}";

    public Uri WsUri => new($"ws://127.0.0.1:{WsPort}/ws");

    public HttpClient Http { get; }

    /// <summary>The current (or last) process; null before the first start.</summary>
    public ServerProcess? Process { get; private set; }

    public bool IsRunning => Process is { Process.HasExited: false };

    /// <summary>What the current process printed, for failure messages.</summary>
    public string Output => Process is null ? "(never started)" : $"stdout:\n{Process.Stdout}\nstderr:\n{Process.Stderr}";

    internal void Start(IReadOnlyList<string> seeds)
    {
        var environment = new Dictionary<string, string>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["JWT_SECRET"] = ClusterNodes.Secret,
            ["BIND_ADDRESS"] = "127.0.0.1",
            ["WS_PORT"] = WsPort.ToString(CultureInfo.InvariantCulture),
            ["API_PORT"] = ApiPort.ToString(CultureInfo.InvariantCulture),
            ["TRADEROOM_PERSISTENCE"] = "postgresql",
            ["TRADEROOM_DB"] = _database,
            ["TRADEROOM_CLUSTER"] = "on",
            ["CLUSTER_HOSTNAME"] = "127.0.0.1",
            ["CLUSTER_PORT"] = ClusterPort.ToString(CultureInfo.InvariantCulture),
            ["CLUSTER_SEEDS"] = string.Join(",", seeds),
        };
        foreach (var (name, value) in _environment ?? new Dictionary<string, string>())
            environment[name] = value;
        Process?.Dispose();
        Process = ServerProcess.Start(environment);
    }

    /// <summary>GET on the node's API port; a connection refused (the process not listening yet, or gone) is a 503 without body.</summary>
    public async Task<ApiResponse> GetAsync(string path)
    {
        if (Process is { Process.HasExited: true } exited && exited.Process.ExitCode != 0)
            throw new InvalidOperationException($"node {Index} exited with {exited.Process.ExitCode}.\n{Output}");
        try
        {
            return await ApiResponse.ReadAsync(Http.GetAsync(path));
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return new ApiResponse(HttpStatusCode.ServiceUnavailable, new HttpResponseMessage().Headers, null, "");
        }
    }

    /// <summary>GET with a service token (the room queries need one).</summary>
    public async Task<ApiResponse> GetAsServiceAsync(string path)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", _tokens.ServiceToken("cluster-test", TimeSpan.FromMinutes(10)));
        return await ApiResponse.ReadAsync(Http.SendAsync(request));
    }

    /// <summary>The <c>cluster</c> part of the node's /api/health; null while it does not answer.</summary>
    public async Task<ClusterHealth?> ClusterViewAsync()
    {
        var health = await GetAsync("/api/health");
        return health.Status == HttpStatusCode.OK ? ClusterHealth.Parse(health.Json.GetProperty("cluster")) : null;
    }

    /// <summary>
    /// Publishes one event through this node's HTTP API with a service token: the HTTP status and, when accepted
    /// (202), the event's seq; a connection refused or reset (the node going) is a 503 without a seq.
    /// </summary>
    public async Task<(HttpStatusCode Status, long? Seq, string Body)> PublishAsync(string bullPenId, string type, object data)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/rooms/{Uri.EscapeDataString(bullPenId)}/events")
        {
            Content = new StringContent(System.Text.Json.JsonSerializer.Serialize(new { type, data }), System.Text.Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", _tokens.ServiceToken("cluster-test", TimeSpan.FromMinutes(10)));
        try
        {
            using var response = await Http.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            long? seq = response.StatusCode == HttpStatusCode.Accepted ? System.Text.Json.JsonDocument.Parse(body).RootElement.GetProperty("seq").GetInt64() : null;
            return (response.StatusCode, seq, body);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return (HttpStatusCode.ServiceUnavailable, null, e.Message);
        }
    }

    /// <summary>A WebSocket client on this node, authenticated as <paramref name="userId"/>; returns it with its auth_success frame.</summary>
    public async Task<(WsClient Client, Frame AuthSuccess)> ConnectAsync(string userId)
    {
        var client = await WsClient.ConnectAsync(WsUri);
        await client.SendAsync(new { type = "auth", data = new { token = _tokens.UserToken(userId, TimeSpan.FromMinutes(10)) } });
        var frame = await client.ReceiveAsync();
        if (frame.Type != "auth_success")
            throw new InvalidOperationException($"node {Index} answered auth with {frame.Raw}");
        return (client, frame);
    }

    public void Dispose()
    {
        Process?.Dispose();
        Http.Dispose();
    }
}

/// <summary>The <c>cluster</c> object of /api/health.</summary>
public sealed record ClusterHealth(string Self, string Status, IReadOnlyList<(string Address, string Status, string[] Roles)> Members, IReadOnlyList<string> Unreachable)
{
    /// <summary>The addresses of the members with status up, in address order.</summary>
    public IReadOnlyList<string> Up => Members.Where(m => m.Status == "up").Select(m => m.Address).Order(StringComparer.Ordinal).ToArray();

    public static ClusterHealth Parse(JsonElement cluster) => new(
        cluster.GetProperty("self").GetString()!,
        cluster.GetProperty("status").GetString()!,
        cluster.GetProperty("members").EnumerateArray().Select(m => (
            m.GetProperty("address").GetString()!,
            m.GetProperty("status").GetString()!,
            m.GetProperty("roles").EnumerateArray().Select(r => r.GetString()!).ToArray())).ToArray(),
        cluster.GetProperty("unreachable").EnumerateArray().Select(u => u.GetString()!).ToArray());

    public override string ToString() =>
        $"self {Self} {Status}; members {string.Join(", ", Members.Select(m => $"{m.Address} {m.Status}"))}; unreachable [{string.Join(", ", Unreachable)}]";
}
