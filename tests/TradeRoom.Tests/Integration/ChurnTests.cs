using System.Diagnostics;
using System.Net.WebSockets;
using System.Text.Json;
using Akka.Actor;
using Microsoft.Extensions.DependencyInjection;
using TradeRoom.Tests.Support;
using Xunit.Abstractions;

namespace TradeRoom.Tests.Integration;

/// <summary>
/// Thousands of short connections (connect, authenticate, subscribe, then close cleanly or drop the socket) leave
/// nothing behind: the connection and room counts and the actors under /user return to where they started.
/// </summary>
public class ChurnTests(ITestOutputHelper output)
{
    private const int Cycles = 2000;
    private const int Workers = 20;
    private const int Rooms = 50;

    /// <summary>Every actor under <paramref name="parent"/>, recursively.</summary>
    private static List<string> Descendants(IActorRef parent)
    {
        var found = new List<string>();
        if (parent is not ActorRefWithCell withCell)
            return found;
        foreach (var child in withCell.Children)
        {
            found.Add(child.Path.ToStringWithoutAddress());
            found.AddRange(Descendants(child));
        }
        return found;
    }

    private static async Task<JsonElement> ReceiveJsonAsync(ClientWebSocket socket, byte[] buffer)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var reader = new MessageReader(socket, buffer.Length);
        var (type, count) = await reader.ReadAsync(timeout.Token);
        if (type == WebSocketMessageType.Close)
            throw new InvalidOperationException($"closed by the server: {socket.CloseStatus} {socket.CloseStatusDescription}");
        using var document = JsonDocument.Parse(reader.Message(count));
        return document.RootElement.Clone();
    }

    /// <summary>One cycle: connect with ?token=, wait for auth_success, subscribe, wait for subscribed, then leave.</summary>
    private static async Task CycleAsync(TestServer server, Random rng, byte[] buffer, bool clean)
    {
        using var socket = new ClientWebSocket();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await socket.ConnectAsync(new Uri($"{server.WsUri}?token={server.UserToken($"churner-{rng.Next(100)}")}"), timeout.Token);
        Assert.Equal("auth_success", (await ReceiveJsonAsync(socket, buffer)).GetProperty("type").GetString());
        var room = $"churn-{rng.Next(Rooms)}";
        await socket.SendAsync(JsonSerializer.SerializeToUtf8Bytes(new { type = "subscribe_room", data = new { bullPenId = room } }),
            WebSocketMessageType.Text, true, timeout.Token);
        var subscribed = await ReceiveJsonAsync(socket, buffer);
        Assert.Equal("subscribed", subscribed.GetProperty("type").GetString());
        Assert.Equal(room, subscribed.GetProperty("data").GetProperty("bullPenId").GetString());

        if (clean)
        {
            await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", timeout.Token);
            Assert.Equal(WebSocketCloseStatus.NormalClosure, socket.CloseStatus);
        }
        else
        {
            socket.Abort();
        }
    }

    [Fact]
    public async Task Thousands_of_connect_subscribe_disconnect_cycles_leave_no_connections_rooms_or_actors_behind()
    {
        await using var server = await TestServer.StartAsync("traderoom.rooms.idle-timeout = 500ms");
        var system = (ExtendedActorSystem)server.App.Services.GetRequiredService<ActorSystem>();
        var guardian = Assert.IsAssignableFrom<ActorRefWithCell>(system.Guardian);
        var connections = Assert.IsAssignableFrom<ActorRefWithCell>(guardian.Children.Single(c => c.Path.Name == "connections"));

        var before = await server.HealthAsync();
        var actorsBefore = Ours(Descendants(guardian));
        output.WriteLine($"before: {before.Connections} connections, {before.Rooms} rooms, {actorsBefore.Count} actors under /user: {string.Join(", ", actorsBefore)}");

        var elapsed = Stopwatch.StartNew();
        var clean = 0;
        var workers = Enumerable.Range(0, Workers).Select(w => Task.Run(async () =>
        {
            var rng = new Random(1000 + w);
            var buffer = new byte[4096];
            for (var i = 0; i < Cycles / Workers; i++)
            {
                var closeCleanly = i % 2 == 0;
                await CycleAsync(server, rng, buffer, closeCleanly);
                if (closeCleanly)
                    Interlocked.Increment(ref clean);
            }
        })).ToArray();
        await Task.WhenAll(workers);
        var churned = elapsed.ElapsedMilliseconds;
        var during = await server.HealthAsync();
        output.WriteLine($"{Cycles} cycles ({clean} closed cleanly, {Cycles - clean} aborted) by {Workers} workers over {Rooms} rooms in {churned} ms; " +
                         $"right after: {during.Connections} connections, {during.Rooms} rooms, {Descendants(guardian).Count} actors under /user");

        // Everything goes away: sockets end, connection actors stop, idle rooms passivate.
        var deadline = DateTime.UtcNow.AddSeconds(15);
        Health after;
        List<string> actorsAfter;
        while (true)
        {
            after = await server.HealthAsync();
            actorsAfter = Ours(Descendants(guardian));
            var settled = after.Connections == before.Connections && after.Rooms == before.Rooms
                          && actorsAfter.Count == actorsBefore.Count && !connections.Children.Any();
            if (settled || DateTime.UtcNow > deadline)
                break;
            await Task.Delay(50);
        }
        output.WriteLine($"after {elapsed.ElapsedMilliseconds - churned} ms: {after.Connections} connections, {after.Rooms} rooms, {actorsAfter.Count} actors under /user");

        Assert.Equal(before.Connections, after.Connections);
        Assert.Equal(before.Rooms, after.Rooms);
        Assert.Empty(connections.Children.Select(c => c.Path.ToStringWithoutAddress()));
        Assert.Equal(actorsBefore.Order(), actorsAfter.Order());
    }

    /// <summary>
    /// The actors but Akka.Persistence.Sql's stream materializers, which come and go under /user as the journal starts
    /// (with the server, in the background) and as rooms write: they are not rooms or connections.
    /// </summary>
    private static List<string> Ours(List<string> actors) =>
        actors.Where(a => !a.StartsWith("/user/StreamSupervisor-", StringComparison.Ordinal)).ToList();
}
