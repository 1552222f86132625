using System.Security.Cryptography;
using System.Text;
using Prometheus;
using TradeRoom.Protocol;

namespace TradeRoom.Server.Http;

/// <summary>
/// <c>GET /metrics</c> (Prometheus text). With <c>traderoom.http.metrics-token</c> set, only a request carrying
/// <c>Authorization: Bearer &lt;token&gt;</c> gets it; any other gets 401 <c>unauthorized</c>.
/// </summary>
internal static class MetricsEndpoint
{
    public static void MapTradeRoomMetrics(this IEndpointRouteBuilder app, CollectorRegistry registry, string token)
    {
        var endpoint = app.MapMetrics("/metrics", registry);
        if (token.Length == 0)
            return;
        var expected = Encoding.UTF8.GetBytes("Bearer " + token);
        // Wraps the endpoint itself, so whatever path routing matches to it (case, trailing slash) is checked.
        endpoint.Add(builder =>
        {
            var serve = builder.RequestDelegate!;
            builder.RequestDelegate = http =>
            {
                if (Authorized(http.Request.Headers.Authorization.ToString(), expected))
                    return serve(http);
                http.Response.Headers.WWWAuthenticate = "Bearer";
                return ApiErrors.Error(401, ErrorCodes.Unauthorized, "/metrics needs Authorization: Bearer <traderoom.http.metrics-token>")
                    .ExecuteAsync(http);
            };
        });
    }

    private static bool Authorized(string header, byte[] expected) =>
        CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(header), expected);
}
