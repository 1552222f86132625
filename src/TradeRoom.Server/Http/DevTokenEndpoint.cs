using TradeRoom.Actors;
using TradeRoom.Actors.Auth;

namespace TradeRoom.Server.Http;

/// <summary>
/// <c>GET /api/dev/token?userId=…[&amp;role=service]</c>: a token signed with the server's own secret, so the dashboard
/// and a developer's scripts can connect without the platform. Mapped only in Development; elsewhere the path is
/// an ordinary 404.
/// </summary>
internal static class DevTokenEndpoint
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromHours(24);

    public static void MapDevTokenEndpoint(this IEndpointRouteBuilder app, TradeRoomSettings settings)
    {
        var issuer = new TokenIssuer(settings.JwtSecret);
        app.MapGet("/api/dev/token", (string? userId, string? role) =>
        {
            if (string.IsNullOrWhiteSpace(userId))
                return ApiErrors.Error(400, "invalid_request", "userId is missing: GET /api/dev/token?userId=u1 (add &role=service for a publishing token)");
            if (userId.Length > 128 || userId.Any(char.IsControl) || userId.Trim().Length != userId.Length)
                return ApiErrors.Error(400, "invalid_request", "userId must be at most 128 characters, without control characters or surrounding spaces");
            if (!string.IsNullOrEmpty(role) && role != TokenIssuer.ServiceRole)
                return ApiErrors.Error(400, "invalid_request", $"role may only be \"{TokenIssuer.ServiceRole}\" (or left out for a user token)");

            var expiresAt = DateTimeOffset.UtcNow.Add(Lifetime);
            var token = issuer.Create(userId, string.IsNullOrEmpty(role) ? null : role, Lifetime);
            return Results.Json(new DevToken(token, userId, DateTimeOffset.FromUnixTimeSeconds(expiresAt.ToUnixTimeSeconds()).UtcDateTime));
        })
            .WithName("GetDevToken")
            .WithSummary("A 24-hour token signed with the server's secret (Development only)")
            .WithDescription("`userId` (required) is the token's user; `role=service` makes a publishing token. Outside Development the path is a 404.")
            .WithTags("Development")
            .Produces<DevToken>()
            .ProducesErrors(400, "invalid_request");
    }
}
