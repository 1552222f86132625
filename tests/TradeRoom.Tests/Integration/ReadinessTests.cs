using System.Net;
using Akka.Actor;
using Microsoft.Extensions.DependencyInjection;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Integration;

/// <summary>
/// <c>GET /api/ready</c> and the node identity in single-node mode (the default), which runs no cluster at all.
/// Cluster mode's readiness: <see cref="ClusterMembershipTests"/>.
/// </summary>
public sealed class ReadinessTests
{
    [Fact]
    public async Task A_single_node_server_is_ready_names_itself_and_runs_no_cluster()
    {
        await using var server = await TestServer.StartAsync();
        var node = $"127.0.0.1:{server.WsPort}";

        var ready = await server.GetJsonAsync("/api/ready");
        Assert.Equal(HttpStatusCode.OK, ready.Status);
        Assert.True(ready.Json.GetProperty("ready").GetBoolean());
        Assert.Equal(node, ready.Json.GetProperty("node").GetString());

        await using var client = await WsClient.ConnectAsync(server.WsUri);
        await client.SendAsync(new { type = "auth", data = new { token = server.UserToken("alice") } });
        var auth = await client.ReceiveTypeAsync("auth_success");
        Assert.Equal(node, auth.Data.GetProperty("node").GetString());

        Assert.False((await server.GetJsonAsync("/api/health")).Json.TryGetProperty("cluster", out _));
        Assert.DoesNotContain("traderoom_cluster_", await server.Http.GetStringAsync("/metrics"), StringComparison.Ordinal);
        // No remoting: the actor system is local, so nothing listens beyond the WebSocket and HTTP ports.
        var system = (ExtendedActorSystem)server.App.Services.GetRequiredService<ActorSystem>();
        Assert.IsType<LocalActorRefProvider>(system.Provider);
    }

    [Fact]
    public async Task A_single_node_server_is_not_ready_once_it_is_shutting_down_and_closes_its_sockets_with_1001()
    {
        await using var server = await TestServer.StartAsync();
        await using var client = await server.ConnectAsync("alice");

        // The host's stop signal alone (the host itself is stopped by the test's dispose): what SIGTERM fires first.
        server.App.Lifetime.StopApplication();

        var notReady = await server.GetJsonAsync("/api/ready");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, notReady.Status);
        Assert.Equal("not_ready", notReady.ErrorCode);
        Assert.Contains("shutting down", notReady.ErrorMessage, StringComparison.Ordinal);
        Assert.Equal(1001, await client.ReceiveCloseAsync());
    }
}
