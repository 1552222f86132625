using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using TradeRoom.Actors.Auth;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Integration;

/// <summary>
/// The client protocol end to end over real sockets, against one real server shared by the class (every test uses its
/// own room ids and users, and none reads global counts; see <see cref="WebSocketLifecycleTests"/> for those).
/// </summary>
public class WebSocketIntegrationTests(SharedServerFixture fixture) : IClassFixture<SharedServerFixture>
{
    private const string OtherSecret = "a-completely-different-secret-0123456789-xyz";

    private TestServer Server => fixture.Server;

    private static readonly string[] AllEventTypes =
    [
        "order_executed", "order_failed", "order_cancelled",
        "leaderboard_update", "ranking_changed", "snapshot_created",
        "position_update", "position_closed", "portfolio_update",
        "room_state_changed", "room_started", "room_ended", "member_joined", "member_left",
    ];

    /// <summary>The types that go to every subscriber; the order and position types are private to <c>data.userId</c>.</summary>
    private static readonly string[] PublicEventTypes =
    [
        "leaderboard_update", "ranking_changed", "snapshot_created",
        "room_state_changed", "room_started", "room_ended", "member_joined", "member_left",
    ];

    // ---------------------------------------------------------------- authentication: the auth message

    [Fact]
    public async Task Auth_message_with_valid_token_answers_auth_success_with_the_user_id()
    {
        await using var client = await Server.ConnectRawAsync();
        await client.SendAuthAsync(Server.UserToken("alice"));

        var reply = await client.ReceiveAsync();

        Assert.Equal("auth_success", reply.Type);
        Assert.Equal("alice", reply.Data.GetProperty("userId").GetString());
        Assert.Empty(await client.BarrierAsync());
    }

    [Fact]
    public async Task Auth_message_with_expired_token_answers_token_expired_and_closes_4001()
    {
        await using var client = await Server.ConnectRawAsync();
        await client.SendAuthAsync(Server.Tokens.UserToken("alice", TimeSpan.FromMinutes(-5)));

        var reply = await client.ReceiveAsync();
        Assert.Equal("auth_error", reply.Type);
        Assert.Equal("token_expired", reply.Code);
        Assert.Equal(4001, await client.ReceiveCloseAsync());
    }

    [Fact]
    public async Task Auth_message_with_token_signed_by_another_secret_answers_invalid_token_and_closes_4001()
    {
        await using var client = await Server.ConnectRawAsync();
        await client.SendAuthAsync(new TokenIssuer(OtherSecret).UserToken("alice", TimeSpan.FromMinutes(10)));

        var reply = await client.ReceiveAsync();
        Assert.Equal("auth_error", reply.Type);
        Assert.Equal("invalid_token", reply.Code);
        Assert.Equal(4001, await client.ReceiveCloseAsync());
    }

    [Theory]
    [InlineData("not-a-jwt")]
    [InlineData("")]
    public async Task Auth_message_with_malformed_or_empty_token_answers_invalid_token_and_closes_4001(string token)
    {
        await using var client = await Server.ConnectRawAsync();
        await client.SendAuthAsync(token);

        var reply = await client.ReceiveAsync();
        Assert.Equal("auth_error", reply.Type);
        Assert.Equal("invalid_token", reply.Code);
        Assert.Equal(4001, await client.ReceiveCloseAsync());
    }

    [Theory]
    [InlineData("""{"type":"auth"}""")]
    [InlineData("""{"type":"auth","data":{}}""")]
    [InlineData("""{"type":"auth","data":{"token":42}}""")]
    [InlineData("""{"type":"auth","data":"token"}""")]
    public async Task Auth_message_without_a_string_token_answers_invalid_message_and_keeps_the_connection_open(string message)
    {
        await using var client = await Server.ConnectRawAsync();
        await client.SendTextAsync(message);

        var reply = await client.ReceiveAsync();
        Assert.Equal("error", reply.Type);
        Assert.Equal("invalid_message", reply.Code);

        // Still open and still unauthenticated: a real auth works afterwards.
        await client.SendAuthAsync(Server.UserToken("alice"));
        Assert.Equal("auth_success", (await client.ReceiveAsync()).Type);
    }

    [Fact]
    public async Task Auth_with_valid_token_for_another_user_answers_user_mismatch_and_changes_nothing()
    {
        var room = E2E.Room("mismatch");
        await using var client = await Server.ConnectAndSubscribeAsync("alice", room);

        await client.SendAuthAsync(Server.UserToken("mallory"));
        var reply = await client.ReceiveAsync();
        Assert.Equal("error", reply.Type);
        Assert.Equal("user_mismatch", reply.Code);

        // The subscription survives and the connection still belongs to alice.
        var seq = await Server.PublishAsync(room, "member_joined", new { userId = "bob" });
        var e = await client.ReceiveAsync();
        Assert.Equal(("member_joined", seq), (e.Type, e.Seq));

        await client.SendAuthAsync(Server.UserToken("alice"));
        var again = await client.ReceiveAsync();
        Assert.Equal("auth_success", again.Type);
        Assert.Equal("alice", again.Data.GetProperty("userId").GetString());
    }

    [Fact]
    public async Task Failed_auth_on_an_authenticated_connection_answers_auth_error_and_closes_4001()
    {
        await using var client = await Server.ConnectAsync("alice");
        await client.SendAuthAsync(Server.Tokens.UserToken("alice", TimeSpan.FromMinutes(-5)));

        var reply = await client.ReceiveAsync();
        Assert.Equal("auth_error", reply.Type);
        Assert.Equal("token_expired", reply.Code);
        Assert.Equal(4001, await client.ReceiveCloseAsync());
    }

    // ---------------------------------------------------------------- authentication: ?token= on the upgrade URL

    [Theory]
    [InlineData("/ws")]
    [InlineData("/")]
    public async Task Query_token_valid_makes_auth_success_the_first_frame_and_the_connection_usable(string path)
    {
        var room = E2E.Room("query");
        await using var client = await Server.ConnectRawAsync(Server.UserToken("carol"), path);

        var first = await client.ReceiveAsync();
        Assert.Equal("auth_success", first.Type);
        Assert.Equal("carol", first.Data.GetProperty("userId").GetString());

        await client.SubscribeAsync(room);
        var subscribed = await client.ReceiveAsync();
        Assert.Equal("subscribed", subscribed.Type);
        Assert.Equal(room, subscribed.Data.GetProperty("bullPenId").GetString());
    }

    [Fact]
    public async Task Query_token_expired_answers_token_expired_and_closes_4001()
    {
        await using var client = await Server.ConnectRawAsync(Server.Tokens.UserToken("carol", TimeSpan.FromMinutes(-5)));

        var first = await client.ReceiveAsync();
        Assert.Equal("auth_error", first.Type);
        Assert.Equal("token_expired", first.Code);
        Assert.Equal(4001, await client.ReceiveCloseAsync());
    }

    [Fact]
    public async Task Query_token_signed_by_another_secret_answers_invalid_token_and_closes_4001()
    {
        await using var client = await Server.ConnectRawAsync(new TokenIssuer(OtherSecret).UserToken("carol", TimeSpan.FromMinutes(10)));

        var first = await client.ReceiveAsync();
        Assert.Equal("auth_error", first.Type);
        Assert.Equal("invalid_token", first.Code);
        Assert.Equal(4001, await client.ReceiveCloseAsync());
    }

    // ---------------------------------------------------------------- ping / pong

    [Fact]
    public async Task Ping_without_data_before_auth_answers_pong_with_empty_object()
    {
        await using var client = await Server.ConnectRawAsync();
        await client.SendTextAsync("""{"type":"ping"}""");

        var pong = await client.ReceiveAsync();

        Assert.Equal("pong", pong.Type);
        Assert.Equal(JsonValueKind.Object, pong.Data.ValueKind);
        Assert.Empty(pong.Data.EnumerateObject());
    }

    [Theory]
    [InlineData("""{"n":1,"s":"x","nested":{"a":[1,2,{"b":null}]}}""", false)]
    [InlineData("""{"clientTime":1700000000123}""", true)]
    [InlineData("""[1,"two",3.5]""", true)]
    [InlineData("42", false)]
    public async Task Ping_with_data_answers_pong_echoing_the_data(string data, bool authenticated)
    {
        await using var client = authenticated ? await Server.ConnectAsync("dave") : await Server.ConnectRawAsync();
        await client.SendTextAsync($$"""{"type":"ping","data":{{data}}}""");

        var pong = await client.ReceiveAsync();

        Assert.Equal("pong", pong.Type);
        using var expected = JsonDocument.Parse(data);
        Assert.True(JsonElement.DeepEquals(expected.RootElement, pong.Data), $"pong data {pong.Data} != {data}");
    }

    // ---------------------------------------------------------------- error frames (the connection stays open)

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Invalid_json_answers_invalid_json_and_keeps_the_connection_open(bool authenticated)
    {
        await using var client = authenticated ? await Server.ConnectAsync("erin") : await Server.ConnectRawAsync();
        await client.SendTextAsync("""{"type":"ping", oops""");

        var reply = await client.ReceiveAsync();

        Assert.Equal("error", reply.Type);
        Assert.Equal("invalid_json", reply.Code);
        Assert.False(string.IsNullOrEmpty(reply.Data.GetProperty("message").GetString()));
        Assert.Empty(await client.BarrierAsync());
    }

    [Theory]
    [InlineData("[1,2,3]")]
    [InlineData("42")]
    [InlineData("\"ping\"")]
    [InlineData("null")]
    [InlineData("""{"data":{}}""")]
    [InlineData("""{"type":5,"data":{}}""")]
    [InlineData("""{"type":null}""")]
    [InlineData("""{"type":{"name":"ping"}}""")]
    public async Task Message_that_is_not_an_object_with_a_string_type_answers_invalid_message(string message)
    {
        await using var client = await Server.ConnectAsync("erin");
        await client.SendTextAsync(message);

        var reply = await client.ReceiveAsync();

        Assert.Equal("error", reply.Type);
        Assert.Equal("invalid_message", reply.Code);
        Assert.Empty(await client.BarrierAsync());
    }

    [Fact]
    public async Task Unknown_type_after_auth_answers_unknown_type_and_keeps_the_connection_open()
    {
        await using var client = await Server.ConnectAsync("erin");
        await client.SendTextAsync("""{"type":"dance","data":{}}""");

        var reply = await client.ReceiveAsync();

        Assert.Equal("error", reply.Type);
        Assert.Equal("unknown_type", reply.Code);
        Assert.Empty(await client.BarrierAsync());
    }

    [Theory]
    [InlineData("""{"type":"subscribe_room","data":{"bullPenId":"r1"}}""")]
    [InlineData("""{"type":"unsubscribe_room","data":{"bullPenId":"r1"}}""")]
    [InlineData("""{"type":"dance","data":{}}""")]
    [InlineData("""{"type":"subscribe_room"}""")]
    public async Task Anything_but_auth_or_ping_before_auth_answers_not_authenticated(string message)
    {
        await using var client = await Server.ConnectRawAsync();
        await client.SendTextAsync(message);

        var reply = await client.ReceiveAsync();

        Assert.Equal("error", reply.Type);
        Assert.Equal("not_authenticated", reply.Code);
        Assert.Empty(await client.BarrierAsync());
    }

    [Fact]
    public async Task Not_authenticated_subscribe_does_not_subscribe()
    {
        var room = E2E.Room("noauth");
        await using var client = await Server.ConnectRawAsync();
        await client.SubscribeAsync(room);
        Assert.Equal("not_authenticated", (await client.ReceiveAsync()).Code);

        await client.SendAuthAsync(Server.UserToken("erin"));
        Assert.Equal("auth_success", (await client.ReceiveAsync()).Type);
        await Server.PublishAsync(room, "room_started", new { });

        Assert.Empty(await client.BarrierAsync());
    }

    [Theory]
    [InlineData("subscribe_room", "{}")]
    [InlineData("subscribe_room", """{"bullPenId":""}""")]
    [InlineData("subscribe_room", """{"bullPenId":null}""")]
    [InlineData("subscribe_room", """{"bullPenId":1.5}""")]
    [InlineData("subscribe_room", """{"bullPenId":true}""")]
    [InlineData("subscribe_room", """{"bullPenId":["r1"]}""")]
    [InlineData("subscribe_room", """{"bullPenId":{"id":"r1"}}""")]
    [InlineData("subscribe_room", """{"bullPenId":99999999999999999999999}""")]
    [InlineData("subscribe_room", """{"bullPenId":"TOO_LONG"}""")]
    [InlineData("unsubscribe_room", "{}")]
    [InlineData("unsubscribe_room", """{"bullPenId":""}""")]
    [InlineData("unsubscribe_room", """{"bullPenId":"TOO_LONG"}""")]
    public async Task Invalid_bullPenId_answers_invalid_room_and_keeps_the_connection_open(string type, string data)
    {
        data = data.Replace("TOO_LONG", new string('x', 129), StringComparison.Ordinal);
        await using var client = await Server.ConnectAsync("frank");
        await client.SendTextAsync($$"""{"type":"{{type}}","data":{{data}}}""");

        var reply = await client.ReceiveAsync();

        Assert.Equal("error", reply.Type);
        Assert.Equal("invalid_room", reply.Code);
        Assert.Empty(await client.BarrierAsync());
    }

    [Theory]
    [InlineData("""{"type":"subscribe_room"}""")]
    [InlineData("""{"type":"subscribe_room","data":"r1"}""")]
    [InlineData("""{"type":"unsubscribe_room","data":null}""")]
    public async Task Room_message_without_a_data_object_answers_invalid_message(string message)
    {
        await using var client = await Server.ConnectAsync("frank");
        await client.SendTextAsync(message);

        var reply = await client.ReceiveAsync();

        Assert.Equal("error", reply.Type);
        Assert.Equal("invalid_message", reply.Code);
        Assert.Empty(await client.BarrierAsync());
    }

    // ---------------------------------------------------------------- subscribe / unsubscribe

    [Fact]
    public async Task Subscribe_answers_subscribed_with_the_rooms_last_seq()
    {
        var fresh = E2E.Room("fresh");
        var busy = E2E.Room("busy");
        for (var i = 0; i < 3; i++)
            await Server.PublishAsync(busy, "order_executed", new { i, userId = "gina" });

        await using var client = await Server.ConnectAsync("gina");
        await client.SubscribeAsync(fresh);
        var first = await client.ReceiveAsync();
        await client.SubscribeAsync(busy);
        var second = await client.ReceiveAsync();

        Assert.Equal("subscribed", first.Type);
        Assert.Equal(fresh, first.Data.GetProperty("bullPenId").GetString());
        Assert.Equal(0, first.Data.GetProperty("seq").GetInt64());
        Assert.Equal("subscribed", second.Type);
        Assert.Equal(busy, second.Data.GetProperty("bullPenId").GetString());
        Assert.Equal(3, second.Data.GetProperty("seq").GetInt64());
        foreach (var reply in new[] { first, second })
        {
            Assert.False(string.IsNullOrEmpty(reply.Data.GetProperty("epoch").GetString()));
            Assert.False(reply.Data.GetProperty("recovered").GetBoolean());
            var state = reply.Data.GetProperty("state");
            Assert.Equal(JsonValueKind.Null, state.GetProperty("leaderboard").ValueKind);
            Assert.Equal(JsonValueKind.Null, state.GetProperty("room").ValueKind);
            Assert.Equal(0, state.GetProperty("members").GetArrayLength());
        }

        // The next event follows the head the reply named.
        await Server.PublishAsync(busy, "order_executed", new { i = 3, userId = "gina" });
        var e = await client.ReceiveAsync();
        Assert.Equal(4, e.Seq);
    }

    [Fact]
    public async Task Subscribing_twice_is_idempotent_and_each_event_arrives_once()
    {
        var room = E2E.Room("twice");
        await using var client = await Server.ConnectAndSubscribeAsync("hank", room);
        await client.SubscribeAsync(room);
        var again = await client.ReceiveAsync();
        Assert.Equal("subscribed", again.Type);
        Assert.Equal(room, again.Data.GetProperty("bullPenId").GetString());

        var s1 = await Server.PublishAsync(room, "position_update", new { n = 1, userId = "hank" });
        var s2 = await Server.PublishAsync(room, "position_update", new { n = 2, userId = "hank" });

        var frames = await client.BarrierAsync();
        Assert.Equal([s1, s2], frames.Select(f => f.Seq));
        Assert.All(frames, f => Assert.Equal("position_update", f.Type));
    }

    [Fact]
    public async Task Integer_bullPenId_is_the_room_named_by_its_decimal_string()
    {
        var number = Random.Shared.NextInt64(1_000_000_000, 9_000_000_000);
        var asString = number.ToString(System.Globalization.CultureInfo.InvariantCulture);
        await using var client = await Server.ConnectAsync("ivan");

        await client.SendTextAsync("{\"type\":\"subscribe_room\",\"data\":{\"bullPenId\":" + asString + "}}");
        var subscribed = await client.ReceiveAsync();
        Assert.Equal("subscribed", subscribed.Type);
        Assert.Equal(JsonValueKind.String, subscribed.Data.GetProperty("bullPenId").ValueKind);
        Assert.Equal(asString, subscribed.Data.GetProperty("bullPenId").GetString());

        // The same room by its string id: still one subscription.
        await client.SubscribeAsync(asString);
        Assert.Equal(asString, (await client.ReceiveAsync()).Data.GetProperty("bullPenId").GetString());

        var seq = await Server.PublishAsync(asString, "room_state_changed", new { state = "open" });
        var frames = await client.BarrierAsync();
        var e = Assert.Single(frames);
        Assert.Equal(("room_state_changed", asString, seq), (e.Type, e.BullPenId, e.Seq));

        await client.SendTextAsync("{\"type\":\"unsubscribe_room\",\"data\":{\"bullPenId\":" + asString + "}}");
        var unsubscribed = await client.ReceiveAsync();
        Assert.Equal("unsubscribed", unsubscribed.Type);
        Assert.Equal(asString, unsubscribed.Data.GetProperty("bullPenId").GetString());
    }

    [Fact]
    public async Task BullPenId_of_exactly_128_characters_is_accepted()
    {
        var room = E2E.Room("long").PadRight(128, 'x');
        await using var client = await Server.ConnectAsync("judy");
        await client.SubscribeAsync(room);

        var reply = await client.ReceiveAsync();

        Assert.Equal("subscribed", reply.Type);
        Assert.Equal(room, reply.Data.GetProperty("bullPenId").GetString());
    }

    [Fact]
    public async Task Unsubscribe_answers_unsubscribed_and_is_idempotent()
    {
        var room = E2E.Room("unsub");
        var never = E2E.Room("never");
        await using var client = await Server.ConnectAndSubscribeAsync("kate", room);

        await client.UnsubscribeAsync(room);
        var first = await client.ReceiveAsync();
        await client.UnsubscribeAsync(room);
        var second = await client.ReceiveAsync();
        await client.UnsubscribeAsync(never);
        var third = await client.ReceiveAsync();

        Assert.Equal(("unsubscribed", room), (first.Type, first.Data.GetProperty("bullPenId").GetString()));
        Assert.Equal(("unsubscribed", room), (second.Type, second.Data.GetProperty("bullPenId").GetString()));
        Assert.Equal(("unsubscribed", never), (third.Type, third.Data.GetProperty("bullPenId").GetString()));
    }

    [Fact]
    public async Task Unsubscribe_stops_delivery_from_that_room_only()
    {
        var left = E2E.Room("left");
        var kept = E2E.Room("kept");
        await using var leaver = await Server.ConnectAndSubscribeAsync("leo", left);
        await leaver.SubscribeAsync(kept);
        Assert.Equal("subscribed", (await leaver.ReceiveAsync()).Type);
        await using var stayer = await Server.ConnectAndSubscribeAsync("mia", left);

        var before = await Server.PublishAsync(left, "leaderboard_update", new { top = "o1" });
        Assert.Equal(before, (await leaver.ReceiveAsync()).Seq);
        Assert.Equal(before, (await stayer.ReceiveAsync()).Seq);

        await leaver.UnsubscribeAsync(left);
        Assert.Equal("unsubscribed", (await leaver.ReceiveAsync()).Type);

        var after = await Server.PublishAsync(left, "leaderboard_update", new { top = "o2" });
        var barrier = await Server.PublishAsync(kept, "ranking_changed", new { top = "leo" });

        // The room still publishes (the other subscriber gets it) ...
        var stayerFrame = await stayer.ReceiveAsync();
        Assert.Equal((left, after), (stayerFrame.BullPenId, stayerFrame.Seq));
        // ... but the next (and only) thing the leaver gets is the other room's event.
        var leaverFrames = await leaver.BarrierAsync();
        var only = Assert.Single(leaverFrames);
        Assert.Equal(("ranking_changed", kept, barrier), (only.Type, only.BullPenId, only.Seq));
    }

    [Fact]
    public async Task Resubscribing_after_unsubscribe_resumes_delivery()
    {
        var room = E2E.Room("resub");
        await using var client = await Server.ConnectAndSubscribeAsync("nina", room);
        await client.UnsubscribeAsync(room);
        Assert.Equal("unsubscribed", (await client.ReceiveAsync()).Type);
        await Server.PublishAsync(room, "snapshot_created", new { n = 1 });

        await client.SubscribeAsync(room);
        var subscribed = await client.ReceiveAsync();
        Assert.Equal(("subscribed", 1L), (subscribed.Type, subscribed.Data.GetProperty("seq").GetInt64()));
        var seq = await Server.PublishAsync(room, "snapshot_created", new { n = 2 });

        var frames = await client.BarrierAsync();
        Assert.Equal(seq, Assert.Single(frames).Seq);
    }

    // ---------------------------------------------------------------- events

    [Fact]
    public async Task Every_one_of_the_14_event_types_reaches_a_subscriber_with_type_room_seq_and_data()
    {
        var room = E2E.Room("events");
        var other = E2E.Room("events-other");
        await using var client = await Server.ConnectAndSubscribeAsync("olga", room);
        await Server.PublishAsync(other, "order_executed", new { noise = true, userId = "olga" });

        var published = new List<(string Type, long Seq, string Data)>();
        for (var i = 0; i < AllEventTypes.Length; i++)
        {
            // userId makes the private types (orders, positions) this subscriber's own, so all 14 reach her.
            var data = new { index = i, kind = AllEventTypes[i], userId = "olga", nested = new { values = new[] { i, i * 2 }, text = "ünïcödé \"q\"" } };
            published.Add((AllEventTypes[i], await Server.PublishAsync(room, AllEventTypes[i], data), JsonSerializer.Serialize(data)));
        }

        var frames = await client.BarrierAsync();

        Assert.Equal(AllEventTypes.Length, frames.Count);
        Assert.Equal(Enumerable.Range(1, AllEventTypes.Length).Select(i => (long)i), published.Select(p => p.Seq));
        for (var i = 0; i < frames.Count; i++)
        {
            var (type, seq, data) = published[i];
            Assert.Equal(type, frames[i].Type);
            Assert.Equal(room, frames[i].BullPenId);
            Assert.Equal(seq, frames[i].Seq);
            using var expected = JsonDocument.Parse(data);
            Assert.True(JsonElement.DeepEquals(expected.RootElement, frames[i].Data), $"{type}: {frames[i].Data} != {data}");
        }
    }

    [Fact]
    public async Task Fan_out_to_3_rooms_of_20_clients_delivers_each_client_exactly_its_rooms_events_in_seq_order()
    {
        const int clientsPerRoom = 20;
        const int eventsPerRoom = 10;
        var rooms = Enumerable.Range(0, 3).Select(r => E2E.Room($"fan{r}")).ToArray();
        var clients = new List<(string Room, WsClient Client)>();
        try
        {
            var connecting = rooms.SelectMany(room => Enumerable.Range(0, clientsPerRoom).Select(async c =>
                (room, await Server.ConnectAndSubscribeAsync($"fan-{c}", room)))).ToList();
            foreach (var connected in connecting)
                clients.Add(await connected);

            // Rooms publish concurrently, each room's events in order (so seq n carries data n).
            await Task.WhenAll(rooms.Select(async room =>
            {
                for (var n = 1; n <= eventsPerRoom; n++)
                {
                    var seq = await Server.PublishAsync(room, PublicEventTypes[n % PublicEventTypes.Length], new { room, n });
                    Assert.Equal(n, seq);
                }
            }));

            var received = await Task.WhenAll(clients.Select(c => c.Client.BarrierAsync()));

            for (var i = 0; i < clients.Count; i++)
            {
                var room = clients[i].Room;
                var frames = received[i];
                Assert.Equal(Enumerable.Range(1, eventsPerRoom).Select(n => (long)n), frames.Select(f => f.Seq));
                Assert.All(frames, f =>
                {
                    Assert.Equal(room, f.BullPenId);
                    Assert.Equal(room, f.Data.GetProperty("room").GetString());
                    Assert.Equal(f.Seq, f.Data.GetProperty("n").GetInt64());
                    Assert.Equal(PublicEventTypes[(int)f.Seq % PublicEventTypes.Length], f.Type);
                });
            }
        }
        finally
        {
            await Task.WhenAll(clients.Select(c => c.Client.DisposeAsync().AsTask()));
        }
    }

    // ---------------------------------------------------------------- frame rules: binary and size

    [Fact]
    public async Task Binary_frame_closes_the_connection_with_1003()
    {
        await using var client = await Server.ConnectAsync("pete");
        await client.SendBytesAsync([1, 2, 3, 4], WebSocketMessageType.Binary);

        Assert.Equal(1003, await client.ReceiveCloseAsync());
    }

    [Theory]
    [InlineData(64 * 1024 + 1)]
    [InlineData(65 * 1024)]
    public async Task Text_message_over_64KiB_closes_the_connection_with_1009(int size)
    {
        await using var client = await Server.ConnectAsync("quinn");
        await client.SendBytesAsync(PaddedPing(size));

        Assert.Equal(1009, await client.ReceiveCloseAsync());
    }

    [Fact]
    public async Task Valid_ping_of_exactly_64KiB_is_accepted_and_answered_with_pong()
    {
        await using var client = await Server.ConnectAsync("quinn");
        var message = PaddedPing(64 * 1024);
        Assert.Equal(65536, message.Length);
        await client.SendBytesAsync(message);

        var pong = await client.ReceiveAsync();

        Assert.Equal("pong", pong.Type);
        var pad = pong.Data.GetProperty("pad").GetString()!;
        Assert.Equal(message.Length - Encoding.UTF8.GetByteCount("""{"type":"ping","data":{"pad":""}}"""), pad.Length);
        Assert.Empty(await client.BarrierAsync());
    }

    [Fact]
    public async Task Non_json_message_of_exactly_64KiB_is_answered_with_invalid_json_and_the_connection_stays_open()
    {
        await using var client = await Server.ConnectAsync("quinn");
        await client.SendBytesAsync(Enumerable.Repeat((byte)'a', 64 * 1024).ToArray());

        var reply = await client.ReceiveAsync();

        Assert.Equal(("error", "invalid_json"), (reply.Type, reply.Code));
        Assert.Empty(await client.BarrierAsync());
    }

    [Fact]
    public async Task Fragmented_message_is_reassembled_and_a_fragmented_ping_of_exactly_64KiB_is_accepted()
    {
        await using var client = await Server.ConnectAsync("rita");
        var message = PaddedPing(64 * 1024);

        await SendFragmentedAsync(client, message, fragments: 4);
        var pong = await client.ReceiveAsync();

        Assert.Equal("pong", pong.Type);
        Assert.Equal(message.Length - 33, pong.Data.GetProperty("pad").GetString()!.Length);
    }

    [Fact]
    public async Task Fragmented_message_over_64KiB_in_total_closes_the_connection_with_1009()
    {
        await using var client = await Server.ConnectAsync("rita");

        // Every fragment is small; only the reassembled message is over the limit.
        await SendFragmentedAsync(client, PaddedPing(64 * 1024 + 1), fragments: 8);

        Assert.Equal(1009, await client.ReceiveCloseAsync());
    }

    [Fact]
    public async Task Pipelined_messages_are_each_answered_once_and_a_subscribe_right_after_auth_is_authenticated()
    {
        var room = E2E.Room("pipeline");
        await using var client = await Server.ConnectRawAsync();

        // No waiting between sends: the subscribe must still see the auth that came before it.
        await client.SendAuthAsync(Server.UserToken("sam"));
        await client.SubscribeAsync(room);
        await client.SendTextAsync("""{"type":"ping","data":{"n":1}}""");
        await client.SendTextAsync("""{"type":"nope"}""");
        await client.UnsubscribeAsync(room);
        await client.SendTextAsync("""{"type":"ping","data":{"n":2}}""");

        var frames = new List<Frame>();
        for (var i = 0; i < 6; i++)
            frames.Add(await client.ReceiveAsync());
        var described = frames.Select(f => f.Type switch
        {
            "pong" => $"pong{f.Data.GetProperty("n").GetInt32()}",
            "error" => $"error:{f.Code}",
            _ => f.Type,
        }).ToList();

        // Replies the connection gives itself keep their order; room replies keep theirs (they may be overtaken by
        // the former, since they make a round trip through the room).
        Assert.Equal("auth_success", described[0]);
        Assert.Equal(["pong1", "error:unknown_type", "pong2"], described.Where(d => d.StartsWith("pong", StringComparison.Ordinal) || d.StartsWith("error", StringComparison.Ordinal)));
        Assert.Equal(["subscribed", "unsubscribed"], described.Where(d => d.EndsWith("subscribed", StringComparison.Ordinal)));
        Assert.Empty(await client.BarrierAsync());
    }

    [Theory]
    [InlineData("""{"type":"\ud800","data":{}}""", "invalid_message")]
    [InlineData("""{"type":"subscribe_room","data":{"bullPenId":"\ud800"}}""", "invalid_room")]
    public async Task String_with_a_lone_surrogate_escape_is_answered_with_an_error_and_the_connection_stays_open(string message, string code)
    {
        await using var client = await Server.ConnectAsync("tina");
        await client.SendTextAsync(message);

        var reply = await client.ReceiveAsync();

        Assert.Equal(("error", code), (reply.Type, reply.Code));
        Assert.Empty(await client.BarrierAsync());
    }

    [Fact]
    public async Task Ping_whose_data_has_a_lone_surrogate_escape_is_echoed_verbatim()
    {
        await using var client = await Server.ConnectAsync("tina");
        await client.SendTextAsync("""{"type":"ping","data":{"s":"\ud800"}}""");

        var pong = await client.ReceiveAsync();

        Assert.Equal("pong", pong.Type);
        Assert.Equal("""{"s":"\ud800"}""", pong.Data.GetRawText());
    }

    [Fact]
    public async Task Publishing_an_event_whose_type_or_room_has_a_lone_surrogate_escape_answers_400()
    {
        using var single = await Server.PostAsync($"/api/rooms/{E2E.Room("surrogate")}/events", """{"type":"\ud800","data":{}}""");
        using var batch = await Server.PostAsync("/api/events", """[{"bullPenId":"\ud800","type":"room_started","data":{}}]""");

        Assert.Equal(System.Net.HttpStatusCode.BadRequest, single.StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, batch.StatusCode);
    }

    private static async Task SendFragmentedAsync(WsClient client, byte[] message, int fragments)
    {
        using var timeout = new CancellationTokenSource(WsClient.DefaultTimeout);
        var size = (message.Length + fragments - 1) / fragments;
        for (var offset = 0; offset < message.Length; offset += size)
        {
            var length = Math.Min(size, message.Length - offset);
            await client.Socket.SendAsync(message.AsMemory(offset, length), WebSocketMessageType.Text,
                endOfMessage: offset + length == message.Length, timeout.Token);
        }
    }

    /// <summary>A valid ping of exactly <paramref name="size"/> bytes: <c>{"type":"ping","data":{"pad":"xxx…"}}</c>.</summary>
    private static byte[] PaddedPing(int size)
    {
        var empty = """{"type":"ping","data":{"pad":""}}""";
        var text = empty.Replace("\"\"", "\"" + new string('x', size - empty.Length) + "\"", StringComparison.Ordinal);
        var bytes = Encoding.UTF8.GetBytes(text);
        Assert.Equal(size, bytes.Length);
        return bytes;
    }
}
