using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using TradeRoom.Actors.Auth;
using TradeRoom.Protocol;

namespace TradeRoom.Tests.Protocol;

public class JwtValidatorTests
{
    // 64 bytes, so the same secret can also sign HS384 / HS512 tokens for the algorithm tests.
    private const string Secret = "jwt-validator-test-secret-0123456789-abcdefghijklmnopqrstuvwxyz!!";

    private readonly JwtValidator _validator = new(Secret, TimeSpan.Zero, requireExp: true);
    private readonly TokenIssuer _issuer = new(Secret);

    private static string Sign(Dictionary<string, object> claims, string algorithm = SecurityAlgorithms.HmacSha256, string secret = Secret) =>
        new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            Claims = claims,
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(secret)), algorithm),
        });

    private static long In(TimeSpan offset) => DateTimeOffset.UtcNow.Add(offset).ToUnixTimeSeconds();

    private static string Base64Url(string json) => Base64UrlEncoder.Encode(Encoding.UTF8.GetBytes(json));

    private async Task AssertRefused(string token, string code)
    {
        var outcome = await _validator.ValidateAsync(token);

        Assert.False(outcome.IsValid);
        Assert.Equal(code, outcome.ErrorCode);
        Assert.Null(outcome.UserId);
        Assert.False(string.IsNullOrEmpty(outcome.ErrorMessage));
    }

    [Fact]
    public async Task Valid_token_names_its_user_and_expiry()
    {
        var token = _issuer.UserToken("user-1", TimeSpan.FromMinutes(5));

        var outcome = await _validator.ValidateAsync(token);

        Assert.True(outcome.IsValid);
        Assert.Equal("user-1", outcome.UserId);
        Assert.Null(outcome.Role);
        Assert.NotNull(outcome.Expires);
        Assert.InRange(outcome.Expires!.Value, DateTimeOffset.UtcNow.AddMinutes(4), DateTimeOffset.UtcNow.AddMinutes(6));
    }

    [Fact]
    public async Task UserId_claim_wins_over_sub_and_id()
    {
        var outcome = await _validator.ValidateAsync(Sign(new() { ["id"] = "from-id", ["sub"] = "from-sub", ["userId"] = "from-userId", ["exp"] = In(TimeSpan.FromMinutes(5)) }));

        Assert.Equal("from-userId", outcome.UserId);
    }

    [Fact]
    public async Task Sub_claim_wins_over_id()
    {
        var outcome = await _validator.ValidateAsync(Sign(new() { ["id"] = "from-id", ["sub"] = "from-sub", ["exp"] = In(TimeSpan.FromMinutes(5)) }));

        Assert.Equal("from-sub", outcome.UserId);
    }

    [Fact]
    public async Task Id_claim_is_used_when_it_is_the_only_one()
    {
        var outcome = await _validator.ValidateAsync(Sign(new() { ["id"] = "from-id", ["exp"] = In(TimeSpan.FromMinutes(5)) }));

        Assert.True(outcome.IsValid);
        Assert.Equal("from-id", outcome.UserId);
    }

    [Fact]
    public async Task Token_without_exp_is_refused_unless_require_exp_is_off()
    {
        var token = Sign(new() { ["userId"] = "no-exp" });

        var strict = await _validator.ValidateAsync(token);
        var lenient = await new JwtValidator(Secret, TimeSpan.Zero, requireExp: false).ValidateAsync(token);

        Assert.Equal(ErrorCodes.InvalidToken, strict.ErrorCode);
        Assert.Contains("exp", strict.ErrorMessage, StringComparison.Ordinal);
        Assert.True(lenient.IsValid);
        Assert.Null(lenient.Expires);
    }

    /// <summary>Regression: a user id that is not a string used to be turned into one (["bob","x"] became "bob").</summary>
    [Theory]
    [InlineData("number")]
    [InlineData("boolean")]
    [InlineData("array")]
    [InlineData("object")]
    [InlineData("whitespace")]
    [InlineData("control")]
    [InlineData("bidi")]
    [InlineData("too-long")]
    public async Task A_user_id_that_is_not_plain_text_refuses_the_token(string kind)
    {
        object value = kind switch
        {
            "number" => 12345,
            "boolean" => true,
            "array" => new[] { "bob", "x" },
            "object" => new Dictionary<string, object> { ["name"] = "bob" },
            "whitespace" => "   ",
            "control" => "bob\nadmin",
            "bidi" => "bob\u202Egnp.exe",
            _ => new string('u', JwtValidator.MaxUserIdLength + 1),
        };

        var outcome = await _validator.ValidateAsync(Sign(new() { ["userId"] = value, ["exp"] = In(TimeSpan.FromMinutes(5)) }));

        Assert.Equal(ErrorCodes.InvalidToken, outcome.ErrorCode);
        Assert.Null(outcome.UserId);
    }

    [Fact]
    public async Task A_256_character_user_id_is_accepted()
    {
        var id = new string('u', JwtValidator.MaxUserIdLength);

        var outcome = await _validator.ValidateAsync(Sign(new() { ["userId"] = id, ["exp"] = In(TimeSpan.FromMinutes(5)) }));

        Assert.Equal(id, outcome.UserId);
    }

    [Theory]
    [InlineData("")]
    [InlineData(null)]
    public async Task An_empty_or_null_userId_falls_back_to_sub(string? userId)
    {
        var claims = new Dictionary<string, object> { ["sub"] = "from-sub", ["exp"] = In(TimeSpan.FromMinutes(5)) };
        claims["userId"] = userId!;

        var outcome = await _validator.ValidateAsync(Sign(claims));

        Assert.Equal("from-sub", outcome.UserId);
    }

    [Fact]
    public async Task The_rooms_claim_is_read_when_asked_for_and_a_malformed_one_refuses_the_token()
    {
        var reader = new JwtValidator(Secret, TimeSpan.Zero, requireExp: true, roomsClaim: "bullPens");
        var exp = In(TimeSpan.FromMinutes(5));

        var list = await reader.ValidateAsync(Sign(new() { ["userId"] = "u", ["exp"] = exp, ["bullPens"] = new[] { "a", "league-*" } }));
        var one = await reader.ValidateAsync(Sign(new() { ["userId"] = "u", ["exp"] = exp, ["bullPens"] = "a" }));
        var none = await reader.ValidateAsync(Sign(new() { ["userId"] = "u", ["exp"] = exp }));
        var bad = await reader.ValidateAsync(Sign(new() { ["userId"] = "u", ["exp"] = exp, ["bullPens"] = new object[] { "a", 5 } }));
        var unread = await _validator.ValidateAsync(Sign(new() { ["userId"] = "u", ["exp"] = exp, ["bullPens"] = 5 }));

        Assert.Equal(["a", "league-*"], list.Rooms!);
        Assert.Equal(["a"], one.Rooms!);
        Assert.Null(none.Rooms);
        Assert.Equal(ErrorCodes.InvalidToken, bad.ErrorCode);
        Assert.True(unread.IsValid);
    }

    [Fact]
    public async Task Token_without_a_user_claim_is_refused()
    {
        await AssertRefused(Sign(new() { ["role"] = "admin", ["exp"] = In(TimeSpan.FromMinutes(5)) }), ErrorCodes.InvalidToken);
    }

    [Fact]
    public async Task Role_claim_is_read()
    {
        var outcome = await _validator.ValidateAsync(_issuer.ServiceToken("pricing", TimeSpan.FromMinutes(5)));

        Assert.Equal("pricing", outcome.UserId);
        Assert.Equal(TokenIssuer.ServiceRole, outcome.Role);
    }

    [Fact]
    public async Task Expired_token_is_refused_as_token_expired()
    {
        await AssertRefused(_issuer.UserToken("u1", TimeSpan.FromMinutes(-5)), ErrorCodes.TokenExpired);
    }

    [Fact]
    public async Task Expired_token_within_the_clock_skew_is_accepted()
    {
        var lenient = new JwtValidator(Secret, TimeSpan.FromMinutes(10), requireExp: true);

        var outcome = await lenient.ValidateAsync(_issuer.UserToken("u1", TimeSpan.FromMinutes(-5)));

        Assert.Equal("u1", outcome.UserId);
    }

    [Fact]
    public async Task Token_not_valid_yet_is_refused_as_invalid_token()
    {
        var token = _issuer.Create("u1", null, TimeSpan.FromMinutes(10), notBefore: DateTimeOffset.UtcNow.AddMinutes(5));

        await AssertRefused(token, ErrorCodes.InvalidToken);
    }

    [Fact]
    public async Task Token_signed_with_another_secret_is_refused()
    {
        var token = new TokenIssuer("another-secret-that-is-long-enough-0123456789").UserToken("u1", TimeSpan.FromMinutes(5));

        await AssertRefused(token, ErrorCodes.InvalidToken);
    }

    [Fact]
    public async Task Token_with_alg_none_is_refused()
    {
        var header = Base64Url("""{"alg":"none","typ":"JWT"}""");
        var payload = Base64Url(JsonSerializer.Serialize(new { userId = "u1", sub = "u1", exp = In(TimeSpan.FromMinutes(5)) }));

        await AssertRefused($"{header}.{payload}.", ErrorCodes.InvalidToken);
    }

    [Fact]
    public async Task Token_with_a_tampered_payload_is_refused()
    {
        var parts = _issuer.UserToken("u1", TimeSpan.FromMinutes(5)).Split('.');
        var forged = Base64Url(JsonSerializer.Serialize(new { userId = "admin", sub = "admin", exp = In(TimeSpan.FromMinutes(5)) }));

        await AssertRefused($"{parts[0]}.{forged}.{parts[2]}", ErrorCodes.InvalidToken);
    }

    [Theory]
    [InlineData(SecurityAlgorithms.HmacSha384)]
    [InlineData(SecurityAlgorithms.HmacSha512)]
    public async Task Token_signed_with_another_HMAC_algorithm_is_refused(string algorithm)
    {
        var token = Sign(new() { ["userId"] = "u1", ["exp"] = In(TimeSpan.FromMinutes(5)) }, algorithm);

        await AssertRefused(token, ErrorCodes.InvalidToken);
    }

    [Theory]
    [InlineData("garbage")]
    [InlineData("a.b.c")]
    [InlineData("a.b")]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("eyJhbGciOiJIUzI1NiJ9.e30")]
    public async Task Malformed_token_is_refused_as_invalid_token(string token)
    {
        await AssertRefused(token, ErrorCodes.InvalidToken);
    }

    [Theory]
    [InlineData("")]
    [InlineData("short")]
    [InlineData("0123456789012345678901234567890")]
    public void SigningKey_refuses_a_secret_shorter_than_32_bytes(string secret)
    {
        var error = Assert.Throws<ArgumentException>(() => JwtValidator.SigningKey(secret));

        Assert.Contains("32", error.Message);
        Assert.Throws<ArgumentException>(() => new JwtValidator(secret, TimeSpan.Zero, requireExp: true));
    }

    [Fact]
    public void SigningKey_accepts_32_bytes_counting_UTF8_bytes_not_characters()
    {
        Assert.Equal(256, JwtValidator.SigningKey(new string('k', 32)).KeySize);
        Assert.Throws<ArgumentException>(() => JwtValidator.SigningKey(new string('k', 31)));
        Assert.Equal(256, JwtValidator.SigningKey(new string('é', 16)).KeySize);
    }

    [Fact]
    public async Task A_remembered_token_is_answered_from_the_cache_until_its_exp_passes_then_refused_as_expired()
    {
        var cached = new JwtValidator(Secret, TimeSpan.Zero, requireExp: true, cacheSize: 16);
        var exp = DateTimeOffset.UtcNow.AddSeconds(3).ToUnixTimeSeconds();
        var token = Sign(new() { ["sub"] = "u1", ["exp"] = exp });

        var first = await cached.ValidateAsync(token);
        var second = await cached.ValidateAsync(token);

        Assert.Equal("u1", first.UserId);
        Assert.Same(first, second);
        Assert.Equal(1, cached.CachedTokens);

        // exp is in whole seconds: wait until it is past by more than the validator's own rounding.
        await Task.Delay(DateTimeOffset.FromUnixTimeSeconds(exp) - DateTimeOffset.UtcNow + TimeSpan.FromMilliseconds(1100));
        var late = await cached.ValidateAsync(token);

        Assert.Equal(ErrorCodes.TokenExpired, late.ErrorCode);
        Assert.Equal(0, cached.CachedTokens);
    }

    [Fact]
    public async Task The_cache_keeps_only_valid_tokens_of_at_most_4096_characters_and_at_most_cache_size_of_them()
    {
        var cached = new JwtValidator(Secret, TimeSpan.Zero, requireExp: true, cacheSize: 4);
        var token = _issuer.UserToken("u1", TimeSpan.FromMinutes(5));
        Assert.True((await cached.ValidateAsync(token)).IsValid);

        // The same claims with another signature: refused, as without a cache, and not remembered.
        var tampered = token[..^3] + (token[^3..^1] == "AA" ? "BB" : "AA") + token[^1];
        var refused = await cached.ValidateAsync(tampered);
        Assert.Equal(ErrorCodes.InvalidToken, refused.ErrorCode);
        var notYet = await cached.ValidateAsync(_issuer.Create("u2", null, TimeSpan.FromMinutes(10), notBefore: DateTimeOffset.UtcNow.AddMinutes(5)));
        Assert.False(notYet.IsValid);
        Assert.Equal(1, cached.CachedTokens);

        var longToken = Sign(new() { ["sub"] = "u3", ["exp"] = In(TimeSpan.FromMinutes(5)), ["pad"] = new string('p', JwtValidator.MaxCachedTokenLength) });
        Assert.Equal("u3", (await cached.ValidateAsync(longToken)).UserId);
        Assert.Equal(1, cached.CachedTokens);

        for (var i = 0; i < 10; i++)
        {
            Assert.Equal($"user-{i}", (await cached.ValidateAsync(_issuer.UserToken($"user-{i}", TimeSpan.FromMinutes(5)))).UserId);
            Assert.InRange(cached.CachedTokens, 1, 4);
        }
    }
}
