using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Integration;

/// <summary>
/// Paths with dot segments, written plainly or percent-encoded, sent byte for byte (HttpClient would normalize them):
/// they get a JSON 400 and never land on another endpoint, such as the batch publish at <c>/api/events</c>.
/// </summary>
public class PathTraversalTests(SharedServerFixture fixture) : IClassFixture<SharedServerFixture>
{
    private TestServer Server => fixture.Server;

    [Theory]
    [InlineData("/api/rooms/%2E%2E/events")]
    [InlineData("/api/rooms/%2e%2e/events")]
    [InlineData("/api/rooms/%2e./events")]
    [InlineData("/api/rooms/../events")]
    [InlineData("/api/rooms/x/%2E%2E/%2E%2E/events")]
    [InlineData("/api/rooms/..%2F..%2Fapi%2Fevents/events")]
    [InlineData("/api/rooms/..%2f..%2fapi%2fevents/events")]
    [InlineData("/api/rooms/x%2F../events")]
    [InlineData("/api/rooms/x%2F%2E%2E/events")]
    [InlineData("/api/rooms/./x/events")]
    [InlineData("http://127.0.0.1/api/rooms/%2E%2E/events")]
    public async Task A_publish_to_a_path_with_dot_segments_is_a_JSON_400_and_publishes_nothing(string path)
    {
        var room = "dots-" + Guid.NewGuid().ToString("N");
        // A body both endpoints would take: the batch endpoint publishes it to `room`.
        var body = $$$"""[{"bullPenId":"{{{room}}}","type":"member_joined","data":{"userId":"u1"}}]""";
        var request = $"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {Server.ServiceToken()}\r\n" +
                      $"Content-Type: application/json\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n{body}";

        var response = await E2E.RawHttpAsync(Server.ApiPort, request);

        Assert.Equal((400, "invalid_path"), (response.Status, response.ErrorCode));
        Assert.Contains("application/json", response.Head, StringComparison.OrdinalIgnoreCase);
        // Nothing reached the room: the first event it takes now is its first.
        Assert.Equal(1, await Server.PublishAsync(room, "member_joined", new { userId = "marker" }));
    }

    [Theory]
    [InlineData("/api/rooms/%2E%2E")]
    [InlineData("/api/rooms/x/..%2F..%2Fhealth")]
    [InlineData("/api/rooms/%2E%2E%2Fhealth")]
    [InlineData("/api/%2e%2e/api/health")]
    public async Task A_GET_with_dot_segments_is_a_JSON_400(string path)
    {
        var response = await E2E.RawHttpAsync(Server.ApiPort, $"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");

        Assert.Equal((400, "invalid_path"), (response.Status, response.ErrorCode));
    }

    [Theory]
    [InlineData("a..b")]
    [InlineData("...")]
    [InlineData(".hidden")]
    public async Task Dots_inside_a_segment_are_an_ordinary_room_id(string room)
    {
        var id = room + Guid.NewGuid().ToString("N");

        Assert.Equal(1, await Server.PublishAsync(id, "member_joined", new { userId = "u1" }));
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/rooms/{Uri.EscapeDataString(id)}");
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", Server.ServiceToken());
        var response = await ApiResponse.ReadAsync(Server.Http.SendAsync(request));
        Assert.Equal(id, response.Json.GetProperty("bullPenId").GetString());
    }
}
