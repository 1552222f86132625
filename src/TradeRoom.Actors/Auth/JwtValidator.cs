using System.Collections.Concurrent;
using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using TradeRoom.Protocol;

namespace TradeRoom.Actors.Auth;

/// <summary>Outcome of checking a token: the user (and role) it names, or the error code and message to answer with.</summary>
/// <param name="Rooms">The rooms the token lists in the room claim (claim authorization); null when it lists none or the claim is not read.</param>
public sealed record TokenValidationOutcome(string? UserId, string? Role, DateTimeOffset? Expires, string? ErrorCode, string? ErrorMessage,
    IReadOnlyList<string>? Rooms = null)
{
    public bool IsValid => ErrorCode is null;

    public bool IsService => Role == TokenIssuer.ServiceRole;

    public static TokenValidationOutcome Valid(string userId, string? role, DateTimeOffset? expires, IReadOnlyList<string>? rooms = null) =>
        new(userId, role, expires, null, null, rooms);

    public static TokenValidationOutcome Invalid(string code, string message) => new(null, null, null, code, message);
}

/// <summary>
/// Validates the platform's JWTs: HS256 only, signed with the shared secret, <c>exp</c> (required unless told
/// otherwise) and <c>nbf</c> enforced. The user id is the first of the <c>userId</c>, <c>sub</c> and <c>id</c> claims
/// that is a non-empty string (an empty or null one falls through to the next); it must be text of at most
/// <see cref="MaxUserIdLength"/> characters with no control or format characters, and a claim of another kind
/// (number, boolean, object, array) refuses the token. Thread-safe.
/// <para>
/// With a cache size above 0 (<c>traderoom.jwt.cache-size</c>), a token found valid is remembered, keyed by its whole
/// text (signature included), until its <c>exp</c> (plus the clock skew) passes: a publisher that sends the same service
/// token with every request, or a user who reconnects, is not parsed and checked again each time. Its claims cannot
/// change without changing the text, the key is fixed for the process's life, and a token not valid yet (<c>nbf</c>) is
/// refused, not cached, so a remembered answer is the one a fresh check would give until <c>exp</c>. Only valid tokens of
/// at most <see cref="MaxCachedTokenLength"/> characters are kept, at most cache-size of them; when it is full it is
/// emptied and fills again.
/// </para>
/// </summary>
public sealed class JwtValidator
{
    public const int MinimumSecretBytes = 32;
    public const int MaxUserIdLength = 256;
    public const int MaxCachedTokenLength = 4096;

    private readonly JsonWebTokenHandler _handler = new() { MapInboundClaims = false };
    private readonly TokenValidationParameters _parameters;
    private readonly string? _roomsClaim;
    private readonly int _cacheSize;
    private readonly ConcurrentDictionary<string, TokenValidationOutcome>? _valid;

    /// <param name="requireExp">Refuse tokens without <c>exp</c> (<c>traderoom.jwt.require-exp</c>).</param>
    /// <param name="roomsClaim">The claim listing the rooms a user may follow (claim authorization); null: not read.</param>
    /// <param name="cacheSize">How many valid tokens to remember (<c>traderoom.jwt.cache-size</c>, checked at startup); 0: none.</param>
    public JwtValidator(string secret, TimeSpan clockSkew, bool requireExp, string? roomsClaim = null, int cacheSize = 0)
    {
        _roomsClaim = roomsClaim;
        _cacheSize = cacheSize;
        _valid = cacheSize > 0 ? new ConcurrentDictionary<string, TokenValidationOutcome>(StringComparer.Ordinal) : null;
        var key = SigningKey(secret);
        _parameters = new TokenValidationParameters
        {
            IssuerSigningKey = key,
            ValidAlgorithms = [SecurityAlgorithms.HmacSha256],
            ValidateIssuer = false,
            ValidateAudience = false,
            ValidateLifetime = true,
            RequireExpirationTime = requireExp,
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

    /// <summary>How many valid tokens are remembered now.</summary>
    internal int CachedTokens => _valid?.Count ?? 0;

    public async Task<TokenValidationOutcome> ValidateAsync(string token)
    {
        if (string.IsNullOrWhiteSpace(token))
            return TokenValidationOutcome.Invalid(ErrorCodes.InvalidToken, "token is empty");
        if (_valid is null)
            return await CheckAsync(token).ConfigureAwait(false);

        if (_valid.TryGetValue(token, out var known))
        {
            if (known.Expires is not { } until || DateTimeOffset.UtcNow < until)
                return known;
            _valid.TryRemove(token, out _);
        }
        var outcome = await CheckAsync(token).ConfigureAwait(false);
        if (outcome.IsValid && token.Length <= MaxCachedTokenLength)
        {
            if (_valid.Count >= _cacheSize)
                _valid.Clear();
            _valid[token] = outcome;
        }
        return outcome;
    }

    private async Task<TokenValidationOutcome> CheckAsync(string token)
    {
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
                SecurityTokenNoExpirationException => TokenValidationOutcome.Invalid(ErrorCodes.InvalidToken, "token has no exp claim"),
                SecurityTokenNotYetValidException => TokenValidationOutcome.Invalid(ErrorCodes.InvalidToken, "token is not valid yet (nbf)"),
                SecurityTokenInvalidAlgorithmException => TokenValidationOutcome.Invalid(ErrorCodes.InvalidToken, "token must be signed with HS256"),
                SecurityTokenSignatureKeyNotFoundException or SecurityTokenInvalidSignatureException =>
                    TokenValidationOutcome.Invalid(ErrorCodes.InvalidToken, "token signature is invalid"),
                _ => TokenValidationOutcome.Invalid(ErrorCodes.InvalidToken, "token is invalid"),
            };
        }

        var claims = result.Claims;
        string? userId = null;
        foreach (var name in UserIdClaims)
        {
            if (!claims.TryGetValue(name, out var value) || value is null || value is string { Length: 0 })
                continue; // absent, null or empty: the next claim names the user
            if (value is not string text)
                return TokenValidationOutcome.Invalid(ErrorCodes.InvalidToken, $"the {name} claim must be a string");
            if (UserIdProblem(text) is { } problem)
                return TokenValidationOutcome.Invalid(ErrorCodes.InvalidToken, $"the {name} claim {problem}");
            userId = text;
            break;
        }
        if (userId is null)
            return TokenValidationOutcome.Invalid(ErrorCodes.InvalidToken, "token names no user (userId, sub or id claim)");

        IReadOnlyList<string>? rooms = null;
        if (_roomsClaim is not null && claims.TryGetValue(_roomsClaim, out var roomsValue) && roomsValue is not null)
        {
            rooms = roomsValue switch
            {
                string one => [one],
                IEnumerable<object> many when many.All(r => r is string) => many.Cast<string>().ToArray(),
                _ => null,
            };
            if (rooms is null)
                return TokenValidationOutcome.Invalid(ErrorCodes.InvalidToken, $"the {_roomsClaim} claim must be a string or an array of strings");
        }

        var jwt = (JsonWebToken)result.SecurityToken;
        // The same leeway as at validation, so a token accepted within the skew is not expired at once.
        DateTimeOffset? expires = jwt.TryGetPayloadValue<long>("exp", out var exp)
            ? DateTimeOffset.FromUnixTimeSeconds(exp) + _parameters.ClockSkew
            : null;
        return TokenValidationOutcome.Valid(userId, ClaimString(claims, "role"), expires, rooms);
    }

    private static readonly string[] UserIdClaims = ["userId", "sub", "id"];

    /// <summary>Why <paramref name="userId"/> cannot name a user, or null when it can.</summary>
    public static string? UserIdProblem(string userId)
    {
        if (string.IsNullOrWhiteSpace(userId))
            return "must not be empty or only spaces";
        if (userId.Length > MaxUserIdLength)
            return $"must be at most {MaxUserIdLength} characters";
        return TextRules.HasControlOrFormat(userId) ? "must not hold control or format characters (or a lone surrogate)" : null;
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
