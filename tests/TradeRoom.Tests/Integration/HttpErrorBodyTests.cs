using System.Net;
using System.Net.Http.Headers;
using System.Text;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Integration;

/// <summary>
/// The HTTP port's refusals of an oversized head or a broken body carry the JSON error body, where Kestrel alone would
/// answer with an empty one: 414 <c>uri_too_long</c>, 431 <c>headers_too_large</c>, 400 <c>bad_request</c> and 408
/// <c>request_timeout</c>. Malformed requests go over raw TCP, byte for byte; the rest through HttpClient.
/// </summary>
public class HttpErrorBodyTests(SharedServerFixture fixture) : IClassFixture<SharedServerFixture>
{
    /// <summary>The documented defaults (hocon/traderoom.conf): 8 KiB request line, 32 KiB of headers, 100 header lines.</summary>
    private const int MaxRequestLine = 8192;
    private const int MaxHeadersSize = 32768;
    private const int MaxHeaderCount = 100;

    private TestServer Server => fixture.Server;

    [Fact]
    public async Task A_request_line_over_the_limit_is_a_JSON_414()
    {
        var response = await ApiResponse.ReadAsync(Server.Http.GetAsync($"/api/rooms/{new string('x', 9000)}"));

        Assert.Equal((HttpStatusCode.RequestUriTooLong, "uri_too_long"), (response.Status, response.ErrorCode));
        Assert.Equal("application/json", response.MediaType);
        Assert.Contains("max-request-line-size", response.ErrorMessage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Headers_over_the_size_limit_are_a_JSON_431()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/health");
        request.Headers.Add("X-Big", new string('x', 33000));

        var response = await ApiResponse.ReadAsync(Server.Http.SendAsync(request));

        Assert.Equal((HttpStatusCode.RequestHeaderFieldsTooLarge, "headers_too_large"), (response.Status, response.ErrorCode));
        Assert.Equal("application/json", response.MediaType);
    }

    /// <summary>The request line counts method, target and version with the spaces between them and its CRLF: at the limit it is served.</summary>
    [Theory]
    [InlineData(0, 404, "not_found")]
    [InlineData(1, 414, "uri_too_long")]
    public async Task The_request_line_limit_is_exact(int over, int status, string code)
    {
        const string method = "GET /nothing/";
        const string version = " HTTP/1.1\r\n";
        var line = method + new string('x', MaxRequestLine + over - method.Length - version.Length) + version;
        Assert.Equal(MaxRequestLine + over, line.Length);

        var response = await E2E.RawHttpAsync(Server.ApiPort, $"{line}Host: 127.0.0.1\r\nConnection: close\r\n\r\n");

        Assert.Equal((status, code), (response.Status, response.ErrorCode));
    }

    /// <summary>Headers count <c>name: value</c> and a CRLF per line: at the limit the request is served.</summary>
    [Theory]
    [InlineData(0, 200)]
    [InlineData(1, 431)]
    public async Task The_header_size_limit_is_exact(int over, int status)
    {
        const string fixedHeaders = "Host: 127.0.0.1\r\nConnection: close\r\n";
        const string padName = "X-Pad: ";
        var pad = new string('x', MaxHeadersSize + over - fixedHeaders.Length - padName.Length - 2);
        var headers = $"{fixedHeaders}{padName}{pad}\r\n";
        Assert.Equal(MaxHeadersSize + over, headers.Length);

        var response = await E2E.RawHttpAsync(Server.ApiPort, $"GET /api/health HTTP/1.1\r\n{headers}\r\n");

        Assert.Equal(status, response.Status);
        if (status == 200)
            Assert.Equal("ok", response.Json.GetProperty("status").GetString());
        else
            Assert.Equal("headers_too_large", response.ErrorCode);
    }

    [Theory]
    [InlineData(0, 200)]
    [InlineData(1, 431)]
    public async Task The_header_count_limit_is_exact(int over, int status)
    {
        var headers = new StringBuilder("Host: 127.0.0.1\r\nConnection: close\r\n");
        for (var i = 2; i < MaxHeaderCount + over; i++)
            headers.Append($"X-H{i}: 1\r\n");

        var response = await E2E.RawHttpAsync(Server.ApiPort, $"GET /api/health HTTP/1.1\r\n{headers}\r\n");

        Assert.Equal(status, response.Status);
        if (status == 431)
            Assert.Equal("headers_too_large", response.ErrorCode);
    }

    /// <summary>A 414 or 431 leaves the request's framing intact: the connection serves the next request.</summary>
    [Fact]
    public async Task After_a_JSON_414_the_connection_serves_the_next_request()
    {
        using var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 1 }) { BaseAddress = Server.Http.BaseAddress };

        var refused = await ApiResponse.ReadAsync(client.GetAsync($"/nothing/{new string('x', 9000)}"));
        var served = await ApiResponse.ReadAsync(client.GetAsync("/api/health"));

        Assert.Equal((HttpStatusCode.RequestUriTooLong, HttpStatusCode.OK), (refused.Status, served.Status));
    }

    /// <summary>
    /// Kestrel finds a broken chunked body only when the endpoint reads it: the answer is a JSON 400 that closes the
    /// connection (nothing after it can be read as a request).
    /// </summary>
    [Theory]
    [InlineData("zz\r\n[]\r\n0\r\n\r\n")]             // a chunk size that is not hex
    [InlineData("2\r\n[]XX\r\n0\r\n\r\n")]            // no CRLF after the chunk's data
    public async Task A_broken_chunked_body_is_a_JSON_400(string chunkedBody)
    {
        var response = await E2E.RawHttpAsync(Server.ApiPort, PublishHead(Server, "/api/events", "Transfer-Encoding: chunked") + chunkedBody);

        Assert.Equal((400, "bad_request"), (response.Status, response.ErrorCode));
        Assert.Contains("application/json", response.Head, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("Connection: close", response.Head, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>A body that stops arriving trips Kestrel's minimum data rate (240 bytes/s after a 5 s grace): a JSON 408.</summary>
    [Fact]
    public async Task A_body_that_stops_arriving_is_a_JSON_408()
    {
        var response = await E2E.RawHttpAsync(Server.ApiPort, PublishHead(Server, "/api/events", "Content-Length: 1000") + "[");

        Assert.Equal((408, "request_timeout"), (response.Status, response.ErrorCode));
    }

    /// <summary>
    /// What Kestrel still answers itself, before any of our code runs, with an empty body: a request it cannot parse,
    /// and a head past the backstop (8 times the limits above). README.md documents both.
    /// </summary>
    [Theory]
    [InlineData("request line", 400)]
    [InlineData("NUL in path", 400)]
    [InlineData("no Host", 400)]
    [InlineData("request line past the backstop", 414)]
    [InlineData("headers past the backstop", 431)]
    public async Task What_Kestrel_refuses_before_our_code_keeps_its_empty_body(string kind, int status)
    {
        var request = kind switch
        {
            "request line" => "GET /api/health HTTP/1.1 extra\r\nHost: 127.0.0.1\r\n\r\n",
            "NUL in path" => "GET /api/rooms/x%00 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            "no Host" => "GET /api/health HTTP/1.1\r\n\r\n",
            "request line past the backstop" => $"GET /nothing/{new string('x', 8 * MaxRequestLine)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            _ => $"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {new string('x', 8 * MaxHeadersSize)}\r\n\r\n",
        };

        var response = await E2E.RawHttpAsync(Server.ApiPort, request);

        Assert.Equal((status, ""), (response.Status, response.Body));
    }

    /// <summary>In Development the same broken body would get ASP.NET's developer exception page, a stack trace in text/plain.</summary>
    [Fact]
    public async Task In_Development_a_broken_body_is_a_JSON_400_without_a_stack_trace()
    {
        await using var server = await TestServer.StartAsync(environment: "Development");

        var response = await E2E.RawHttpAsync(server.ApiPort, PublishHead(server, "/api/events", "Transfer-Encoding: chunked") + "zz\r\n[]\r\n0\r\n\r\n");

        Assert.Equal((400, "bad_request"), (response.Status, response.ErrorCode));
        Assert.DoesNotContain("   at ", response.Body, StringComparison.Ordinal);
    }

    /// <summary>The limits and the backstop come from HOCON: 1 KiB, 2 KiB and 10 header lines, Kestrel's own at 4 times those.</summary>
    [Fact]
    public async Task The_limits_and_the_backstop_are_read_from_the_settings()
    {
        await using var server = await TestServer.StartAsync("""
            traderoom.http {
              max-request-line-size = 1KiB
              max-request-headers-size = 2KiB
              max-request-header-count = 10
              kestrel-backstop-factor = 4
            }
            """);
        const string host = "Host: 127.0.0.1\r\nConnection: close\r\n";
        async Task<RawResponse> Get(string path, string headers = "") =>
            await E2E.RawHttpAsync(server.ApiPort, $"GET {path} HTTP/1.1\r\n{host}{headers}\r\n");

        var longLine = await Get($"/nothing/{new string('x', 1100)}");
        var bigHeaders = await Get("/api/health", $"X-Big: {new string('x', 2100)}\r\n");
        var manyHeaders = await Get("/api/health", string.Concat(Enumerable.Range(0, 9).Select(i => $"X-H{i}: 1\r\n")));
        // Past 4 KiB (4 times 1 KiB, under Kestrel's default of 8 KiB): Kestrel's own 414, so its limit was set.
        var pastBackstop = await Get($"/nothing/{new string('x', 4200)}");

        Assert.Equal((414, "uri_too_long"), (longLine.Status, longLine.ErrorCode));
        Assert.Equal((431, "headers_too_large"), (bigHeaders.Status, bigHeaders.ErrorCode));
        Assert.Equal((431, "headers_too_large"), (manyHeaders.Status, manyHeaders.ErrorCode));
        Assert.Equal((414, ""), (pastBackstop.Status, pastBackstop.Body));
    }

    private static string PublishHead(TestServer server, string path, string framing) =>
        $"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {server.ServiceToken()}\r\n" +
        $"Content-Type: application/json\r\n{framing}\r\n\r\n";
}
