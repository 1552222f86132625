using TradeRoom.LoadTest;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.LoadTest;

/// <summary>A short run of the load tester against the real server, so that the tool cannot rot.</summary>
public class LoadTestSmokeTests
{
    private static LoadTestOptions OptionsFor(TestServer server) => new()
    {
        WsUrl = server.WsUri,
        ApiUrl = new Uri($"http://127.0.0.1:{server.ApiPort}"),
        Secret = TestServer.Secret,
        Quiet = true,
        Drain = TimeSpan.FromSeconds(10),
    };

    [Fact]
    public async Task A_small_steady_run_and_a_burst_deliver_everything_once_in_order()
    {
        await using var server = await TestServer.StartAsync();
        var output = new StringWriter();
        var result = await new LoadTestRunner(OptionsFor(server) with
        {
            Connections = 60,
            Rooms = 3,
            Rate = 20,
            Duration = TimeSpan.FromSeconds(1),
            Burst = 10,
            SourceAddresses = 2,
            ServerPid = Environment.ProcessId, // the server runs in this process
        }, output).RunAsync();

        Assert.True(result.Clean, LoadTestRunner.Format(result));
        Assert.Equal(60, result.ConnectionsOpened);
        // 10 per room in the burst, then 20 per room over the second.
        Assert.Equal(3 * (10 + 20), result.EventsPublished);
        Assert.Equal(60 * 30, result.DeliveriesExpected);
        Assert.Equal(result.DeliveriesExpected, result.Delivered);
        Assert.Equal(result.Delivered, result.LatencyMs.Samples);
        Assert.True(result.LatencyMs.P50 > 0);
        Assert.NotNull(result.ServerCpuMicrosecondsPerDelivery);
        Assert.NotNull(result.ServerKiBPerConnection);
        Assert.Contains("clean: every event arrived once, in order", LoadTestRunner.Format(result));
    }

    [Fact]
    public async Task The_tester_answers_the_servers_pings_so_a_run_longer_than_the_heartbeat_timeout_is_not_closed()
    {
        // Plaintext connections are read on the tester's epoll threads, which answer pings there; unanswered, the
        // server would close every connection with 4000 after a second of silence.
        await using var server = await TestServer.StartAsync("traderoom.websocket { ping-interval = 200ms, heartbeat-timeout = 1s }");
        var result = await new LoadTestRunner(OptionsFor(server) with
        {
            Connections = 20,
            Rooms = 2,
            Rate = 5,
            Duration = TimeSpan.FromSeconds(4),
        }, TextWriter.Null).RunAsync();

        Assert.Equal(0, result.ClosedByServer);
        Assert.True(result.Clean, LoadTestRunner.Format(result));
        Assert.Equal(result.DeliveriesExpected, result.Delivered);
    }

    [Fact]
    public async Task The_servers_metrics_agree_exactly_with_the_testers_own_counts()
    {
        await using var server = await TestServer.StartAsync();
        var result = await new LoadTestRunner(OptionsFor(server) with
        {
            Connections = 30,
            Rooms = 3,
            Rate = 10,
            Duration = TimeSpan.FromSeconds(1),
            Burst = 5,
            MetricsUrl = new Uri($"http://127.0.0.1:{server.ApiPort}/metrics"),
        }, TextWriter.Null).RunAsync();

        Assert.True(result.Clean, LoadTestRunner.Format(result));
        Assert.Equal(3 * (5 + 10), result.EventsPublished);
        Assert.Equal(30 * 15, result.Delivered);
        Assert.Equal(result.EventsPublished, result.ServerEventsPublished);
        Assert.Equal(result.Delivered, result.ServerFramesDelivered);
        Assert.Contains("agree with the tester's counts", LoadTestRunner.Format(result));
    }

    [Fact]
    public async Task Over_wss_and_https_with_a_metrics_token_every_event_arrives_and_the_servers_counts_agree()
    {
        using var certificate = TestCertificate.Create();
        await using var server = await TestServer.StartAsync("traderoom.http.metrics-token = \"bench-token\"", tls: certificate);
        var result = await new LoadTestRunner(OptionsFor(server) with
        {
            ApiUrl = server.Http.BaseAddress!,
            CaCertPath = certificate.CertificatePath,
            Connections = 20,
            Rooms = 2,
            Rate = 10,
            Duration = TimeSpan.FromSeconds(1),
            Burst = 5,
            MetricsUrl = new Uri(server.Http.BaseAddress!, "/metrics"),
            MetricsToken = "bench-token",
        }, TextWriter.Null).RunAsync();

        Assert.Equal("wss", server.WsUri.Scheme);
        Assert.True(result.Clean, LoadTestRunner.Format(result));
        Assert.Equal(20 * 15, result.Delivered);
        Assert.Equal(result.Delivered, result.ServerFramesDelivered);
    }

    [Fact]
    public async Task Over_wss_an_untrusted_certificate_is_a_clear_error()
    {
        using var certificate = TestCertificate.Create();
        await using var server = await TestServer.StartAsync("traderoom.tls.http = off", tls: certificate);
        var e = await Assert.ThrowsAsync<LoadTestException>(() =>
            new LoadTestRunner(OptionsFor(server) with { Connections = 1, Rooms = 1 }, TextWriter.Null).RunAsync());

        Assert.Contains("TLS handshake", e.Message, StringComparison.Ordinal);
        Assert.Contains("--ca-cert", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_server_that_is_down_is_a_clear_error()
    {
        var options = new LoadTestOptions { ApiUrl = new Uri("http://127.0.0.1:1"), WsUrl = new Uri("ws://127.0.0.1:1/ws"), Quiet = true };
        var e = await Assert.ThrowsAsync<LoadTestException>(() => new LoadTestRunner(options, TextWriter.Null).RunAsync());
        Assert.Contains("cannot reach the server's HTTP API", e.Message);
    }

    [Fact]
    public async Task A_wrong_secret_is_a_clear_error()
    {
        await using var server = await TestServer.StartAsync();
        var options = OptionsFor(server) with { Secret = "not-the-server-secret-0123456789-abcdef", Connections = 5, Rooms = 1 };
        var e = await Assert.ThrowsAsync<LoadTestException>(() => new LoadTestRunner(options, TextWriter.Null).RunAsync());
        Assert.Contains("auth refused", e.Message);
        Assert.Contains("invalid_token", e.Message);
    }

    [Fact]
    public async Task The_room_attack_is_held_to_the_budget_while_normal_clients_get_every_event()
    {
        // A small budget, and an empty-room timeout short enough to see the rooms stop but long enough that, without the
        // budget, the attack's rooms would pile up far past it (2 connections x 10 new ids a second x 3 s).
        await using var server = await TestServer.StartAsync(
            "traderoom.limits.new-rooms-per-minute = 5\ntraderoom.rooms.empty-room-timeout = 3s");
        var output = new StringWriter();
        var exit = await RoomAttack.RunAsync(
        [
            "--attack", "rooms", "--ws", server.WsUri.ToString(), "--api", $"http://127.0.0.1:{server.ApiPort}",
            "--secret", TestServer.Secret, "--server-pid", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--attackers", "2", "--normal", "2", "--duration", "4",
        ], output);

        var text = output.ToString();
        Assert.True(exit == 0, text);
        Assert.Contains("verdict: every normal client subscribed and received every event", text);
        // Two connections, five rooms each at once (a few seconds of refill is well under one more each), plus the normal room.
        var peak = int.Parse(System.Text.RegularExpressions.Regex.Match(text, @"rooms running: peak (\d+)").Groups[1].Value,
            System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(peak is >= 2 and <= 2 * 5 + 1, text);
        Assert.Matches(@"attacker replies: error room_limit \d+", text);
        Assert.Matches(@"connection_budget""\} [1-9]", text);
        Assert.Matches(@"rooms running: .* later 1\b", text);
    }

    [Theory]
    [InlineData(new[] { "--connections", "0" }, "--connections needs a whole number >= 1")]
    [InlineData(new[] { "--rate", "fast" }, "--rate needs a number >= 0")]
    [InlineData(new[] { "--ws", "http://x" }, "--ws needs a ws or wss URL")]
    [InlineData(new[] { "--bogus" }, "unknown option --bogus")]
    [InlineData(new[] { "--metrics-url", "ftp://x/metrics" }, "--metrics-url needs a http or https URL")]
    [InlineData(new[] { "--rooms", "5", "--connections", "2" }, "--rooms cannot exceed --connections")]
    public void Bad_options_are_refused_with_a_message(string[] args, string message)
    {
        var e = Assert.Throws<ArgumentException>(() => LoadTestOptions.Parse(args));
        Assert.Equal(message, e.Message);
    }
}
