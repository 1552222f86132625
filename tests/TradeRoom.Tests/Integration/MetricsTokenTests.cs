using System.Net;
using System.Net.Http.Headers;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Integration;

/// <summary><c>traderoom.http.metrics-token</c>: /metrics answers only a request with that bearer token.</summary>
public class MetricsTokenTests
{
    private const string Token = "metrics-scrape-token-5d1e";

    [Theory]
    [InlineData("/metrics", null)]
    [InlineData("/metrics", "Bearer wrong-token")]
    [InlineData("/metrics", "Bearer " + Token + "x")]
    [InlineData("/metrics", Token)]
    [InlineData("/METRICS/", null)]
    public async Task Without_the_right_bearer_token_metrics_answer_401_with_a_json_error(string path, string? authorization)
    {
        await using var server = await TestServer.StartAsync($"traderoom.http.metrics-token = \"{Token}\"");
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (authorization is not null)
            request.Headers.TryAddWithoutValidation("Authorization", authorization);

        var response = await ApiResponse.ReadAsync(server.Http.SendAsync(request));

        Assert.Equal(HttpStatusCode.Unauthorized, response.Status);
        Assert.Equal("unauthorized", response.ErrorCode);
        Assert.Contains("Bearer", response.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("traderoom_", response.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task With_the_bearer_token_metrics_are_served()
    {
        await using var server = await TestServer.StartAsync($"traderoom.http.metrics-token = \"{Token}\"");
        using var request = new HttpRequestMessage(HttpMethod.Get, "/metrics");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Token);

        var response = await ApiResponse.ReadAsync(server.Http.SendAsync(request));

        Assert.Equal(HttpStatusCode.OK, response.Status);
        Assert.Contains("traderoom_frames_delivered_total", response.Text, StringComparison.Ordinal);
    }
}
