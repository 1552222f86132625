using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Integration;

/// <summary>
/// Thousands of events published while clients subscribe, unsubscribe and resume: every client must see, from
/// each <c>subscribed</c> on, a gap-free, duplicate-free, ordered stream of exactly the events it may see.
/// </summary>
public class SubscribeRaceTests
{
    private const string Room = "race";
    private static readonly string[] Users = ["u1", "u2", "u3"];

    /// <summary>One stretch of a client's stream: from a <c>subscribed</c> to its <c>unsubscribed</c> (or the end).</summary>
    private sealed class Segment(long start, bool ended)
    {
        public long Start { get; } = start;
        public List<long> Seqs { get; } = [];
        public bool Ended { get; set; } = ended;
    }

    /// <summary>A client socket whose reader records every frame into segments as it arrives.</summary>
    private sealed class RecordingClient : IAsyncDisposable
    {
        private readonly ClientWebSocket _socket = new();
        private Task? _reader;
        private long? _pendingSince;

        public List<Segment> Segments { get; } = [];
        public long Position { get; private set; }
        public string? Epoch { get; private set; }
        public int Recovered { get; private set; }
        public TaskCompletionSource Subscribed { get; private set; } = NewSignal();

        public async Task ConnectAsync(Uri uri, string token)
        {
            await _socket.ConnectAsync(new Uri(uri + "?token=" + token), CancellationToken.None);
            _reader = ReadAsync();
        }

        public Task SendAsync(object message) =>
            _socket.SendAsync(JsonSerializer.SerializeToUtf8Bytes(message), WebSocketMessageType.Text, true, CancellationToken.None);

        public async Task SubscribeAsync(long? sinceSeq, string? epoch)
        {
            Subscribed = NewSignal();
            _pendingSince = sinceSeq;
            await SendAsync(new { type = "subscribe_room", data = new { bullPenId = Room, sinceSeq, epoch } });
            await Subscribed.Task.WaitAsync(TimeSpan.FromSeconds(10));
        }

        public async Task CloseAsync()
        {
            // The reader is the one receiving: send our close and let it read the server's answer.
            await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", CancellationToken.None);
            await _reader!;
        }

        private async Task ReadAsync()
        {
            var reader = new MessageReader(_socket);
            while (true)
            {
                WebSocketMessageType messageType;
                int count;
                try
                {
                    (messageType, count) = await reader.ReadAsync();
                }
                catch (WebSocketException)
                {
                    return;
                }
                if (messageType == WebSocketMessageType.Close)
                    return;

                var root = JsonDocument.Parse(reader.Message(count)).RootElement;
                switch (root.GetProperty("type").GetString())
                {
                    case "auth_success" or "pong":
                        break;
                    case "subscribed":
                        var data = root.GetProperty("data");
                        var recovered = data.GetProperty("recovered").GetBoolean();
                        Epoch = data.GetProperty("epoch").GetString();
                        Position = recovered ? _pendingSince!.Value : data.GetProperty("seq").GetInt64();
                        if (recovered)
                            Recovered++;
                        Segments.Add(new Segment(Position, ended: false));
                        Subscribed.TrySetResult();
                        break;
                    case "unsubscribed":
                        Segments[^1].Ended = true;
                        break;
                    case var type when root.TryGetProperty("seq", out var seq):
                        if (Segments.Count == 0 || Segments[^1].Ended)
                            throw new InvalidOperationException($"event {type} {seq} outside any subscription");
                        Segments[^1].Seqs.Add(seq.GetInt64());
                        Position = seq.GetInt64();
                        break;
                    default:
                        throw new InvalidOperationException("unexpected frame " + root);
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (_socket.State == WebSocketState.Open)
                await CloseAsync();
            _socket.Dispose();
        }

        private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    [Fact]
    public async Task Clients_that_subscribe_unsubscribe_and_resume_during_a_burst_see_gap_free_ordered_streams()
    {
        await using var server = await TestServer.StartAsync();
        var visibility = new ConcurrentDictionary<long, string?>(); // seq -> owner (null: public)
        using var publishing = new CancellationTokenSource();

        // Publisher: 60 batches of 50 events (3,000) mixing public and private events.
        var publisher = Task.Run(async () =>
        {
            var random = new Random(7);
            for (var batch = 0; batch < 60; batch++)
            {
                var owners = new string?[50];
                var events = new object[50];
                for (var i = 0; i < events.Length; i++)
                {
                    owners[i] = random.Next(3) == 0 ? null : Users[random.Next(Users.Length)];
                    events[i] = owners[i] is null
                        ? new { bullPenId = Room, type = "leaderboard_update", data = (object)new { batch, i } }
                        : new { bullPenId = Room, type = "order_executed", data = (object)new { userId = owners[i], batch, i } };
                }
                using var response = await server.PostAsync("/api/events", JsonSerializer.Serialize(events));
                var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
                Assert.Equal(202, (int)response.StatusCode);
                var seqs = body.GetProperty("seqs").EnumerateArray().Select(s => s.GetInt64()).ToArray();
                for (var i = 0; i < seqs.Length; i++)
                    visibility[seqs[i]] = owners[i];
            }
        });

        // Clients: each keeps subscribing, unsubscribing, and dropping its socket to resume, until publishing ends.
        var finished = new ConcurrentBag<(string User, List<Segment> Segments, RecordingClient Last)>();
        var resumes = 0;
        var clients = Enumerable.Range(0, 6).Select(n => Task.Run(async () =>
        {
            var user = Users[n % Users.Length];
            var random = new Random(n);
            var segments = new List<Segment>();
            var client = new RecordingClient();
            await client.ConnectAsync(server.WsUri, server.UserToken(user));
            await client.SubscribeAsync(null, null);
            while (!publisher.IsCompleted)
            {
                await Task.Delay(random.Next(5, 40));
                switch (random.Next(3))
                {
                    case 0: // unsubscribe, then subscribe again on the same socket
                        await client.SendAsync(new { type = "unsubscribe_room", data = new { bullPenId = Room } });
                        await client.SubscribeAsync(null, null);
                        break;
                    case 1: // drop the socket and resume on a new one
                        await client.CloseAsync();
                        segments.AddRange(client.Segments);
                        var (position, epoch) = (client.Position, client.Epoch);
                        await client.DisposeAsync();
                        client = new RecordingClient();
                        await client.ConnectAsync(server.WsUri, server.UserToken(user));
                        await client.SubscribeAsync(position, epoch);
                        Interlocked.Add(ref resumes, client.Recovered);
                        break;
                    default: // subscribe again while subscribed: idempotent
                        await client.SubscribeAsync(null, null);
                        break;
                }
            }
            finished.Add((user, segments, client));
        })).ToArray();

        await publisher;
        await Task.WhenAll(clients);
        var lastSeq = visibility.Keys.Max();
        Assert.Equal(3000, visibility.Count);

        foreach (var (user, closedSegments, last) in finished)
        {
            // Drain: wait until the live client has everything it may see.
            var lastVisible = visibility.Where(v => v.Value is null || v.Value == user).Max(v => v.Key);
            var deadline = DateTime.UtcNow.AddSeconds(15);
            while (last.Position < lastVisible && DateTime.UtcNow < deadline)
                await Task.Delay(20);
            await last.CloseAsync();

            var all = closedSegments.Concat(last.Segments).ToList();
            for (var i = 0; i < all.Count; i++)
            {
                var segment = all[i];
                var isFinal = i == all.Count - 1;
                var end = isFinal ? lastSeq : segment.Seqs.LastOrDefault(segment.Start);
                var expected = visibility.Where(v => v.Key > segment.Start && v.Key <= end && (v.Value is null || v.Value == user))
                    .Select(v => v.Key).Order().ToList();
                Assert.True(expected.SequenceEqual(segment.Seqs),
                    $"{user} segment {i} of {all.Count} from {segment.Start} ({segment.Seqs.Count} events): " +
                    $"missing [{string.Join(",", expected.Except(segment.Seqs))}], unexpected [{string.Join(",", segment.Seqs.Except(expected))}], " +
                    $"in order: {segment.Seqs.SequenceEqual(segment.Seqs.Order())}, last {lastSeq}");
            }
            await last.DisposeAsync();
        }
        Assert.True(resumes > 0, "no resume was recovered; the test did not exercise resume");
    }
}
