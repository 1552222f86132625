using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using TradeRoom.Server;
using TradeRoom.Server.Http;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Integration;

/// <summary>
/// The server's startup rules: where settings come from, when it refuses to start, and how the real binary starts
/// and stops. These tests set process-wide environment variables, so they run alone.
/// </summary>
[Collection(ProcessEnvironmentCollection.Name)]
public class StartupTests
{
    private const string GoodSecret = "a-production-secret-of-more-than-32-bytes";

    /// <summary>Every variable <see cref="ServerConfig.Load"/> reads, unset.</summary>
    private static EnvironmentScope CleanEnvironment(params (string Name, string? Value)[] set) =>
        new([("WS_PORT", null), ("API_PORT", null), ("BIND_ADDRESS", null), ("JWT_SECRET", null), ("TRADEROOM_CONFIG", null), ("TRADEROOM_DEMO", null),
            ("TRADEROOM_AUTH_ROOMS", null), ("TLS_CERT", null), ("TLS_KEY", null), ("TLS_PFX", null), ("TLS_PFX_PASSWORD", null), ("METRICS_TOKEN", null),
            ("TRADEROOM_PERSISTENCE", null), ("TRADEROOM_DB_FILE", null), ("TRADEROOM_DB", null),
            ("TRADEROOM_CLUSTER", null), ("CLUSTER_HOSTNAME", null), ("CLUSTER_PORT", null), ("CLUSTER_SEEDS", null), .. set]);

    // ---------------------------------------------------------------- cluster mode

    [Fact]
    public void Cluster_mode_is_off_by_default()
    {
        using var _ = CleanEnvironment();
        var settings = ServerConfig.Settings(ServerConfig.Load(), isDevelopment: true);
        Assert.False(settings.Cluster.Enabled);
    }

    [Fact]
    public void The_cluster_variables_set_mode_address_and_seeds()
    {
        using var _ = CleanEnvironment(("TRADEROOM_CLUSTER", "on"), ("CLUSTER_HOSTNAME", "10.0.0.7"), ("CLUSTER_PORT", "5053"),
            ("CLUSTER_SEEDS", "akka.tcp://traderoom@10.0.0.5:4053, akka.tcp://traderoom@10.0.0.6:4053"));

        var cluster = ServerConfig.Settings(ServerConfig.Load(), isDevelopment: true).Cluster;

        Assert.True(cluster.Enabled);
        Assert.Equal("akka.tcp://traderoom@10.0.0.7:5053", cluster.SelfAddress);
        Assert.Equal(["akka.tcp://traderoom@10.0.0.5:4053", "akka.tcp://traderoom@10.0.0.6:4053"], cluster.Seeds);
    }

    [Theory]
    [InlineData("TRADEROOM_CLUSTER", "maybe", "TRADEROOM_CLUSTER")]
    [InlineData("CLUSTER_SEEDS", "127.0.0.1:4053", "akka.tcp://traderoom@host:port")]
    [InlineData("CLUSTER_SEEDS", "akka.tcp://othersystem@127.0.0.1:4053", "akka.tcp://traderoom@host:port")]
    [InlineData("CLUSTER_PORT", "0", "CLUSTER_PORT")]
    public void A_bad_cluster_setting_stops_startup_saying_what_to_set(string variable, string value, string named)
    {
        using var _ = CleanEnvironment(("TRADEROOM_CLUSTER", "on"), (variable, value));
        var e = Assert.Throws<StartupException>(() => ServerConfig.Settings(ServerConfig.Load(), isDevelopment: true));
        Assert.Contains(named, e.Message, StringComparison.Ordinal);
    }

    // ---------------------------------------------------------------- storage

    [Fact]
    public void A_sqlite_file_the_server_cannot_create_stops_startup_naming_TRADEROOM_DB_FILE()
    {
        using var _ = CleanEnvironment(("JWT_SECRET", GoodSecret));
        var e = Assert.Throws<StartupException>(() => TradeRoomHost.Build([], """traderoom.persistence.sqlite.file = "/proc/no-such-folder/traderoom.db" """));
        Assert.Contains("TRADEROOM_DB_FILE", e.Message, StringComparison.Ordinal);
        Assert.Contains("/proc/no-such-folder/traderoom.db", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("traderoom.persistence.provider = mongodb", "sqlite (the default), postgresql or memory")]
    [InlineData("traderoom.persistence.provider = postgresql", "TRADEROOM_DB")]
    [InlineData("traderoom.persistence.sqlite.synchronous = off", "normal (the default) or full")]
    public void A_bad_storage_setting_stops_startup_saying_what_to_set(string hocon, string named)
    {
        using var _ = CleanEnvironment();
        var e = Assert.Throws<StartupException>(() => ServerConfig.Settings(ServerConfig.Load(hocon + "\ntraderoom.jwt.secret = \"" + GoodSecret + "\""), isDevelopment: false));
        Assert.Contains(named, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_negative_jwt_cache_size_stops_startup_naming_the_setting()
    {
        using var _ = CleanEnvironment();
        var e = Assert.Throws<StartupException>(() => ServerConfig.Settings(ServerConfig.Load("traderoom.jwt.cache-size = -1\ntraderoom.jwt.secret = \"" + GoodSecret + "\""), isDevelopment: false));
        Assert.Contains("traderoom.jwt.cache-size", e.Message, StringComparison.Ordinal);
    }

    // ---------------------------------------------------------------- ServerConfig.Settings: the JWT secret

    [Fact]
    public void Without_a_secret_outside_Development_startup_is_refused_naming_JWT_SECRET()
    {
        using var _ = CleanEnvironment();
        var config = ServerConfig.Load();

        var e = Assert.Throws<StartupException>(() => ServerConfig.Settings(config, isDevelopment: false));

        Assert.Contains("JWT_SECRET", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_a_secret_in_Development_the_development_secret_is_used()
    {
        using var _ = CleanEnvironment();

        var settings = ServerConfig.Settings(ServerConfig.Load(), isDevelopment: true);

        Assert.Equal(ServerConfig.DevelopmentSecret, settings.JwtSecret);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_configured_secret_is_used_as_is_in_and_outside_Development(bool isDevelopment)
    {
        using var _ = CleanEnvironment();

        var settings = ServerConfig.Settings(ServerConfig.Load($"traderoom.jwt.secret = \"{GoodSecret}\""), isDevelopment);

        Assert.Equal(GoodSecret, settings.JwtSecret);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_10_byte_secret_is_refused_saying_32_bytes_are_needed(bool isDevelopment)
    {
        using var _ = CleanEnvironment();
        var config = ServerConfig.Load("traderoom.jwt.secret = \"0123456789\"");

        var e = Assert.Throws<StartupException>(() => ServerConfig.Settings(config, isDevelopment));

        Assert.Contains("32 bytes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Secret_length_is_counted_in_UTF8_bytes_with_32_the_minimum()
    {
        using var _ = CleanEnvironment();
        TradeRoom.Actors.TradeRoomSettings SettingsWith(string secret) =>
            ServerConfig.Settings(ServerConfig.Load($"traderoom.jwt.secret = \"{secret}\""), isDevelopment: false);

        Assert.Throws<StartupException>(() => SettingsWith(new string('s', 31)));
        Assert.Equal(new string('s', 32), SettingsWith(new string('s', 32)).JwtSecret);
        // 16 characters, 32 bytes in UTF-8.
        Assert.Equal(new string('é', 16), SettingsWith(new string('é', 16)).JwtSecret);
        Assert.Throws<StartupException>(() => SettingsWith(new string('é', 15)));
    }

    // ---------------------------------------------------------------- ServerConfig.Load: where settings come from

    [Fact]
    public void Without_environment_variables_the_hocon_defaults_apply()
    {
        using var _ = CleanEnvironment();

        var settings = ServerConfig.Settings(ServerConfig.Load(), isDevelopment: true);

        Assert.Equal((4001, 4000, "0.0.0.0"), (settings.WsPort, settings.ApiPort, settings.BindAddress));
        Assert.Equal(1024 * 1024, settings.MaxBodySize);
    }

    [Fact]
    public void WS_PORT_API_PORT_JWT_SECRET_and_BIND_ADDRESS_override_the_hocon_file()
    {
        using var _ = CleanEnvironment(("WS_PORT", "15101"), ("API_PORT", "15100"), ("JWT_SECRET", GoodSecret), ("BIND_ADDRESS", "127.0.0.1"));

        var settings = ServerConfig.Settings(ServerConfig.Load(), isDevelopment: false);

        Assert.Equal((15101, 15100, "127.0.0.1", GoodSecret), (settings.WsPort, settings.ApiPort, settings.BindAddress, settings.JwtSecret));
    }

    [Fact]
    public void TLS_PFX_and_TLS_PFX_PASSWORD_load_the_certificate_and_METRICS_TOKEN_sets_the_token()
    {
        using var certificate = TestCertificate.Create();
        using var _ = CleanEnvironment(("TLS_PFX", certificate.PfxPath), ("TLS_PFX_PASSWORD", TestCertificate.PfxPassword), ("METRICS_TOKEN", "scrape-me"));

        var config = ServerConfig.Load();
        var tls = TlsSettings.FromConfig(config);

        Assert.Equal(certificate.Certificate.Thumbprint, tls!.Certificate.Thumbprint);
        Assert.True(tls.Http);
        Assert.Equal("scrape-me", config.GetString("traderoom.http.metrics-token"));
    }

    [Fact]
    public void Without_TLS_variables_or_settings_there_is_no_TLS()
    {
        using var _ = CleanEnvironment();

        Assert.Null(TlsSettings.FromConfig(ServerConfig.Load()));
    }

    [Fact]
    public void TLS_CERT_naming_a_missing_file_stops_startup_naming_the_variable_and_the_path()
    {
        using var _ = CleanEnvironment(("TLS_CERT", "/nonexistent/env.crt"), ("TLS_KEY", "/nonexistent/env.key"));

        var e = Assert.Throws<StartupException>(() => TlsSettings.FromConfig(ServerConfig.Load()));

        Assert.Contains("TLS_CERT", e.Message, StringComparison.Ordinal);
        Assert.Contains("/nonexistent/env.crt", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void JWT_SECRET_with_quotes_backslashes_and_HOCON_syntax_is_taken_verbatim()
    {
        const string secret = "q\"uote\\back+slash<é> ${traderoom.ws-port} # not a comment // nor this";
        using var _ = CleanEnvironment(("JWT_SECRET", secret));

        var settings = ServerConfig.Settings(ServerConfig.Load(), isDevelopment: false);

        Assert.Equal(secret, settings.JwtSecret);
    }

    [Fact]
    public void Overrides_passed_to_Load_win_over_environment_variables()
    {
        using var _ = CleanEnvironment(("WS_PORT", "15101"), ("JWT_SECRET", GoodSecret));

        var settings = ServerConfig.Settings(ServerConfig.Load("traderoom.ws-port = 15201"), isDevelopment: false);

        Assert.Equal(15201, settings.WsPort);
        Assert.Equal(GoodSecret, settings.JwtSecret);
    }

    [Fact]
    public void A_TRADEROOM_CONFIG_file_wins_over_environment_variables_and_overrides_win_over_it()
    {
        var file = Path.Combine(Path.GetTempPath(), $"traderoom-{Guid.NewGuid():N}.conf");
        File.WriteAllText(file, "traderoom { ws-port = 15301, api-port = 15300, http.max-body-size = 2KiB }");
        try
        {
            using var _ = CleanEnvironment(("WS_PORT", "15101"), ("API_PORT", "15100"), ("JWT_SECRET", GoodSecret), ("TRADEROOM_CONFIG", file));

            var settings = ServerConfig.Settings(ServerConfig.Load("traderoom.api-port = 15400"), isDevelopment: false);

            Assert.Equal((15301, 15400, 2048L, GoodSecret), (settings.WsPort, settings.ApiPort, settings.MaxBodySize, settings.JwtSecret));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void A_TRADEROOM_CONFIG_naming_a_missing_file_refuses_startup_naming_the_file()
    {
        var missing = Path.Combine(Path.GetTempPath(), $"traderoom-missing-{Guid.NewGuid():N}.conf");
        using var _ = CleanEnvironment(("TRADEROOM_CONFIG", missing));

        var e = Assert.Throws<StartupException>(() => ServerConfig.Load());

        Assert.Contains(missing, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("kestrel-backstop-factor = 64", "kestrel-backstop-factor")]   // 32 KiB of headers times 64: over Kestrel's 1 MiB request buffer
    [InlineData("max-request-line-size = 0", "max-request-line-size")]
    [InlineData("max-request-header-count = -1", "max-request-header-count")]
    [InlineData("max-request-headers-size = lots", "max-request-headers-size")]
    public void A_request_head_limit_Kestrel_cannot_take_refuses_startup_naming_the_setting(string setting, string named)
    {
        using var _ = CleanEnvironment();

        var e = Assert.Throws<StartupException>(() => RequestLimits.FromConfig(ServerConfig.Load($"traderoom.http.{setting}")));

        Assert.Contains(named, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_non_numeric_WS_PORT_refuses_startup_with_a_StartupException()
    {
        using var _ = CleanEnvironment(("WS_PORT", "not-a-port"), ("JWT_SECRET", GoodSecret));

        Assert.Throws<StartupException>(() => ServerConfig.Settings(ServerConfig.Load(), isDevelopment: false));
    }

    // ---------------------------------------------------------------- the real binary

    [Fact]
    public async Task Server_process_in_Production_without_JWT_SECRET_exits_non_zero_naming_JWT_SECRET_on_stderr()
    {
        using var server = ServerProcess.Start(new Dictionary<string, string>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["WS_PORT"] = ServerProcess.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["API_PORT"] = ServerProcess.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["BIND_ADDRESS"] = "127.0.0.1",
        });

        Assert.True(await server.WaitForExitAsync(TimeSpan.FromSeconds(30)), $"still running after 30 s; stdout:\n{server.Stdout}");
        Assert.NotEqual(0, server.Process.ExitCode);
        await Eventually.MatchAsync(() => Task.FromResult(server.Stderr), e => e.Contains("JWT_SECRET", StringComparison.Ordinal), "stderr names JWT_SECRET", TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task Server_process_whose_api_port_is_taken_exits_non_zero_saying_so()
    {
        using var holder = new TcpListener(IPAddress.Loopback, 0);
        holder.Start();
        var taken = ((IPEndPoint)holder.LocalEndpoint).Port;
        using var server = ServerProcess.Start(new Dictionary<string, string>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["JWT_SECRET"] = GoodSecret,
            ["WS_PORT"] = ServerProcess.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["API_PORT"] = taken.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["BIND_ADDRESS"] = "127.0.0.1",
        });

        Assert.True(await server.WaitForExitAsync(TimeSpan.FromSeconds(30)), $"still running after 30 s; stdout:\n{server.Stdout}\nstderr:\n{server.Stderr}");
        Assert.NotEqual(0, server.Process.ExitCode);
        await Eventually.MatchAsync(() => Task.FromResult(server.Stderr), e => e.Contains("API_PORT", StringComparison.Ordinal), "stderr names API_PORT", TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task Server_process_whose_cluster_port_is_taken_exits_non_zero_naming_CLUSTER_PORT()
    {
        using var holder = new TcpListener(IPAddress.Loopback, 0);
        holder.Start();
        var taken = ((IPEndPoint)holder.LocalEndpoint).Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        using var server = ServerProcess.Start(new Dictionary<string, string>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["JWT_SECRET"] = GoodSecret,
            ["WS_PORT"] = ServerProcess.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["API_PORT"] = ServerProcess.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["BIND_ADDRESS"] = "127.0.0.1",
            ["TRADEROOM_PERSISTENCE"] = "memory",
            ["TRADEROOM_CLUSTER"] = "on",
            ["CLUSTER_PORT"] = taken,
            ["CLUSTER_SEEDS"] = $"akka.tcp://traderoom@127.0.0.1:{taken}",
        });

        Assert.True(await server.WaitForExitAsync(TimeSpan.FromSeconds(30)), $"still running after 30 s; stdout:\n{server.Stdout}\nstderr:\n{server.Stderr}");
        Assert.Equal(1, server.Process.ExitCode);
        await Eventually.MatchAsync(() => Task.FromResult(server.Stderr), e => e.Contains("TradeRoom cannot start", StringComparison.Ordinal) && e.Contains("CLUSTER_PORT", StringComparison.Ordinal),
            "stderr naming CLUSTER_PORT", TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task Server_process_in_Development_prints_a_working_service_token_and_on_SIGTERM_closes_sockets_with_1001_and_exits_0()
    {
        var wsPort = ServerProcess.FreePort();
        var apiPort = ServerProcess.FreePort();
        using var server = ServerProcess.Start(new Dictionary<string, string>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Development",
            ["WS_PORT"] = wsPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["API_PORT"] = apiPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["BIND_ADDRESS"] = "127.0.0.1",
        });

        var userLine = await server.WaitForLineAsync(l => l.Contains("user token", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        var serviceLine = await server.WaitForLineAsync(l => l.Contains("service token", StringComparison.Ordinal), TimeSpan.FromSeconds(5));
        var userToken = TokenAfterColon(userLine);
        var serviceToken = TokenAfterColon(serviceLine);

        await using var client = await WsClient.ConnectAsync(new Uri($"ws://127.0.0.1:{wsPort}/ws"));
        await client.SendAsync(new { type = "auth", data = new { token = userToken } });
        Assert.Equal("auth_success", (await client.ReceiveAsync()).Type);
        await client.SendAsync(new { type = "subscribe_room", data = new { bullPenId = "dev-room" } });
        Assert.Equal("subscribed", (await client.ReceiveAsync()).Type);

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{apiPort}") };
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/rooms/dev-room/events")
        {
            Content = new StringContent("""{"type":"room_started","data":{"by":"test"}}""", System.Text.Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", serviceToken);
        var published = await ApiResponse.ReadAsync(http.SendAsync(request));
        Assert.Equal(HttpStatusCode.Accepted, published.Status);
        var frame = await client.ReceiveAsync();
        Assert.Equal(("room_started", "dev-room", 1L), (frame.Type, frame.BullPenId!, frame.Seq));

        var stopping = Stopwatch.StartNew();
        await server.TerminateAsync();

        Assert.Equal(1001, await client.ReceiveCloseAsync(TimeSpan.FromSeconds(10)));
        // Answer the close as any well-behaved client does.
        using (var closeTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
            await client.Socket.CloseOutputAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, "", closeTimeout.Token);
        Assert.True(await server.WaitForExitAsync(TimeSpan.FromSeconds(Math.Max(0, 10 - stopping.Elapsed.TotalSeconds))),
            $"still running 10 s after SIGTERM; stdout:\n{server.Stdout}\nstderr:\n{server.Stderr}");
        Assert.Equal(0, server.Process.ExitCode);
    }

    private static string TokenAfterColon(string line)
    {
        var token = line[(line.LastIndexOf(':') + 1)..].Trim();
        Assert.Equal(3, token.Split('.').Length);
        return token;
    }
}
