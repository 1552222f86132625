using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace TradeRoom.Actors.Auth;

/// <summary>Signs HS256 tokens with the shared secret: development tokens, the load tester and tests use it.</summary>
public sealed class TokenIssuer(string secret)
{
    public const string ServiceRole = "service";

    private readonly SigningCredentials _credentials = new(JwtValidator.SigningKey(secret), SecurityAlgorithms.HmacSha256);
    private readonly JsonWebTokenHandler _handler = new() { SetDefaultTimesOnTokenCreation = false };

    public string UserToken(string userId, TimeSpan lifetime) => Create(userId, null, lifetime);

    public string ServiceToken(string serviceName, TimeSpan lifetime) => Create(serviceName, ServiceRole, lifetime);

    /// <param name="extraClaims">More claims, e.g. <c>bullPens</c> for claim room authorization.</param>
    public string Create(string userId, string? role, TimeSpan lifetime, DateTimeOffset? notBefore = null,
        IReadOnlyDictionary<string, object>? extraClaims = null)
    {
        var now = DateTimeOffset.UtcNow;
        var claims = new Dictionary<string, object> { ["userId"] = userId, ["sub"] = userId };
        foreach (var (name, value) in extraClaims ?? new Dictionary<string, object>())
            claims[name] = value;
        if (role is not null)
            claims["role"] = role;
        claims["iat"] = now.ToUnixTimeSeconds();
        claims["exp"] = now.Add(lifetime).ToUnixTimeSeconds();
        if (notBefore is { } nbf)
            claims["nbf"] = nbf.ToUnixTimeSeconds();
        return _handler.CreateToken(new SecurityTokenDescriptor { Claims = claims, SigningCredentials = _credentials });
    }
}
