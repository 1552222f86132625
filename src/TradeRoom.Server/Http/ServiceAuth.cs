using TradeRoom.Actors.Auth;
using TradeRoom.Protocol;

namespace TradeRoom.Server.Http;

/// <summary>The guard of the publish and room endpoints: a Bearer JWT signed with the shared secret whose <c>role</c> is <c>service</c>.</summary>
internal static class ServiceAuth
{
    /// <summary>Null when the request carries a valid service token; else the 401 or 403 to answer with.</summary>
    public static async Task<IResult?> CheckAsync(HttpContext http, JwtValidator validator)
    {
        var header = http.Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            return Unauthorized(http, "send Authorization: Bearer <service JWT>");

        var outcome = await validator.ValidateAsync(header["Bearer ".Length..].Trim());
        if (!outcome.IsValid)
            return Unauthorized(http, $"{outcome.ErrorMessage} ({outcome.ErrorCode})");
        if (outcome.Role != TokenIssuer.ServiceRole)
            return ApiErrors.Error(403, ErrorCodes.Forbidden, "this endpoint needs a token whose role claim is \"service\"");
        return null;
    }

    private static IResult Unauthorized(HttpContext http, string message)
    {
        http.Response.Headers.WWWAuthenticate = "Bearer";
        return ApiErrors.Error(401, ErrorCodes.Unauthorized, message);
    }
}
