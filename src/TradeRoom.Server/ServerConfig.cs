using System.Collections.Frozen;
using Akka.Configuration;
using TradeRoom.Actors;
using TradeRoom.Actors.Auth;
using TradeRoom.Transport;

namespace TradeRoom.Server;

/// <summary>The server could not start; the message says why and what to change.</summary>
public sealed class StartupException(string message) : Exception(message);

/// <summary>Loads the HOCON in <c>hocon/</c> and the overrides the README documents.</summary>
public static class ServerConfig
{
    /// <summary>The secret used in Development when JWT_SECRET is not set. Never accepted anywhere else.</summary>
    public const string DevelopmentSecret = "traderoom-development-secret-not-for-production";

    /// <summary>Environment variables that override one setting each.</summary>
    private static readonly (string Variable, string Path)[] EnvironmentOverrides =
    [
        ("WS_PORT", "traderoom.ws-port"),
        ("API_PORT", "traderoom.api-port"),
        ("BIND_ADDRESS", "traderoom.bind-address"),
        ("JWT_SECRET", "traderoom.jwt.secret"),
        ("TRADEROOM_AUTH_ROOMS", "traderoom.auth.rooms"),
        ("TLS_CERT", "traderoom.tls.certificate"),
        ("TLS_KEY", "traderoom.tls.key"),
        ("TLS_PFX", "traderoom.tls.pfx"),
        ("TLS_PFX_PASSWORD", "traderoom.tls.pfx-password"),
        ("METRICS_TOKEN", "traderoom.http.metrics-token"),
        ("TRADEROOM_PERSISTENCE", "traderoom.persistence.provider"),
        ("TRADEROOM_DB_FILE", "traderoom.persistence.sqlite.file"),
        ("TRADEROOM_DB", "traderoom.persistence.postgresql.connection-string"),
        ("CLUSTER_HOSTNAME", "traderoom.cluster.hostname"),
        ("CLUSTER_PORT", "traderoom.cluster.port"),
    ];

    /// <summary>
    /// traderoom.conf over akka.conf (both beside the binary); the environment variables above win over those,
    /// a file named by TRADEROOM_CONFIG over all of them, the demo switch (<paramref name="demo"/>, from <c>--demo</c>,
    /// or <c>TRADEROOM_DEMO</c>) over that, and <paramref name="overrides"/> (tests) over everything.
    /// </summary>
    public static Config Load(string? overrides = null, bool demo = false)
    {
        var directory = Path.Combine(AppContext.BaseDirectory, "hocon");
        var config = Parse(Path.Combine(directory, "traderoom.conf"))
            .WithFallback(Parse(Path.Combine(directory, "akka.conf")));

        foreach (var (variable, path) in EnvironmentOverrides)
        {
            if (Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value)
                config = ConfigurationFactory.ParseString($"{path} = {Quote(value)}").WithFallback(config);
        }
        if (Switch("TRADEROOM_CLUSTER", "on to run this node in cluster mode, off for one process") is { } cluster)
            config = ConfigurationFactory.ParseString($"traderoom.cluster.enabled = {(cluster ? "on" : "off")}").WithFallback(config);
        if (Environment.GetEnvironmentVariable("CLUSTER_SEEDS") is { Length: > 0 } seeds)
        {
            var list = seeds.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(Quote);
            config = ConfigurationFactory.ParseString($"traderoom.cluster.seeds = [{string.Join(", ", list)}]").WithFallback(config);
        }

        var extraFile = Environment.GetEnvironmentVariable("TRADEROOM_CONFIG");
        if (!string.IsNullOrEmpty(extraFile))
        {
            if (!File.Exists(extraFile))
                throw new StartupException($"TRADEROOM_CONFIG names {extraFile}, which does not exist");
            config = Parse(extraFile).WithFallback(config);
        }
        if (demo || DemoVariableIsOn())
            config = ConfigurationFactory.ParseString("traderoom.demo.enabled = on").WithFallback(config);
        if (!string.IsNullOrWhiteSpace(overrides))
            config = ConfigurationFactory.ParseString(overrides).WithFallback(config);
        return config;
    }

    /// <summary>The settings, with the JWT secret checked: the development secret stands in only in Development.</summary>
    public static TradeRoomSettings Settings(Config config, bool isDevelopment)
    {
        TradeRoomSettings settings;
        try
        {
            settings = TradeRoomSettings.FromConfig(config);
        }
        catch (Exception e) when (e is ConfigurationException or FormatException or OverflowException)
        {
            throw new StartupException($"the settings are invalid: {e.Message}");
        }
        if (settings.JwtCacheSize < 0)
            throw new StartupException($"traderoom.jwt.cache-size is {settings.JwtCacheSize}; it must be 0 (off) or a number of tokens");

        if (string.IsNullOrEmpty(settings.JwtSecret))
        {
            if (!isDevelopment)
                throw new StartupException(
                    "JWT_SECRET is not set. Outside Development the server needs the platform's HS256 secret (at least 32 bytes): " +
                    "set JWT_SECRET, or traderoom.jwt.secret in a TRADEROOM_CONFIG file.");
            settings = settings with { JwtSecret = DevelopmentSecret };
        }

        try
        {
            JwtValidator.SigningKey(settings.JwtSecret);
        }
        catch (ArgumentException e)
        {
            throw new StartupException(e.Message);
        }
        return settings;
    }

    /// <summary>The WebSocket transport's options, from <c>traderoom.websocket</c>.</summary>
    public static TransportOptions Transport(Config config)
    {
        var c = config.GetConfig("traderoom.websocket");
        var writeBufferSize = c.GetByteSize("write-buffer-size");
        if (writeBufferSize is not (>= 1024 and <= 16 << 20))
            throw new StartupException($"traderoom.websocket.write-buffer-size is {writeBufferSize}; it must be between 1KiB and 16MiB");
        var gcAfterCloses = c.GetInt("gc-after-closes");
        if (gcAfterCloses < 0)
            throw new StartupException($"traderoom.websocket.gc-after-closes is {gcAfterCloses}; it must be 0 (off) or a number of connections");
        return new TransportOptions
        {
            MaxHandshakeSize = checked((int)c.GetByteSize("max-handshake-size")!.Value),
            HandshakeTimeout = c.GetTimeSpan("handshake-timeout"),
            AllowedOrigins = c.GetStringList("allowed-origins").ToArray(),
            CloseTimeout = c.GetTimeSpan("close-timeout"),
            PingInterval = c.GetTimeSpan("ping-interval"),
            HeartbeatTimeout = c.GetTimeSpan("heartbeat-timeout"),
            OutboundQueueLimit = c.GetByteSize("outbound-queue-limit")!.Value,
            SlowConsumerGrace = c.GetTimeSpan("slow-consumer-grace"),
            SlowConsumerHardLimit = c.GetByteSize("slow-consumer-hard-limit")!.Value,
            SlowConsumerLinger = c.GetTimeSpan("slow-consumer-linger"),
            ConflatedEventTypes = c.GetStringList("conflated-event-types").ToFrozenSet(StringComparer.Ordinal),
            WriteBufferSize = (int)writeBufferSize.Value,
            GcAfterCloses = gcAfterCloses,
        };
    }

    /// <summary>TRADEROOM_DEMO: 1/true/on/yes switch the demo on; unset, empty, 0/false/off/no leave it as configured.</summary>
    private static bool DemoVariableIsOn()
    {
        var value = Environment.GetEnvironmentVariable("TRADEROOM_DEMO")?.Trim().ToLowerInvariant();
        return value switch
        {
            null or "" or "0" or "false" or "off" or "no" => false,
            "1" or "true" or "on" or "yes" => true,
            _ => throw new StartupException($"TRADEROOM_DEMO is \"{value}\"; use 1 to run the demo trade room, or leave it unset"),
        };
    }

    /// <summary>An on/off variable: 1/true/on/yes or 0/false/off/no; null when unset or empty (the HOCON decides).</summary>
    private static bool? Switch(string variable, string meaning)
    {
        var value = Environment.GetEnvironmentVariable(variable)?.Trim().ToLowerInvariant();
        return value switch
        {
            null or "" => null,
            "1" or "true" or "on" or "yes" => true,
            "0" or "false" or "off" or "no" => false,
            _ => throw new StartupException($"{variable} is \"{value}\"; use {meaning}"),
        };
    }

    private static string Quote(string value) => System.Text.Json.JsonSerializer.Serialize(value);

    private static Config Parse(string path)
    {
        if (!File.Exists(path))
            throw new StartupException($"missing settings file {path}");
        return ConfigurationFactory.ParseString(File.ReadAllText(path));
    }
}
