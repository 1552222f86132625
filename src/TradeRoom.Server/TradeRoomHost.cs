using System.Diagnostics;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Akka.Actor;
using Akka.Hosting;
using Prometheus;
using TradeRoom.Actors;
using TradeRoom.Actors.Auth;
using TradeRoom.Actors.Cluster;
using TradeRoom.Actors.Connections;
using TradeRoom.Actors.Hosting;
using TradeRoom.Actors.Integration;
using TradeRoom.Actors.Monitoring;
using TradeRoom.Actors.Rooms;
using TradeRoom.Protocol;
using TradeRoom.Server.Cluster;
using TradeRoom.Server.Demo;
using TradeRoom.Server.Http;
using TradeRoom.Server.WebSockets;
using TradeRoom.Transport;

namespace TradeRoom.Server;

/// <summary>Builds the server: Kestrel with the HTTP API on api-port and the WebSocket protocol on ws-port, and the actor system behind both.</summary>
public static class TradeRoomHost
{
    /// <summary>The command-line switch that runs the demo trade room (<c>traderoom.demo</c>).</summary>
    public const string DemoSwitch = "--demo";

    /// <param name="hoconOverrides">HOCON that wins over every other source (tests use it for ports and timeouts).</param>
    /// <param name="configure">Last changes to the builder before it builds (tests add a log provider with it).</param>
    public static WebApplication Build(string[] args, string? hoconOverrides = null, Action<WebApplicationBuilder>? configure = null)
    {
        // --demo is a switch of ours, not a key=value for ASP.NET's command-line configuration.
        var demoSwitch = args.Contains(DemoSwitch);
        // The settings are HOCON, read once. ASP.NET's appsettings reload would watch the content root, which holds
        // the SQLite file (data/), and wake on every write to it.
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = [.. args.Where(a => a != DemoSwitch), "--hostBuilder:reloadConfigOnChange=false"],
        });
        var config = ServerConfig.Load(hoconOverrides, demoSwitch);
        // One set of metrics per host, in its own registry: never the process-wide default one.
        var metrics = new TradeRoomMetrics();
        var settings = ServerConfig.Settings(config, builder.Environment.IsDevelopment()).WithMetrics(metrics);
        var authorizer = new RoomAuthorizer(settings.RoomAuthorization, settings.JwtSecret);
        settings = settings.WithRoomAuthorizer(authorizer);
        settings = settings with { Connections = settings.Connections with { Node = NodeName(settings) } };
        PrepareStore(settings.Persistence);
        var demo = DemoSettings.FromConfig(config);
        var tls = TlsSettings.FromConfig(config);
        var schemes = ServerSchemes.For(tls);
        var requestLimits = RequestLimits.FromConfig(config);

        // Request-level framework logs are noise for a realtime server; its own lines say what happened.
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Services.AddSingleton(settings);
        builder.Services.AddSingleton(metrics);
        builder.Services.AddSingleton(new JwtValidator(settings.JwtSecret, settings.JwtClockSkew, settings.JwtRequireExp,
            settings.RoomAuthorization.Mode == RoomAuthorizationMode.Claim ? settings.RoomAuthorization.ClaimName : null, settings.JwtCacheSize));
        builder.Services.AddSingleton(_ => authorizer); // made by a factory, so the container disposes it
        builder.Services.AddSingleton(_ => ServerLag.Start()); // made by a factory, so the container disposes it
        var transport = ServerConfig.Transport(config);
        builder.Services.AddWebSocketTransport<ConnectionBridge>(transport, new TransportMetrics(metrics));
        builder.Services.AddSingleton(demo);
        builder.Services.AddSingleton(schemes);
        var metricsToken = config.GetString("traderoom.http.metrics-token") ?? "";
        builder.Services.AddTradeRoomOpenApi(metricsTokenSet: metricsToken.Length > 0);
        if (demo.Enabled)
            builder.Services.AddHostedService<DemoFeed>();
        builder.Services.AddSingleton(sp => new TradeRoomIntegration(
            sp.GetRequiredService<IRequiredActor<IntegrationActor>>().ActorRef, settings.Rooms.PrivateEventTypes, settings.PublishTimeout));
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = settings.ShutdownTimeout);
        if (settings.Cluster.Enabled)
            builder.Services.AddHostedService<ClusterShutdown>();
        builder.Services.AddAkka(ClusterSettings.SystemName, (akka, services) =>
        {
            akka.AddHocon(config, HoconAddMode.Prepend);
            akka.ConfigureLoggers(loggers =>
            {
                loggers.ClearLoggers();
                loggers.AddLoggerFactory();
            });
            if (settings.Cluster.Enabled)
            {
                akka.AddTradeRoomCluster(settings.Cluster, metrics);
                akka.WithActors((system, _) => ClusterShutdown.CloseSocketsAfterLeaving(system, services.GetRequiredService<OpenSockets>(),
                    services.GetRequiredService<ILoggerFactory>().CreateLogger<ClusterShutdown>()));
            }
            akka.AddTradeRoomPersistence(settings.Persistence, metrics);
            akka.AddTradeRoomActors(settings);
            if (settings.Cluster.Enabled)
                akka.AddTradeRoomPublisherReceptionist();
        });

        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            // The publish endpoints enforce traderoom.http.max-body-size themselves, with a JSON 413.
            kestrel.Limits.MaxRequestBodySize = null;
            // Kestrel's limits on the request head become a backstop; the first middleware enforces ours with a JSON body.
            requestLimits.ApplyBackstop(kestrel.Limits);
            Listen(kestrel, settings.BindAddress, settings.ApiPort, listen =>
            {
                if (tls is { Http: true })
                    UseTls(listen, tls, transport.HandshakeTimeout);
            });
            Listen(kestrel, settings.BindAddress, settings.WsPort, listen =>
            {
                // Kestrel's TLS middleware goes first: the handler then reads and writes plaintext through its pipe only.
                if (tls is not null)
                    UseTls(listen, tls, transport.HandshakeTimeout);
                listen.UseConnectionHandler<WebSocketConnectionHandler>();
            });
        });

        configure?.Invoke(builder);
        var app = builder.Build();
        var started = Stopwatch.StartNew();
        var openSockets = app.Services.GetRequiredService<OpenSockets>();
        // In cluster mode the sockets close later, once the node has left the cluster (ClusterShutdown).
        if (!settings.Cluster.Enabled)
            app.Lifetime.ApplicationStopping.Register(() => openSockets.CloseAll(CloseCodes.GoingAway, "server shutting down"));

        if (!app.Environment.IsDevelopment() && authorizer.Mode == RoomAuthorizationMode.Open)
            app.Lifetime.ApplicationStarted.Register(() => app.Logger.LogWarning(
                "Room authorization is open (traderoom.auth.rooms = open): any authenticated user can follow any bull pen. " +
                "Set claim or callback for private or invite-only competitions (README.md, \"Room authorization\")."));

        app.UseRequestLimits(requestLimits);
        app.UseDotSegmentGuard();
        app.UseDashboardFiles();
        app.UseRouting();

        app.MapGet("/api/health", async (IRequiredActor<RoomDirectory> rooms, IRequiredActor<ConnectionManager> connections, ActorSystem system) =>
        {
            var roomCount = await rooms.ActorRef.Ask<RoomCount>(GetRoomCount.Instance, TimeSpan.FromSeconds(5));
            var connectionCount = await connections.ActorRef.Ask<ConnectionCount>(GetConnectionCount.Instance, TimeSpan.FromSeconds(5));
            // Degraded, not down: connected clients are served; publishes to rooms that cannot store get storage_unavailable.
            var problem = metrics.StorageProblem;
            return Results.Json(new Health(
                problem is null ? "ok" : "degraded",
                problem,
                connectionCount.Connections,
                roomCount.Rooms,
                (long)started.Elapsed.TotalSeconds,
                metrics.EventsPublished,
                metrics.FramesDelivered,
                settings.Cluster.Enabled ? ClusterView.Of(Akka.Cluster.Cluster.Get(system)) : null));
        })
            .WithName("GetHealth")
            .WithSummary("Health and the server's figures")
            .WithTags("Operations")
            .Produces<Health>();
        app.MapReadiness(settings, NodeName(settings));
        app.MapTradeRoomMetrics(metrics.Registry, metricsToken);
        app.MapPublishEndpoints();
        app.MapRoomEndpoints();
        app.MapDashboardConfig(settings, demo, app.Environment.IsDevelopment(), schemes, config);
        if (app.Environment.IsDevelopment())
            app.MapDevTokenEndpoint(settings);
        app.MapTradeRoomOpenApi(settings);
        // "{*path}", not MapFallback's default "{*path:nonfile}": a path that looks like a file gets the JSON 404 too.
        app.MapFallback("{*path}", (HttpContext http) =>
            ApiErrors.Error(404, "not_found", $"no endpoint {http.Request.Method} {http.Request.Path}; see README.md for the API"))
            .ExcludeFromDescription();
        return app;
    }

    /// <summary>How clients and load balancers name this node: its cluster address, or its bind address and WebSocket port.</summary>
    public static string NodeName(TradeRoomSettings settings) =>
        settings.Cluster.Enabled ? settings.Cluster.SelfAddress : $"{settings.BindAddress}:{settings.WsPort}";

    /// <summary>Creates the SQLite file (and its folder) now, so that a path the server cannot write stops the start with a clear reason.</summary>
    private static void PrepareStore(Actors.Storage.PersistenceSettings persistence)
    {
        try
        {
            new Actors.Storage.RoomStore(persistence).Prepare();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or Microsoft.Data.Sqlite.SqliteException)
        {
            throw new StartupException(
                $"the rooms' SQLite file {persistence.SqliteFile} cannot be created or opened ({e.Message}); set TRADEROOM_DB_FILE " +
                "(traderoom.persistence.sqlite.file) to a writable path");
        }
    }

    private static void UseTls(Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions listen, TlsSettings tls, TimeSpan handshakeTimeout) =>
        listen.UseHttps(new Microsoft.AspNetCore.Server.Kestrel.Https.HttpsConnectionAdapterOptions
        {
            ServerCertificate = tls.Certificate,
            ServerCertificateChain = tls.Chain,
            HandshakeTimeout = handshakeTimeout,
        });

    private static void Listen(Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions kestrel, string address, int port,
        Action<Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions> configure)
    {
        if (address.Equals("localhost", StringComparison.OrdinalIgnoreCase))
            kestrel.ListenLocalhost(port, configure);
        else if (IPAddress.TryParse(address, out var ip))
            kestrel.Listen(ip, port, configure);
        else
            throw new StartupException($"bind-address \"{address}\" is neither an IP address nor localhost");
    }
}
