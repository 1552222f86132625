using System.Net;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Integration;

/// <summary>
/// Room ids with control, format, line-separator characters or lone surrogates are <c>invalid_room</c> wherever a
/// client names a room: a WebSocket subscribe, an HTTP path, a batch body. Nothing is created or published for them.
/// </summary>
public class RoomIdTests(SharedServerFixture fixture) : IClassFixture<SharedServerFixture>
{
    private TestServer Server => fixture.Server;

    private static readonly string[] Ids =
    [
        "nul\u0000x", "new\nline", "cr\rx", "tab\tx", "del\u007fx", "c1\u0085x", "esc\u001b[31mred",
        "bob\u202egnp.exe", "rtl\u200fmark", "zero\u200bwidth", "\ufeffbom", "iso\u2066late", "line\u2028sep", "para\u2029sep",
    ];

    public static TheoryData<string> BadIds => new(Ids);

    /// <summary>In a path, %00 never reaches us: Kestrel refuses it with its own 400 (see the last test).</summary>
    public static TheoryData<string> BadPathIds => new(Ids.Where(id => !id.Contains('\0')));

    [Theory]
    [MemberData(nameof(BadIds))]
    public async Task A_subscribe_to_such_an_id_is_invalid_room_and_the_connection_stays_open(string id)
    {
        await using var client = await Server.ConnectAsync("ids-user");

        await client.SendAsync(new { type = "subscribe_room", data = new { bullPenId = id + Guid.NewGuid().ToString("N") } });

        var reply = await client.ReceiveAsync();
        Assert.Equal(("error", "invalid_room"), (reply.Type, reply.Code));
        Assert.Empty(await client.BarrierAsync());
    }

    [Theory]
    [MemberData(nameof(BadPathIds))]
    public async Task A_publish_to_such_an_id_in_the_path_is_400_invalid_room(string id)
    {
        var response = await Server.PostJsonAsync($"/api/rooms/{Uri.EscapeDataString(id)}/events",
            """{"type":"member_joined","data":{"userId":"u1"}}""");

        Assert.Equal((HttpStatusCode.BadRequest, "invalid_room"), (response.Status, response.ErrorCode));
    }

    [Theory]
    [MemberData(nameof(BadPathIds))]
    public async Task A_GET_of_such_an_id_is_400_invalid_room(string id)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/rooms/{Uri.EscapeDataString(id)}");
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", Server.ServiceToken());

        var response = await ApiResponse.ReadAsync(Server.Http.SendAsync(request));

        Assert.Equal((HttpStatusCode.BadRequest, "invalid_room"), (response.Status, response.ErrorCode));
    }

    [Theory]
    [MemberData(nameof(BadIds))]
    public async Task A_batch_naming_such_an_id_is_400_invalid_room_and_publishes_nothing(string id)
    {
        var good = "ids-" + Guid.NewGuid().ToString("N");
        var body = System.Text.Json.JsonSerializer.Serialize(new object[]
        {
            new { bullPenId = good, type = "member_joined", data = new { userId = "u1" } },
            new { bullPenId = id, type = "member_joined", data = new { userId = "u1" } },
        });

        var response = await Server.PostJsonAsync("/api/events", body);

        Assert.Equal((HttpStatusCode.BadRequest, "invalid_room"), (response.Status, response.ErrorCode));
        Assert.StartsWith("events[1]: ", response.Json.GetProperty("error").GetProperty("message").GetString());
        Assert.Equal(1, await Server.PublishAsync(good, "member_joined", new { userId = "marker" }));
    }

    [Fact]
    public async Task An_id_of_exactly_the_maximum_length_with_emoji_and_slashes_is_a_room()
    {
        var id = "desk/7-😀-" + Guid.NewGuid().ToString("N");
        id += new string('x', TradeRoom.Protocol.BullPenId.MaxLength - id.Length);
        await using var client = await Server.ConnectAndSubscribeAsync("ids-user", id);

        var seq = await Server.PublishAsync(id, "member_joined", new { userId = "u9" });

        var frame = await client.ReceiveAsync();
        Assert.Equal((id, seq), (frame.BullPenId, frame.Seq));
        var tooLong = await Server.PostJsonAsync($"/api/rooms/{Uri.EscapeDataString(id + "x")}/events", """{"type":"member_joined","data":{"userId":"u1"}}""");
        Assert.Equal((HttpStatusCode.BadRequest, "invalid_room"), (tooLong.Status, tooLong.ErrorCode));
    }

    /// <summary>
    /// Kestrel refuses a %00 in the path while it parses the request line, before any middleware, with its own 400
    /// and an empty body (its bad-request answers cannot be given a body; see README "HTTP API").
    /// </summary>
    [Fact]
    public async Task A_NUL_in_a_path_is_refused_by_Kestrel_before_any_endpoint()
    {
        var room = "nul-" + Guid.NewGuid().ToString("N");
        const string body = """{"type":"member_joined","data":{"userId":"u1"}}""";
        var request = $"POST /api/rooms/{room}%00/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {Server.ServiceToken()}\r\n" +
                      $"Content-Type: application/json\r\nContent-Length: {body.Length}\r\n\r\n{body}";

        var response = await E2E.RawHttpAsync(Server.ApiPort, request);

        Assert.Equal(400, response.Status);
        Assert.Equal(1, await Server.PublishAsync(room, "member_joined", new { userId = "marker" }));
    }
}
