using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using TradeRoom.Tests.Support;
using Xunit.Abstractions;

namespace TradeRoom.Tests.Integration;

/// <summary>
/// Issue 12, losing a node: three real server processes in cluster mode on one PostgreSQL journal, busy rooms, real
/// WebSocket clients on every node and publishers that never stop. When the node hosting most rooms leaves (SIGTERM)
/// or dies (SIGKILL), its rooms come back on the survivors from the journal, the clients of every node (those that
/// had to reconnect included) end with every event exactly once and in order, and publishing goes on.
/// </summary>
[Collection(ProcessEnvironmentCollection.Name)]
public sealed class ClusterFailoverTests(PostgresServer postgres, ITestOutputHelper output) : IClassFixture<PostgresServer>
{
    private static readonly string[] Rooms = ["final-1", "final-2", "final-3", "final-4", "final-5", "final-6"];
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(60);

    [Fact]
    public Task A_node_that_leaves_gracefully_loses_nothing() => LoseANodeAsync(kill: false);

    [Fact]
    public Task A_killed_node_loses_nothing_and_its_clients_resume_on_a_survivor() => LoseANodeAsync(kill: true);

    private async Task LoseANodeAsync(bool kill)
    {
        await using var cluster = await ClusterNodes.StartAsync(3, await postgres.CreateDatabaseAsync());
        var clients = new List<Follower>();
        for (var i = 0; i < 3; i++)
            clients.Add(await Follower.StartAsync(cluster[i], $"trader-{i}"));

        // Rooms start where the first publish lands; the victim is the node that hosts the most of them.
        foreach (var room in Rooms)
            Assert.Equal(HttpStatusCode.Accepted, (await cluster[0].PublishAsync(room, "leaderboard_update", new { n = 0 })).Status);
        var hosts = await RoomHostsAsync(cluster[0]);
        var victim = cluster.Nodes.OrderByDescending(n => hosts.Count(h => h.Value == n.Address)).First();
        var affected = hosts.Where(h => h.Value == victim.Address).Select(h => h.Key).ToArray();
        var survivors = cluster.Nodes.Where(n => n != victim).ToArray();
        output.WriteLine($"victim node {victim.Index} hosts {string.Join(", ", affected)}");

        // One publisher per room, through the survivors, until told to stop.
        using var stop = new CancellationTokenSource();
        var lost = Stopwatch.StartNew();
        var backAt = new ConcurrentDictionary<string, TimeSpan>();
        long killedAtTicks = 0;
        var publishers = Rooms.Select(room => Task.Run(async () =>
        {
            var accepted = new List<long> { 1 };
            var refused = 0;
            for (var n = 1; !stop.IsCancellationRequested; n++)
            {
                // At most about 25 events a second per room: the victim's client, away for the failover (about 17 s,
                // its subscribes to the lost rooms waiting for them), must find what it missed in every room within
                // the room's resume history (rooms.history-size, 1000).
                await Task.Delay(40);
                var (status, seq, _) = await survivors[n % survivors.Length].PublishAsync(room, "leaderboard_update", new { n });
                if (seq is { } s)
                {
                    accepted.Add(s);
                    if (Interlocked.Read(ref killedAtTicks) is > 0 and var at)
                        backAt.TryAdd(room, TimeSpan.FromTicks(lost.Elapsed.Ticks - at));
                }
                else
                {
                    Assert.Equal(HttpStatusCode.ServiceUnavailable, status); // never anything but accepted or 503
                    refused++;
                }
            }
            return (room, accepted, refused);
        })).ToArray();

        await Task.Delay(TimeSpan.FromSeconds(2)); // mid-stream
        Interlocked.Exchange(ref killedAtTicks, lost.Elapsed.Ticks);
        var victimClient = clients[victim.Index];
        if (kill)
        {
            await cluster.KillAsync(victim.Index);
        }
        else
        {
            Assert.Equal(0, await cluster.TerminateAsync(victim.Index));
            Assert.Equal(1001, await victimClient.ClosedWith);
        }
        // Its client reconnects to a survivor and resumes every room from what it saw.
        await victimClient.ReconnectAsync(survivors[0]);

        // Publishing goes on: every room the victim hosted accepts events again.
        await Eventually.MatchAsync(() => Task.FromResult(backAt.Count(b => affected.Contains(b.Key))), c => c == affected.Length,
            "every room of the lost node accepting events again", Settle);
        var failover = affected.Max(r => backAt[r]);
        output.WriteLine($"{(kill ? "SIGKILL" : "SIGTERM")}: the last affected room accepted events again {failover.TotalMilliseconds:0} ms after the node went");
        await Task.Delay(TimeSpan.FromSeconds(1));
        await stop.CancelAsync();
        var results = await Task.WhenAll(publishers);

        foreach (var (room, accepted, refused) in results)
        {
            output.WriteLine($"{room}: {accepted.Count} accepted, {refused} refused with 503");
            Assert.Equal(accepted.Order(), accepted.Distinct().Order()); // no seq given twice
            var head = accepted.Max();
            foreach (var client in clients)
            {
                // Every event up to the last accepted one (a 503 that timed out may still have been stored), once, in order.
                await Eventually.MatchAsync(() => Task.FromResult(client.Seqs(room)), seqs => seqs.Count > 0 && seqs[^1] >= head,
                    $"{client.User} getting {room} up to seq {head}", Settle);
                var seqs = client.Seqs(room);
                Assert.Equal(Enumerable.Range(1, (int)seqs[^1]).Select(i => (long)i), seqs);
            }
        }
        foreach (var client in clients)
            await client.DisposeAsync();
    }

    private static async Task<Dictionary<string, string>> RoomHostsAsync(ClusterNode node) =>
        (await node.GetAsServiceAsync("/api/rooms")).Json.GetProperty("rooms").EnumerateArray()
            .ToDictionary(r => r.GetProperty("bullPenId").GetString()!, r => r.GetProperty("node").GetString()!);

    /// <summary>One user following every room through one WebSocket at a time, reading all the while; it keeps every event it got, per room.</summary>
    private sealed class Follower : IAsyncDisposable
    {
        private readonly ConcurrentDictionary<string, List<long>> _seqs = new();
        private readonly ConcurrentDictionary<string, string> _epochs = new();
        private WsClient _client = null!;
        private Task<int>? _reading;

        private Follower(string user) => User = user;

        public string User { get; }

        /// <summary>The close code the server sent (-1: the link dropped without one).</summary>
        public Task<int> ClosedWith => _reading!;

        public static async Task<Follower> StartAsync(ClusterNode node, string user)
        {
            var follower = new Follower(user);
            await follower.ConnectAsync(node, resume: false);
            return follower;
        }

        public List<long> Seqs(string room)
        {
            var seqs = _seqs.GetOrAdd(room, _ => []);
            lock (seqs)
                return [.. seqs];
        }

        public async Task ReconnectAsync(ClusterNode node)
        {
            try { await ClosedWith; } catch { /* the link dropped */ }
            await _client.DisposeAsync();
            await ConnectAsync(node, resume: true);
        }

        private async Task ConnectAsync(ClusterNode node, bool resume)
        {
            (_client, _) = await node.ConnectAsync(User);
            foreach (var room in Rooms)
            {
                var since = Seqs(room) is [.., var last] ? last : 0;
                object data = resume && _epochs.TryGetValue(room, out var epoch)
                    ? new { bullPenId = room, sinceSeq = since, epoch }
                    : new { bullPenId = room };
                await _client.SendAsync(new { type = "subscribe_room", data });
                // A room of a killed node answers once it is back on a survivor: after the failover (about 17 s).
                Frame ack;
                while ((ack = await _client.ReceiveAsync(Settle)).Type != "subscribed")
                    Record(ack); // events of the rooms subscribed before this one
                if (resume)
                    Assert.True(ack.Data.GetProperty("recovered").GetBoolean(), $"{User} resuming {room}: {ack.Raw}");
                _epochs[room] = ack.Data.GetProperty("epoch").GetString()!;
            }
            _reading = ReadAsync(_client);
        }

        private void Record(Frame frame)
        {
            if (frame.BullPenId is not { } room || !frame.Root.TryGetProperty("seq", out _))
                return;
            var seqs = _seqs.GetOrAdd(room, _ => []);
            lock (seqs)
                seqs.Add(frame.Seq);
        }

        private async Task<int> ReadAsync(WsClient client)
        {
            try
            {
                while (true)
                {
                    Record(await client.ReceiveAsync(TimeSpan.FromMinutes(5)));
                }
            }
            catch (InvalidOperationException) when (client.Socket.CloseStatus is { } status)
            {
                return (int)status;
            }
            catch (Exception)
            {
                return -1;
            }
        }

        public async ValueTask DisposeAsync() => await _client.DisposeAsync();
    }
}
