using TradeRoom.Contracts;
using System.Text;
using System.Text.Json;
using Akka.Actor;
using Akka.Cluster;
using Akka.Hosting;
using Akka.TestKit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using TradeRoom.Actors;
using TradeRoom.Actors.Hosting;
using TradeRoom.Actors.Integration;
using TradeRoom.Actors.Monitoring;
using TradeRoom.Actors.Rooms;
using TradeRoom.Actors.Storage;
using TradeRoom.Server;
using TradeRoom.Tests.Support;
using Xunit.Abstractions;

namespace TradeRoom.Tests.Cluster;

/// <summary>
/// Real actor systems in this test process forming one Akka.Cluster on loopback, each wired as the server wires its
/// own: the HOCON in hocon/ through <see cref="ServerConfig.Load"/>, then <see cref="ClusterHosting.AddTradeRoomCluster"/>,
/// <see cref="TradeRoomActorsExtensions.AddTradeRoomPersistence"/> and <see cref="TradeRoomActorsExtensions.AddTradeRoomActors"/>
/// in an Akka.Hosting host. All share one SQLite file, so a room that stops on one system recovers on any other with
/// its epoch and seq. The first system is the seed of all. Each system also carries the TestKit's config, so test
/// probes can live in it and stand for its connections.
/// </summary>
public sealed class ClusterSystems : IAsyncDisposable
{
    /// <summary>A room's events are public (not in rooms.private-event-types): every subscriber gets each of them.</summary>
    public const string PublicType = "ranking_changed";

    private readonly List<ClusterSystem> _systems = [];
    private readonly string _folder = TestDatabase.NewSqliteFolder();
    private readonly ITestOutputHelper _output;
    private readonly string? _hocon;
    private readonly int _seedPort = ServerProcess.FreePort();

    private ClusterSystems(ITestOutputHelper output, string? hocon) => (_output, _hocon) = (output, hocon);

    public ClusterSystem this[int index] => _systems[index];

    /// <summary>Starts <paramref name="count"/> systems one after another, and waits until every one sees all of them Up.</summary>
    /// <param name="hocon">Extra HOCON for every system, over the server's files.</param>
    public static async Task<ClusterSystems> StartAsync(int count, ITestOutputHelper output, string? hocon = null)
    {
        var cluster = new ClusterSystems(output, hocon);
        try
        {
            for (var i = 0; i < count; i++)
                cluster._systems.Add(await cluster.StartSystemAsync(i == 0 ? cluster._seedPort : ServerProcess.FreePort()));
            await cluster.WaitUntilAllUpAsync();
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>The system whose cluster address is <paramref name="address"/> (as <see cref="RoomDetails.Node"/> names it).</summary>
    public ClusterSystem At(string? address) =>
        _systems.Single(s => s.Address.ToString() == address);

    /// <summary>The running system other than <paramref name="system"/> (of two).</summary>
    public ClusterSystem Other(ClusterSystem system) => _systems.Single(s => s != system && !s.Stopped);

    private async Task<ClusterSystem> StartSystemAsync(int port)
    {
        var seed = $"akka.tcp://{TradeRoom.Actors.Cluster.ClusterSettings.SystemName}@127.0.0.1:{_seedPort}";
        var config = ServerConfig.Load($$"""
            traderoom.cluster {
              enabled = on
              hostname = "127.0.0.1"
              port = {{port}}
              seeds = [{{JsonSerializer.Serialize(seed)}}]
            }
            traderoom.persistence {
              provider = sqlite
              sqlite.file = {{JsonSerializer.Serialize(Path.Combine(_folder, "rooms.db"))}}
            }
            {{_hocon}}
            """);
        var settings = ServerConfig.Settings(config, isDevelopment: true).WithMetrics(new TradeRoomMetrics());
        new RoomStore(settings.Persistence).Prepare();
        var logs = new CapturingLoggerProvider();
        var host = new HostBuilder()
            .ConfigureLogging(logging => logging.ClearProviders().AddProvider(logs).SetMinimumLevel(LogLevel.Information))
            .ConfigureServices(services => services.AddAkka(TradeRoom.Actors.Cluster.ClusterSettings.SystemName, (akka, _) =>
            {
                akka.AddHocon(config, HoconAddMode.Prepend);
                akka.AddHocon(TestKitBase.DefaultConfig, HoconAddMode.Append);
                akka.ConfigureLoggers(loggers =>
                {
                    loggers.ClearLoggers();
                    loggers.AddLoggerFactory();
                });
                akka.AddTradeRoomCluster(settings.Cluster, settings.Metrics);
                akka.AddTradeRoomPersistence(settings.Persistence);
                akka.AddTradeRoomActors(settings);
            }))
            .Build();
        var system = new ClusterSystem(_systems.Count, host, settings, logs);
        await host.StartAsync();
        return system;
    }

    private async Task WaitUntilAllUpAsync()
    {
        var expected = _systems.Count;
        await Task.WhenAll(_systems.Select(s => Eventually.MatchAsync(
            () => Task.FromResult(s.Cluster.State.Members.Count(m => m.Status == MemberStatus.Up)),
            up => up == expected, $"system {s.Index} seeing {expected} members up", TimeSpan.FromSeconds(30))));
    }

    public async ValueTask DisposeAsync()
    {
        // The newest first, one at a time: the ones left see each leave through, so none waits out cluster-exiting.
        foreach (var system in Enumerable.Reverse(_systems))
            await system.StopAsync();
        foreach (var system in _systems)
        {
            foreach (var line in system.Logs.Lines)
                _output.WriteLine($"[system {system.Index}] {line}");
            system.Host.Dispose();
        }
        TestDatabase.Delete(_folder);
    }
}

/// <summary>One actor system of <see cref="ClusterSystems"/>: its host, its actors as the server registers them, and its logs.</summary>
public sealed class ClusterSystem(int index, IHost host, TradeRoomSettings settings, CapturingLoggerProvider logs)
{
    public int Index { get; } = index;
    public IHost Host { get; } = host;
    public TradeRoomSettings Settings { get; } = settings;
    public CapturingLoggerProvider Logs { get; } = logs;
    public bool Stopped { get; private set; }

    public ActorSystem System => Host.Services.GetRequiredService<ActorSystem>();
    public Akka.Cluster.Cluster Cluster => Akka.Cluster.Cluster.Get(System);
    public Address Address => Cluster.SelfAddress;
    private ActorRegistry Registry => Host.Services.GetRequiredService<ActorRegistry>();

    /// <summary>Where this system's connections subscribe.</summary>
    public IActorRef Relays => Registry.Get<RoomRelays>();

    /// <summary>Where this system's events enter (HTTP publishing and the contracts' publishers use it).</summary>
    public IActorRef Integration => Registry.Get<IntegrationActor>();

    /// <summary>Room queries, cluster-wide.</summary>
    public IActorRef Directory => Registry.Get<RoomDirectory>();

    /// <summary>Publishes one public event with <c>{"n":<paramref name="n"/>}</c>; the room's answer (null: none in time).</summary>
    public async Task<PublishResult?> PublishAsync(string bullPenId, int n, TimeSpan timeout)
    {
        try
        {
            return await Integration.Ask<PublishResult>(
                new PublishEvent(bullPenId, ClusterSystems.PublicType, Encoding.UTF8.GetBytes($"{{\"n\":{n}}}")), timeout);
        }
        catch (AskTimeoutException)
        {
            return null;
        }
    }

    /// <summary>Stops the host: CoordinatedShutdown leaves the cluster gracefully, handing this system's shards off.</summary>
    public async Task StopAsync()
    {
        if (Stopped)
            return;
        Stopped = true;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await Host.StopAsync(timeout.Token);
    }
}
