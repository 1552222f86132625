using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using TradeRoom.Actors.Auth;
using TradeRoom.BenchReference;
using TradeRoom.LoadTest;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.LoadTest;

/// <summary>
/// The benchmark's reference server (bench/reference) answers the load tester as the project does, so that bench/run.sh
/// can run every scenario against both with the same tester and options.
/// </summary>
public sealed class ReferenceServerTests : IAsyncLifetime
{
    private readonly int _wsPort = ServerProcess.FreePort();
    private readonly int _apiPort = ServerProcess.FreePort();
    private WebApplication? _reference;

    public async Task InitializeAsync()
    {
        _reference = ReferenceServer.Build(IPAddress.Loopback, _wsPort, _apiPort, TestServer.Secret);
        await _reference.StartAsync();
    }

    public async Task DisposeAsync()
    {
        if (_reference is not null)
            await _reference.DisposeAsync();
    }

    private LoadTestOptions Options => new()
    {
        WsUrl = new Uri($"ws://127.0.0.1:{_wsPort}/ws"),
        ApiUrl = new Uri($"http://127.0.0.1:{_apiPort}"),
        Secret = TestServer.Secret,
        Quiet = true,
        Drain = TimeSpan.FromSeconds(10),
    };

    [Fact]
    public async Task The_load_tester_runs_against_it_unchanged_and_every_event_arrives_once_in_order_as_its_metrics_count()
    {
        var result = await new LoadTestRunner(Options with
        {
            Connections = 40,
            Rooms = 4,
            Rate = 10,
            Duration = TimeSpan.FromSeconds(1),
            Burst = 5,
            ServerPid = Environment.ProcessId, // the reference runs in this process
            MetricsUrl = new Uri($"http://127.0.0.1:{_apiPort}/metrics"),
        }, TextWriter.Null).RunAsync();

        var summary = LoadTestRunner.Format(result);
        Assert.True(result.Clean, summary);
        Assert.Equal(40, result.ConnectionsOpened);
        Assert.Equal(4 * (5 + 10), result.EventsPublished);
        Assert.Equal(40 * 15, result.Delivered);
        Assert.Equal(result.Delivered, result.LatencyMs.Samples);
        Assert.Equal(result.EventsPublished, result.ServerEventsPublished);
        Assert.Equal(result.Delivered, result.ServerFramesDelivered);
        // The tester's own CPU per delivery, beside the server's, and their sum.
        Assert.NotNull(result.LoadTesterCpuMicrosecondsPerDelivery);
        Assert.Equal(result.ServerCpuMicrosecondsPerDelivery!.Value + result.LoadTesterCpuMicrosecondsPerDelivery!.Value,
            result.TotalCpuMicrosecondsPerDelivery!.Value, 0.02);
        Assert.Contains("server + load tester CPU", summary);
    }

    [Fact]
    public async Task An_event_frame_is_byte_for_byte_the_projects()
    {
        const string body = """{"type":"ranking_changed","data":{"t":1,"userId":"u1","rank":2,"note":"é \"q\""}}""";
        await using var project = await TestServer.StartAsync();
        var fromProject = await PublishAndReceiveAsync(project.WsUri, new Uri($"http://127.0.0.1:{project.ApiPort}"));
        var fromReference = await PublishAndReceiveAsync(Options.WsUrl, Options.ApiUrl);

        Assert.Equal(fromProject.Subscribed.Type, fromReference.Subscribed.Type);
        Assert.Equal(0, fromReference.Subscribed.Data.GetProperty("seq").GetInt64());
        Assert.Equal(fromProject.Event, fromReference.Event);
        Assert.StartsWith("""{"type":"ranking_changed","bullPenId":"r1","seq":1,"data":""", fromReference.Event, StringComparison.Ordinal);

        static async Task<(Frame Subscribed, string Event)> PublishAndReceiveAsync(Uri ws, Uri api)
        {
            var tokens = new TokenIssuer(TestServer.Secret);
            await using var client = await WsClient.ConnectAsync(new Uri($"{ws}?token={tokens.UserToken("u1", TimeSpan.FromMinutes(5))}"));
            Assert.Equal("auth_success", (await client.ReceiveAsync()).Type);
            await client.SendAsync(new { type = "subscribe_room", data = new { bullPenId = "r1" } });
            var subscribed = await client.ReceiveTypeAsync("subscribed");
            using var http = new HttpClient { BaseAddress = api };
            http.DefaultRequestHeaders.Authorization = new("Bearer", tokens.ServiceToken("svc", TimeSpan.FromMinutes(5)));
            using var response = await http.PostAsync("/api/rooms/r1/events", new StringContent(body, Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            return (subscribed, (await client.ReceiveTypeAsync("ranking_changed")).Raw);
        }
    }

    [Fact]
    public async Task A_token_signed_with_another_secret_is_refused_on_the_socket_and_a_user_token_cannot_publish()
    {
        var e = await Assert.ThrowsAsync<LoadTestException>(() =>
            new LoadTestRunner(Options with { Secret = "not-the-reference-secret-0123456789-abcdef", Connections = 2, Rooms = 1 }, TextWriter.Null).RunAsync());
        Assert.Contains("auth refused", e.Message);
        Assert.Contains("invalid_token", e.Message);

        using var http = new HttpClient { BaseAddress = Options.ApiUrl };
        http.DefaultRequestHeaders.Authorization = new("Bearer", new TokenIssuer(TestServer.Secret).UserToken("u1", TimeSpan.FromMinutes(5)));
        using var response = await http.PostAsync("/api/events",
            new StringContent("""[{"bullPenId":"r1","type":"ranking_changed","data":{}}]""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Contains("\"code\":\"forbidden\"", await response.Content.ReadAsStringAsync());
    }
}
