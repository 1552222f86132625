using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using TradeRoom.Actors.Protocol;

namespace TradeRoom.Actors.Auth;

/// <summary>Outcome of checking a token: the user (and role) it names, or the error code and message to answer with.</summary>
public sealed record TokenValidationOutcome(string? UserId, string? Role, DateTimeOffset? Expires, string? ErrorCode, string? ErrorMessage)
{
    public bool IsValid => ErrorCode is null;

    public static TokenValidationOutcome Valid(string userId, string? role, DateTimeOffset? expires) => new(userId, role, expires, null, null);

    public static TokenValidationOutcome Invalid(string code, string message) => new(null, null, null, code, message);
}

/// <summary>
/// Validates the platform's JWTs: HS256 only, signed with the shared secret, <c>exp</c> and <c>nbf</c> enforced.
/// The user id is the <c>userId</c> claim, else <c>sub</c>, else <c>id</c>. Thread-safe.
/// </summary>
public sealed class JwtValidator
{
    public const int MinimumSecretBytes = 32;

    private readonly JsonWebTokenHandler _handler = new() { MapInboundClaims = false };
    private readonly TokenValidationParameters _parameters;

    public JwtValidator(string secret, TimeSpan clockSkew)
    {
        var key = SigningKey(secret);
        _parameters = new TokenValidationParameters
        {
            IssuerSigningKey = key,
            ValidAlgorithms = [SecurityAlgorithms.HmacSha256],
            ValidateIssuer = false,
            ValidateAudience = false,
            ValidateLifetime = true,
            RequireExpirationTime = false,
            RequireSignedTokens = true,
            ValidateIssuerSigningKey = true,
            ClockSkew = clockSkew,
        };
    }

    /// <summary>The key for a secret; refuses a secret shorter than 32 bytes with a message that says why.</summary>
    public static SymmetricSecurityKey SigningKey(string secret)
    {
        var bytes = Encoding.UTF8.GetBytes(secret ?? "");
        if (bytes.Length < MinimumSecretBytes)
            throw new ArgumentException(
                $"The JWT secret is {bytes.Length} bytes long; HS256 needs at least {MinimumSecretBytes} bytes. Set JWT_SECRET to a longer secret.");
        return new SymmetricSecurityKey(bytes);
    }

    public async Task<TokenValidationOutcome> ValidateAsync(string token)
    {
        if (string.IsNullOrWhiteSpace(token))
            return TokenValidationOutcome.Invalid(ErrorCodes.InvalidToken, "token is empty");

        TokenValidationResult result;
        try
        {
            result = await _handler.ValidateTokenAsync(token, _parameters).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ArgumentException or SecurityTokenException)
        {
            return TokenValidationOutcome.Invalid(ErrorCodes.InvalidToken, "token is malformed");
        }

        if (!result.IsValid)
        {
            return result.Exception switch
            {
                SecurityTokenExpiredException => TokenValidationOutcome.Invalid(ErrorCodes.TokenExpired, "token has expired"),
                SecurityTokenNotYetValidException => TokenValidationOutcome.Invalid(ErrorCodes.InvalidToken, "token is not valid yet (nbf)"),
                SecurityTokenInvalidAlgorithmException => TokenValidationOutcome.Invalid(ErrorCodes.InvalidToken, "token must be signed with HS256"),
                SecurityTokenSignatureKeyNotFoundException or SecurityTokenInvalidSignatureException =>
                    TokenValidationOutcome.Invalid(ErrorCodes.InvalidToken, "token signature is invalid"),
                _ => TokenValidationOutcome.Invalid(ErrorCodes.InvalidToken, "token is invalid"),
            };
        }

        var claims = result.Claims;
        var userId = ClaimString(claims, "userId") ?? ClaimString(claims, "sub") ?? ClaimString(claims, "id");
        if (string.IsNullOrEmpty(userId))
            return TokenValidationOutcome.Invalid(ErrorCodes.InvalidToken, "token names no user (userId, sub or id claim)");

        var jwt = (JsonWebToken)result.SecurityToken;
        // The same leeway as at validation, so a token accepted within the skew is not expired at once.
        DateTimeOffset? expires = jwt.TryGetPayloadValue<long>("exp", out var exp)
            ? DateTimeOffset.FromUnixTimeSeconds(exp) + _parameters.ClockSkew
            : null;
        return TokenValidationOutcome.Valid(userId, ClaimString(claims, "role"), expires);
    }

    private static string? ClaimString(IDictionary<string, object> claims, string name) =>
        claims.TryGetValue(name, out var value) ? value switch
        {
            string s => s,
            IEnumerable<object> list => list.Select(v => v?.ToString()).FirstOrDefault(v => v == "service") ?? list.FirstOrDefault()?.ToString(),
            null => null,
            _ => Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture),
        } : null;
}
