using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using TradeRoom.Actors.Auth;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Integration;

/// <summary>The HTTP API end to end: real Kestrel, real sockets, real actor system.</summary>
public class HttpApiTests(SharedServerFixture fixture) : IClassFixture<SharedServerFixture>
{
    private const string OnePath = "one";
    private const string BatchPath = "batch";

    /// <summary>The user the subscribing clients of these tests authenticate as, and so the <c>data.userId</c> of the private events published to them.</summary>
    private const string Trader = "u1";

    private TestServer Server => fixture.Server;

    private static string NewRoom() => "room-" + Guid.NewGuid().ToString("N");

    private static string PathFor(string endpoint, string room) =>
        endpoint == OnePath ? $"/api/rooms/{room}/events" : "/api/events";

    /// <summary>A valid body for <paramref name="endpoint"/>: one private <c>order_executed</c> for <see cref="Trader"/>.</summary>
    private static string ValidBodyFor(string endpoint, string room) =>
        endpoint == OnePath
            ? $$$"""{"type":"order_executed","data":{"userId":"{{{Trader}}}","orderId":"o1"}}"""
            : $$$"""[{"bullPenId":"{{{room}}}","type":"order_executed","data":{"userId":"{{{Trader}}}","orderId":"o1"}}]""";

    /// <summary>Publishes a marker to <paramref name="room"/> and asserts its seq: proof of how many events the room took before it.</summary>
    private async Task AssertRoomTookNoEventsAsync(string room)
    {
        var seq = await Server.PublishAsync(room, "member_joined", new { userId = "marker" });
        Assert.Equal(1, seq);
    }

    // ---------------------------------------------------------------- POST /api/rooms/{bullPenId}/events

    [Fact]
    public async Task Publish_one_answers_202_with_room_and_seq_and_the_subscriber_receives_the_event()
    {
        var room = NewRoom();
        await using var client = await Server.ConnectAndSubscribeAsync(Trader, room);

        var first = await Server.PostJsonAsync($"/api/rooms/{room}/events", $$$"""{"type":"order_executed","data":{"userId":"{{{Trader}}}","orderId":"o1","price":101.25}}""");
        var second = await Server.PostJsonAsync($"/api/rooms/{room}/events", $$$"""{"type":"order_failed","data":{"userId":"{{{Trader}}}","orderId":"o2"}}""");

        Assert.Equal(HttpStatusCode.Accepted, first.Status);
        Assert.Equal("application/json", first.MediaType);
        Assert.Equal(room, first.Json.GetProperty("bullPenId").GetString());
        Assert.Equal(1, first.Json.GetProperty("seq").GetInt64());
        Assert.Equal(HttpStatusCode.Accepted, second.Status);
        Assert.Equal(2, second.Json.GetProperty("seq").GetInt64());

        var e1 = await client.ReceiveAsync();
        Assert.Equal(("order_executed", room, 1L), (e1.Type, e1.BullPenId, e1.Seq));
        Assert.Equal("o1", e1.Data.GetProperty("orderId").GetString());
        Assert.Equal(101.25m, e1.Data.GetProperty("price").GetDecimal());
        var e2 = await client.ReceiveAsync();
        Assert.Equal(("order_failed", room, 2L), (e2.Type, e2.BullPenId, e2.Seq));
    }

    [Theory]
    [InlineData("{not json", "invalid_json")]
    [InlineData("", "invalid_json")]
    [InlineData("""{"type":"order_executed","data":{}} trailing""", "invalid_json")]
    [InlineData("[]", "invalid_message")]
    [InlineData("\"order_executed\"", "invalid_message")]
    [InlineData("42", "invalid_message")]
    [InlineData("""{"data":{}}""", "invalid_message")]
    [InlineData("""{"type":5,"data":{}}""", "invalid_message")]
    [InlineData("""{"type":null,"data":{}}""", "invalid_message")]
    [InlineData("""{"type":"no_such_event","data":{}}""", "unknown_type")]
    [InlineData("""{"type":"ORDER_EXECUTED","data":{}}""", "unknown_type")]
    [InlineData("""{"type":"order_executed"}""", "invalid_message")]
    [InlineData("""{"type":"order_executed","data":null}""", "invalid_message")]
    [InlineData("""{"type":"order_executed","data":"text"}""", "invalid_message")]
    [InlineData("""{"type":"order_executed","data":[1,2]}""", "invalid_message")]
    [InlineData("""{"type":"order_executed","data":7}""", "invalid_message")]
    public async Task Publish_one_with_a_bad_body_is_400_with_the_error_code_and_publishes_nothing(string body, string code)
    {
        var room = NewRoom();

        var response = await Server.PostJsonAsync($"/api/rooms/{room}/events", body);

        Assert.Equal(HttpStatusCode.BadRequest, response.Status);
        Assert.Equal(code, response.ErrorCode);
        Assert.False(string.IsNullOrWhiteSpace(response.ErrorMessage));
        await AssertRoomTookNoEventsAsync(room);
    }

    /// <summary>
    /// Regression: a lone surrogate escape is valid JSON but no text. A room_started / room_ended passed validation
    /// with one, then threw inside the room (which rewrites their data), and the publisher waited for a 503 timeout.
    /// </summary>
    [Theory]
    [InlineData("room_started", """{"name":"\ud800"}""")]
    [InlineData("room_ended", """{"name":"a\udfffb"}""")]
    [InlineData("room_started", """{"\ud800":1}""")]
    [InlineData("room_state_changed", """{"nested":{"deeper":["ok","\udbff"]}}""")]
    [InlineData("leaderboard_update", """{"entries":[{"userId":"\ud83d"}]}""")]
    [InlineData("member_joined", """{"userId":"\ud800"}""")]
    [InlineData("order_executed", """{"userId":"u1","note":"\udc00\ud800"}""")]
    public async Task Publish_whose_data_holds_a_lone_surrogate_escape_is_400_invalid_message_and_publishes_nothing(string type, string data)
    {
        var room = NewRoom();

        var response = await Server.PostJsonAsync($"/api/rooms/{room}/events", "{\"type\":\"" + type + "\",\"data\":" + data + "}");

        Assert.Equal(HttpStatusCode.BadRequest, response.Status);
        Assert.Equal("invalid_message", response.ErrorCode);
        await AssertRoomTookNoEventsAsync(room);
    }

    [Fact]
    public async Task Batch_with_a_lone_surrogate_in_a_later_event_publishes_none_of_it()
    {
        var room = NewRoom();
        var body = $$$"""[{"bullPenId":"{{{room}}}","type":"room_started","data":{"name":"fine"}},{"bullPenId":"{{{room}}}","type":"room_ended","data":{"name":"\ud800"}}]""";

        var response = await Server.PostJsonAsync("/api/events", body);

        Assert.Equal(HttpStatusCode.BadRequest, response.Status);
        Assert.Equal("invalid_message", response.ErrorCode);
        Assert.Contains("events[1]", response.ErrorMessage, StringComparison.Ordinal);
        await AssertRoomTookNoEventsAsync(room);
    }

    [Fact]
    public async Task Escaped_text_including_a_surrogate_pair_is_published_and_delivered_as_sent()
    {
        var room = NewRoom();
        await using var client = await Server.ConnectAndSubscribeAsync(Trader, room);

        var response = await Server.PostJsonAsync($"/api/rooms/{room}/events", """{"type":"room_started","data":{"name":"\ud83d\ude80 \u00e9\n"}}""");

        Assert.Equal(HttpStatusCode.Accepted, response.Status);
        var e = await client.ReceiveAsync();
        Assert.Equal("room_started", e.Type);
        Assert.Equal("\U0001F680 \u00e9\n", e.Data.GetProperty("name").GetString());
    }

    [Fact]
    public async Task Publish_one_to_a_129_character_room_is_400_invalid_room()
    {
        var response = await Server.PostJsonAsync($"/api/rooms/{new string('a', 129)}/events", ValidBodyFor(OnePath, ""));

        Assert.Equal(HttpStatusCode.BadRequest, response.Status);
        Assert.Equal("invalid_room", response.ErrorCode);
    }

    [Fact]
    public async Task Publish_one_to_a_128_character_room_is_accepted_and_delivered()
    {
        var room = Guid.NewGuid().ToString("N").PadRight(128, 'z');
        await using var client = await Server.ConnectAndSubscribeAsync(Trader, room);

        var response = await Server.PostJsonAsync($"/api/rooms/{room}/events", ValidBodyFor(OnePath, room));

        Assert.Equal(HttpStatusCode.Accepted, response.Status);
        Assert.Equal(room, response.Json.GetProperty("bullPenId").GetString());
        Assert.Equal(room, (await client.ReceiveAsync()).BullPenId);
    }

    [Fact]
    public async Task Publish_one_to_a_percent_encoded_room_reaches_subscribers_of_the_decoded_id()
    {
        var room = "desk 7 é " + Guid.NewGuid().ToString("N");
        await using var client = await Server.ConnectAndSubscribeAsync(Trader, room);

        var response = await Server.PostJsonAsync($"/api/rooms/{Uri.EscapeDataString(room)}/events", ValidBodyFor(OnePath, room));

        Assert.Equal(HttpStatusCode.Accepted, response.Status);
        Assert.Equal(room, response.Json.GetProperty("bullPenId").GetString());
        var frame = await client.ReceiveAsync();
        Assert.Equal(room, frame.BullPenId);
    }

    [Fact]
    public async Task Publish_one_to_a_room_whose_id_contains_a_slash_reaches_its_subscribers()
    {
        var room = "desk/" + Guid.NewGuid().ToString("N");
        await using var client = await Server.ConnectAndSubscribeAsync(Trader, room);

        var response = await Server.PostJsonAsync($"/api/rooms/{Uri.EscapeDataString(room)}/events", ValidBodyFor(OnePath, room));

        Assert.Equal(HttpStatusCode.Accepted, response.Status);
        Assert.Equal(room, response.Json.GetProperty("bullPenId").GetString());
        Assert.Equal(room, (await client.ReceiveAsync()).BullPenId);
    }

    // ---------------------------------------------------------------- authentication and authorization

    [Theory]
    [InlineData(OnePath, "none")]
    [InlineData(OnePath, "basic-scheme")]
    [InlineData(OnePath, "empty-bearer")]
    [InlineData(OnePath, "malformed")]
    [InlineData(OnePath, "expired")]
    [InlineData(OnePath, "not-yet-valid")]
    [InlineData(OnePath, "wrong-secret")]
    [InlineData(OnePath, "unsigned")]
    [InlineData(BatchPath, "none")]
    [InlineData(BatchPath, "basic-scheme")]
    [InlineData(BatchPath, "empty-bearer")]
    [InlineData(BatchPath, "malformed")]
    [InlineData(BatchPath, "expired")]
    [InlineData(BatchPath, "not-yet-valid")]
    [InlineData(BatchPath, "wrong-secret")]
    [InlineData(BatchPath, "unsigned")]
    public async Task Publish_without_a_valid_token_is_401_unauthorized_with_a_bearer_challenge_and_publishes_nothing(string endpoint, string credential)
    {
        var room = NewRoom();
        var authorization = credential switch
        {
            "none" => null,
            "basic-scheme" => "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("service:secret")),
            "empty-bearer" => "Bearer ",
            "malformed" => "Bearer not.a.jwt",
            "expired" => "Bearer " + Server.Tokens.Create("svc", TokenIssuer.ServiceRole, TimeSpan.FromMinutes(-5)),
            "not-yet-valid" => "Bearer " + Server.Tokens.Create("svc", TokenIssuer.ServiceRole, TimeSpan.FromMinutes(10), DateTimeOffset.UtcNow.AddMinutes(5)),
            "wrong-secret" => "Bearer " + new TokenIssuer("some-other-secret-that-is-long-enough-0123456789").ServiceToken("svc", TimeSpan.FromMinutes(10)),
            "unsigned" => "Bearer " + UnsignedServiceToken(),
            _ => throw new ArgumentOutOfRangeException(nameof(credential)),
        };

        var response = await SendAsync(PathFor(endpoint, room), ValidBodyFor(endpoint, room), authorization);

        Assert.Equal(HttpStatusCode.Unauthorized, response.Status);
        Assert.Equal("unauthorized", response.ErrorCode);
        Assert.Contains(response.Headers.WwwAuthenticate, h => h.Scheme == "Bearer");
        await AssertRoomTookNoEventsAsync(room);
    }

    [Theory]
    [InlineData(OnePath)]
    [InlineData(BatchPath)]
    public async Task Publish_with_a_valid_user_token_is_403_forbidden_and_publishes_nothing(string endpoint)
    {
        var room = NewRoom();

        var response = await SendAsync(PathFor(endpoint, room), ValidBodyFor(endpoint, room), "Bearer " + Server.UserToken("alice"));

        Assert.Equal(HttpStatusCode.Forbidden, response.Status);
        Assert.Equal("forbidden", response.ErrorCode);
        await AssertRoomTookNoEventsAsync(room);
    }

    [Theory]
    [InlineData(OnePath)]
    [InlineData(BatchPath)]
    public async Task Publish_with_a_token_whose_role_is_not_service_is_403_forbidden(string endpoint)
    {
        var room = NewRoom();
        var token = Server.Tokens.Create("svc", "admin", TimeSpan.FromMinutes(10));

        var response = await SendAsync(PathFor(endpoint, room), ValidBodyFor(endpoint, room), "Bearer " + token);

        Assert.Equal(HttpStatusCode.Forbidden, response.Status);
        Assert.Equal("forbidden", response.ErrorCode);
    }

    [Theory]
    [InlineData(OnePath)]
    [InlineData(BatchPath)]
    public async Task Authorization_is_checked_before_the_body_so_an_anonymous_bad_body_is_401(string endpoint)
    {
        var response = await SendAsync(PathFor(endpoint, NewRoom()), "{not json", authorization: null);

        Assert.Equal(HttpStatusCode.Unauthorized, response.Status);
        Assert.Equal("unauthorized", response.ErrorCode);
    }

    // ---------------------------------------------------------------- POST /api/events (batch)

    [Fact]
    public async Task Batch_gives_consecutive_seqs_per_room_in_array_order_and_independent_seqs_across_rooms()
    {
        var a = NewRoom();
        var b = NewRoom();
        await using var clientA = await Server.ConnectAndSubscribeAsync(Trader, a);
        await using var clientB = await Server.ConnectAndSubscribeAsync("u2", b);
        Assert.Equal(1, await Server.PublishAsync(a, "room_started", new { }));
        Assert.Equal(1, (await clientA.ReceiveAsync()).Seq);

        var body = $$$"""
            [
              {"bullPenId":"{{{a}}}","type":"order_executed","data":{"userId":"{{{Trader}}}","n":1}},
              {"bullPenId":"{{{b}}}","type":"position_update","data":{"userId":"u2","n":2}},
              {"bullPenId":"{{{a}}}","type":"order_failed","data":{"userId":"{{{Trader}}}","n":3}},
              {"bullPenId":"{{{a}}}","type":"order_cancelled","data":{"userId":"{{{Trader}}}","n":4}},
              {"bullPenId":"{{{b}}}","type":"position_closed","data":{"userId":"u2","n":5}}
            ]
            """;
        var response = await Server.PostJsonAsync("/api/events", body);

        Assert.Equal(HttpStatusCode.Accepted, response.Status);
        Assert.Equal(5, response.Json.GetProperty("accepted").GetInt32());
        Assert.Equal([2L, 1L, 3L, 4L, 2L], response.Json.GetProperty("seqs").EnumerateArray().Select(s => s.GetInt64()));

        foreach (var (type, seq, n) in new[] { ("order_executed", 2L, 1), ("order_failed", 3L, 3), ("order_cancelled", 4L, 4) })
        {
            var frame = await clientA.ReceiveAsync();
            Assert.Equal((type, a, seq, n), (frame.Type, frame.BullPenId!, frame.Seq, frame.Data.GetProperty("n").GetInt32()));
        }
        foreach (var (type, seq, n) in new[] { ("position_update", 1L, 2), ("position_closed", 2L, 5) })
        {
            var frame = await clientB.ReceiveAsync();
            Assert.Equal((type, b, seq, n), (frame.Type, frame.BullPenId!, frame.Seq, frame.Data.GetProperty("n").GetInt32()));
        }
    }

    [Fact]
    public async Task Batch_of_many_events_to_one_room_is_delivered_in_array_order()
    {
        var room = NewRoom();
        await using var client = await Server.ConnectAndSubscribeAsync(Trader, room);
        // A public type that is not conflated: a client behind on leaderboard_update would rightly get only the newest.
        var events = Enumerable.Range(1, 50).Select(i => new { bullPenId = room, type = "ranking_changed", data = new { i } });

        var response = await Server.PostJsonAsync("/api/events", JsonSerializer.Serialize(events));

        Assert.Equal(HttpStatusCode.Accepted, response.Status);
        Assert.Equal(Enumerable.Range(1, 50).Select(i => (long)i), response.Json.GetProperty("seqs").EnumerateArray().Select(s => s.GetInt64()));
        for (var i = 1; i <= 50; i++)
        {
            var frame = await client.ReceiveAsync();
            Assert.Equal((i, (long)i), (frame.Data.GetProperty("i").GetInt32(), frame.Seq));
        }
    }

    [Theory]
    [InlineData("""{"bullPenId":"{room}","type":"no_such_event","data":{}}""", "unknown_type")]
    [InlineData("""{"bullPenId":"{room}","type":"order_executed"}""", "invalid_message")]
    [InlineData("""{"bullPenId":"{room}","type":"order_executed","data":[1]}""", "invalid_message")]
    [InlineData("""{"bullPenId":"{room}","type":"order_executed","data":"x"}""", "invalid_message")]
    [InlineData("""{"bullPenId":"{room}","data":{}}""", "invalid_message")]
    [InlineData("""{"bullPenId":"{room}","type":7,"data":{}}""", "invalid_message")]
    [InlineData("""{"type":"order_executed","data":{}}""", "invalid_room")]
    [InlineData("""{"bullPenId":"","type":"order_executed","data":{}}""", "invalid_room")]
    [InlineData("""{"bullPenId":null,"type":"order_executed","data":{}}""", "invalid_room")]
    [InlineData("""{"bullPenId":1.5,"type":"order_executed","data":{}}""", "invalid_room")]
    [InlineData("""{"bullPenId":{"id":"x"},"type":"order_executed","data":{}}""", "invalid_room")]
    [InlineData("""{"bullPenId":["x"],"type":"order_executed","data":{}}""", "invalid_room")]
    [InlineData("""{"bullPenId":true,"type":"order_executed","data":{}}""", "invalid_room")]
    [InlineData("""{"bullPenId":"{long}","type":"order_executed","data":{}}""", "invalid_room")]
    [InlineData("\"order_executed\"", "invalid_message")]
    [InlineData("[]", "invalid_message")]
    public async Task Batch_with_one_bad_event_is_400_and_publishes_none_of_its_events(string badEvent, string code)
    {
        var a = NewRoom();
        var b = NewRoom();
        await using var clientA = await Server.ConnectAndSubscribeAsync(Trader, a);
        await using var clientB = await Server.ConnectAndSubscribeAsync("u2", b);
        Assert.Equal(1, await Server.PublishAsync(a, "room_started", new { }));
        Assert.Equal(1, (await clientA.ReceiveAsync()).Seq);

        var bad = badEvent.Replace("{room}", a, StringComparison.Ordinal).Replace("{long}", new string('r', 129), StringComparison.Ordinal);
        var body = $$$"""
            [
              {"bullPenId":"{{{a}}}","type":"order_executed","data":{"userId":"{{{Trader}}}","n":1}},
              {{{bad}}},
              {"bullPenId":"{{{b}}}","type":"order_executed","data":{"userId":"u2","n":3}}
            ]
            """;
        var response = await Server.PostJsonAsync("/api/events", body);

        Assert.Equal(HttpStatusCode.BadRequest, response.Status);
        Assert.Equal(code, response.ErrorCode);
        Assert.StartsWith("events[1]", response.ErrorMessage, StringComparison.Ordinal);

        // The rooms' next seqs are unchanged, and the subscribers' next frames are these markers: nothing came in between.
        Assert.Equal(2, await Server.PublishAsync(a, "member_joined", new { userId = "marker" }));
        Assert.Equal(1, await Server.PublishAsync(b, "member_joined", new { userId = "marker" }));
        var nextA = await clientA.ReceiveAsync();
        Assert.Equal(("member_joined", 2L), (nextA.Type, nextA.Seq));
        var nextB = await clientB.ReceiveAsync();
        Assert.Equal(("member_joined", 1L), (nextB.Type, nextB.Seq));
    }

    [Theory]
    [InlineData("{not json", "invalid_json")]
    [InlineData("", "invalid_json")]
    [InlineData("[{\"bullPenId\":\"r\",\"type\":\"order_executed\",\"data\":{}}", "invalid_json")]
    [InlineData("""{"bullPenId":"r","type":"order_executed","data":{}}""", "invalid_message")]
    [InlineData("\"events\"", "invalid_message")]
    [InlineData("12", "invalid_message")]
    [InlineData("null", "invalid_message")]
    public async Task Batch_body_that_is_not_a_json_array_is_400(string body, string code)
    {
        var response = await Server.PostJsonAsync("/api/events", body);

        Assert.Equal(HttpStatusCode.BadRequest, response.Status);
        Assert.Equal(code, response.ErrorCode);
    }

    [Fact]
    public async Task Batch_takes_an_integer_bullPenId_as_its_decimal_string()
    {
        var id = Random.Shared.NextInt64(1_000_000_000, long.MaxValue);
        var room = id.ToString(System.Globalization.CultureInfo.InvariantCulture);
        await using var client = await Server.ConnectAndSubscribeAsync(Trader, room);

        var response = await Server.PostJsonAsync("/api/events", $$$"""[{"bullPenId":{{{room}}},"type":"room_started","data":{"at":1}}]""");

        Assert.Equal(HttpStatusCode.Accepted, response.Status);
        Assert.Equal([1L], response.Json.GetProperty("seqs").EnumerateArray().Select(s => s.GetInt64()));
        var frame = await client.ReceiveAsync();
        Assert.Equal(("room_started", room, 1L), (frame.Type, frame.BullPenId!, frame.Seq));
    }

    [Fact]
    public async Task Batch_integer_bullPenId_and_its_string_form_are_the_same_room()
    {
        var room = Random.Shared.NextInt64(1_000_000_000, long.MaxValue).ToString(System.Globalization.CultureInfo.InvariantCulture);

        var response = await Server.PostJsonAsync("/api/events", $$$"""
            [{"bullPenId":{{{room}}},"type":"room_started","data":{}},{"bullPenId":"{{{room}}}","type":"room_ended","data":{}}]
            """);

        Assert.Equal(HttpStatusCode.Accepted, response.Status);
        Assert.Equal([1L, 2L], response.Json.GetProperty("seqs").EnumerateArray().Select(s => s.GetInt64()));
    }

    [Fact]
    public async Task Empty_batch_is_accepted_with_no_seqs()
    {
        var response = await Server.PostJsonAsync("/api/events", "[]");

        Assert.Equal(HttpStatusCode.Accepted, response.Status);
        Assert.Equal(0, response.Json.GetProperty("accepted").GetInt32());
        Assert.Empty(response.Json.GetProperty("seqs").EnumerateArray());
    }

    [Fact]
    public async Task Concurrent_batches_are_each_published_whole_to_their_own_room()
    {
        const int workers = 32, rounds = 60, perBatch = 40;
        // Short ids keep each body (with its headers) inside one 4 KiB Kestrel block, where the parser reads the pooled memory in place.
        var prefix = Guid.NewGuid().ToString("N")[..8];
        var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var token = Server.ServiceToken();
        // Warm the publish path first, so the burst measures the server, not its cold start.
        await Server.PublishAsync($"{prefix}-warm", "room_started", new { });

        await Task.WhenAll(Enumerable.Range(0, workers).Select(w => Task.Run(async () =>
        {
            using var http = new HttpClient { BaseAddress = Server.Http.BaseAddress };
            var room = $"{prefix}-{w}";
            // A public type (no data.userId to add): the body stays as short as the comment above needs.
            var body = "[" + string.Join(",", Enumerable.Range(0, perBatch).Select(i => $$$"""{"bullPenId":"{{{room}}}","type":"ranking_changed","data":{"i":{{{i}}}}}""")) + "]";
            for (var r = 0; r < rounds && failures.IsEmpty; r++)
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, "/api/events") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
                var response = await ApiResponse.ReadAsync(http.SendAsync(request));
                var expected = $"{{\"accepted\":{perBatch},\"seqs\":[{string.Join(",", Enumerable.Range(r * perBatch + 1, perBatch))}]}}";
                if (response.Status != HttpStatusCode.Accepted || response.Text != expected)
                    failures.Enqueue($"room {room}, round {r}: {response}");
            }
        })));

        Assert.True(failures.IsEmpty, string.Join("\n", failures));
    }

    // ---------------------------------------------------------------- private events

    private static readonly string[] PrivateTypes =
        ["order_executed", "order_failed", "order_cancelled", "position_update", "position_closed", "portfolio_update"];

    public static TheoryData<string, string> PrivateTypesOnBothEndpoints()
    {
        var data = new TheoryData<string, string>();
        foreach (var endpoint in new[] { OnePath, BatchPath })
        {
            foreach (var type in PrivateTypes)
                data.Add(endpoint, type);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(PrivateTypesOnBothEndpoints))]
    public async Task Private_event_without_a_userId_is_400_missing_user_and_publishes_nothing(string endpoint, string type)
    {
        var a = NewRoom();
        var b = NewRoom();
        await using var clientA = await Server.ConnectAndSubscribeAsync(Trader, a);
        await using var clientB = await Server.ConnectAndSubscribeAsync(Trader, b);

        // In a batch, the event without a user comes after valid ones (a private one with its user, a public one in another room).
        var response = endpoint == OnePath
            ? await Server.PostJsonAsync($"/api/rooms/{a}/events", $$$"""{"type":"{{{type}}}","data":{"orderId":"o1"}}""")
            : await Server.PostJsonAsync("/api/events", $$$"""
                [
                  {"bullPenId":"{{{a}}}","type":"order_executed","data":{"userId":"{{{Trader}}}","orderId":"o0"}},
                  {"bullPenId":"{{{b}}}","type":"room_started","data":{}},
                  {"bullPenId":"{{{a}}}","type":"{{{type}}}","data":{"orderId":"o1"}}
                ]
                """);

        Assert.Equal(HttpStatusCode.BadRequest, response.Status);
        Assert.Equal("missing_user", response.ErrorCode);
        Assert.Contains("userId", response.ErrorMessage, StringComparison.Ordinal);
        if (endpoint == BatchPath)
            Assert.StartsWith("events[2]", response.ErrorMessage, StringComparison.Ordinal);
        else
            Assert.DoesNotContain("events[", response.ErrorMessage, StringComparison.Ordinal);

        // Neither room took an event, and the subscriber's next frames are the markers.
        await AssertRoomTookNoEventsAsync(a);
        await AssertRoomTookNoEventsAsync(b);
        var nextA = await clientA.ReceiveAsync();
        Assert.Equal(("member_joined", 1L), (nextA.Type, nextA.Seq));
        var nextB = await clientB.ReceiveAsync();
        Assert.Equal(("member_joined", 1L), (nextB.Type, nextB.Seq));
    }

    [Theory]
    [InlineData(OnePath, """{}""")]
    [InlineData(OnePath, """{"userId":42}""")]
    [InlineData(OnePath, """{"userId":null}""")]
    [InlineData(OnePath, """{"userId":true}""")]
    [InlineData(OnePath, """{"userId":{"id":"u1"}}""")]
    [InlineData(OnePath, """{"userId":["u1"]}""")]
    [InlineData(OnePath, """{"user":"u1"}""")]
    [InlineData(OnePath, """{"order":{"userId":"u1"}}""")]
    [InlineData(BatchPath, """{}""")]
    [InlineData(BatchPath, """{"userId":42}""")]
    [InlineData(BatchPath, """{"userId":null}""")]
    [InlineData(BatchPath, """{"userId":true}""")]
    [InlineData(BatchPath, """{"userId":{"id":"u1"}}""")]
    [InlineData(BatchPath, """{"userId":["u1"]}""")]
    [InlineData(BatchPath, """{"user":"u1"}""")]
    [InlineData(BatchPath, """{"order":{"userId":"u1"}}""")]
    public async Task Private_event_whose_top_level_userId_is_not_a_string_is_400_missing_user(string endpoint, string data)
    {
        var room = NewRoom();
        var body = endpoint == OnePath
            ? $$$"""{"type":"order_executed","data":{{{data}}}}"""
            : $$$"""[{"bullPenId":"{{{room}}}","type":"order_executed","data":{{{data}}}}]""";

        var response = await Server.PostJsonAsync(PathFor(endpoint, room), body);

        Assert.Equal(HttpStatusCode.BadRequest, response.Status);
        Assert.Equal("missing_user", response.ErrorCode);
        if (endpoint == BatchPath)
            Assert.StartsWith("events[0]", response.ErrorMessage, StringComparison.Ordinal);
        await AssertRoomTookNoEventsAsync(room);
    }

    [Theory]
    [InlineData(OnePath)]
    [InlineData(BatchPath)]
    public async Task Private_event_reaches_every_connection_of_its_user_and_no_other_subscriber_of_the_room(string endpoint)
    {
        var room = NewRoom();
        await using var alice = await Server.ConnectAndSubscribeAsync("alice", room);
        await using var aliceAgain = await Server.ConnectAndSubscribeAsync("alice", room);
        await using var bob = await Server.ConnectAndSubscribeAsync("bob", room);

        var response = endpoint == OnePath
            ? await Server.PostJsonAsync($"/api/rooms/{room}/events", """{"type":"order_executed","data":{"userId":"alice","orderId":"o1"}}""")
            : await Server.PostJsonAsync("/api/events", $$$"""[{"bullPenId":"{{{room}}}","type":"order_executed","data":{"userId":"alice","orderId":"o1"}}]""");
        Assert.Equal(HttpStatusCode.Accepted, response.Status);
        // A public marker after it: bob's next frame being the marker proves the private event never reached him.
        Assert.Equal(2, await Server.PublishAsync(room, "member_joined", new { userId = "marker" }));

        foreach (var client in new[] { alice, aliceAgain })
        {
            var frame = await client.ReceiveAsync();
            Assert.Equal(("order_executed", room, 1L), (frame.Type, frame.BullPenId!, frame.Seq));
            Assert.Equal(("alice", "o1"), (frame.Data.GetProperty("userId").GetString(), frame.Data.GetProperty("orderId").GetString()));
            var marker = await client.ReceiveAsync();
            Assert.Equal(("member_joined", 2L), (marker.Type, marker.Seq));
        }
        var bobsNext = await bob.ReceiveAsync();
        Assert.Equal(("member_joined", room, 2L), (bobsNext.Type, bobsNext.BullPenId!, bobsNext.Seq));
    }

    // ---------------------------------------------------------------- body size

    [Theory]
    [InlineData(OnePath, false)]
    [InlineData(OnePath, true)]
    [InlineData(BatchPath, false)]
    [InlineData(BatchPath, true)]
    public async Task Body_over_the_default_1MiB_limit_is_413_payload_too_large(string endpoint, bool chunked)
    {
        var room = NewRoom();
        const int size = 1024 * 1024 + 1;
        var body = endpoint == OnePath ? HttpTestExtensions.EventOfSize(size) : HttpTestExtensions.BatchOfSize(size, room);

        var response = await ApiResponse.ReadAsync(Server.PostBytesAsync(PathFor(endpoint, room), body, chunked));

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.Status);
        Assert.Equal("payload_too_large", response.ErrorCode);
        await AssertRoomTookNoEventsAsync(room);
    }

    [Theory]
    [InlineData(OnePath, false)]
    [InlineData(OnePath, true)]
    [InlineData(BatchPath, false)]
    [InlineData(BatchPath, true)]
    public async Task Body_of_almost_1MiB_is_accepted(string endpoint, bool chunked)
    {
        var room = NewRoom();
        const int size = 1024 * 1024 - 16;
        var body = endpoint == OnePath ? HttpTestExtensions.EventOfSize(size) : HttpTestExtensions.BatchOfSize(size, room);

        var response = await ApiResponse.ReadAsync(Server.PostBytesAsync(PathFor(endpoint, room), body, chunked));

        Assert.Equal(HttpStatusCode.Accepted, response.Status);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Body_under_a_configured_limit_above_Kestrels_30MB_default_is_accepted(bool chunked)
    {
        await using var server = await TestServer.StartAsync("traderoom.http.max-body-size = 64MiB");
        var room = NewRoom();

        var response = await ApiResponse.ReadAsync(server.PostBytesAsync(PathFor(OnePath, room), HttpTestExtensions.EventOfSize(31_000_000), chunked, chunkSize: 1 << 20));

        Assert.Equal(HttpStatusCode.Accepted, response.Status);
    }

    // ---------------------------------------------------------------- health and unknown paths

    [Fact]
    public async Task Health_uptime_is_whole_seconds_that_grow()
    {
        var first = await Server.GetJsonAsync("/api/health");
        Assert.Equal(HttpStatusCode.OK, first.Status);
        var start = first.Json.GetProperty("uptimeSeconds").GetInt64();
        Assert.True(start >= 0, $"uptimeSeconds {start}");

        await Eventually.MatchAsync(
            async () => (await Server.GetJsonAsync("/api/health")).Json.GetProperty("uptimeSeconds").GetInt64(),
            uptime => uptime > start, "uptimeSeconds grows", TimeSpan.FromSeconds(5));
    }

    [Theory]
    [InlineData("GET", "/api/nope")]
    [InlineData("POST", "/api/rooms")]
    [InlineData("GET", "/api")]
    [InlineData("DELETE", "/api/rooms/r1/events/extra")]
    public async Task Unknown_path_is_404_with_a_json_error_body(string method, string path)
    {
        var response = await ApiResponse.ReadAsync(Server.Http.SendAsync(new HttpRequestMessage(new HttpMethod(method), path)));

        Assert.Equal(HttpStatusCode.NotFound, response.Status);
        Assert.Equal("application/json", response.MediaType);
        Assert.Equal("not_found", response.ErrorCode);
        Assert.Contains(path, response.ErrorMessage, StringComparison.Ordinal);
    }

    // ---------------------------------------------------------------- helpers

    private Task<ApiResponse> SendAsync(string path, string body, string? authorization)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (authorization is not null)
            request.Headers.TryAddWithoutValidation("Authorization", authorization);
        return ApiResponse.ReadAsync(Server.Http.SendAsync(request));
    }

    /// <summary>A token with <c>alg: none</c> and no signature, claiming the service role.</summary>
    private static string UnsignedServiceToken()
    {
        static string Encode(string json) => Convert.ToBase64String(Encoding.UTF8.GetBytes(json)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var exp = DateTimeOffset.UtcNow.AddMinutes(10).ToUnixTimeSeconds();
        return Encode("""{"alg":"none","typ":"JWT"}""") + "." + Encode($$$"""{"userId":"svc","sub":"svc","role":"service","exp":{{{exp}}}}""") + ".";
    }

    /// <summary>The health counts on a server of its own, so that no other test's rooms or sockets are counted.</summary>
    public class Health
    {
        [Fact]
        public async Task Health_reports_ok_and_counts_connections_and_rooms_as_they_change()
        {
            await using var server = await TestServer.StartAsync();
            async Task<(long Connections, long Rooms)> CountsAsync()
            {
                var health = await server.GetJsonAsync("/api/health");
                Assert.Equal(HttpStatusCode.OK, health.Status);
                return (health.Json.GetProperty("connections").GetInt64(), health.Json.GetProperty("rooms").GetInt64());
            }

            var initial = await server.GetJsonAsync("/api/health");
            Assert.Equal(HttpStatusCode.OK, initial.Status);
            Assert.Equal("application/json", initial.MediaType);
            Assert.Equal("ok", initial.Json.GetProperty("status").GetString());
            Assert.Equal(JsonValueKind.Number, initial.Json.GetProperty("uptimeSeconds").ValueKind);
            Assert.Equal((0L, 0L), await CountsAsync());

            var alice = await server.ConnectAndSubscribeAsync("alice", "room-1");
            await Eventually.MatchAsync(CountsAsync, c => c == (1, 1), "one connection, one room");

            await using var bob = await server.ConnectAsync("bob");
            await Eventually.MatchAsync(CountsAsync, c => c == (2, 1), "two connections, one room");

            await server.PublishAsync("room-2", "room_started", new { });
            Assert.Equal((2L, 2L), await CountsAsync());

            await alice.DisposeAsync();
            await Eventually.MatchAsync(CountsAsync, c => c.Connections == 1, "alice's connection gone");
        }
    }

    /// <summary>A server whose body limit is 1 KiB.</summary>
    public sealed class SmallBodyLimitFixture : SharedServerFixture
    {
        protected override string? Hocon => "traderoom.http.max-body-size = 1KiB";
    }

    public class SmallBodyLimit(SmallBodyLimitFixture fixture) : IClassFixture<SmallBodyLimitFixture>
    {
        [Theory]
        [InlineData(OnePath, false)]
        [InlineData(OnePath, true)]
        [InlineData(BatchPath, false)]
        [InlineData(BatchPath, true)]
        public async Task Body_of_exactly_1KiB_is_accepted_and_one_byte_more_is_413(string endpoint, bool chunked)
        {
            var server = fixture.Server;
            var room = NewRoom();
            byte[] Body(int size) => endpoint == OnePath ? HttpTestExtensions.EventOfSize(size) : HttpTestExtensions.BatchOfSize(size, room);

            var atLimit = await ApiResponse.ReadAsync(server.PostBytesAsync(PathFor(endpoint, room), Body(1024), chunked));
            var overLimit = await ApiResponse.ReadAsync(server.PostBytesAsync(PathFor(endpoint, room), Body(1025), chunked));

            Assert.Equal(HttpStatusCode.Accepted, atLimit.Status);
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, overLimit.Status);
            Assert.Equal("payload_too_large", overLimit.ErrorCode);
            Assert.Contains("1024", overLimit.ErrorMessage, StringComparison.Ordinal);
            // Only the body at the limit was published.
            Assert.Equal(2, await server.PublishAsync(room, "member_joined", new { userId = "marker" }));
        }

        [Fact]
        public async Task Body_far_over_1KiB_sent_chunked_is_413()
        {
            var server = fixture.Server;
            var room = NewRoom();

            var response = await ApiResponse.ReadAsync(server.PostBytesAsync(PathFor(OnePath, room), HttpTestExtensions.EventOfSize(256 * 1024), chunked: true));

            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.Status);
            Assert.Equal("payload_too_large", response.ErrorCode);
        }
    }
}
