using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Text.Json;
using Akka.Configuration;
using TradeRoom.Protocol;

namespace TradeRoom.Actors.Auth;

/// <summary>Who may follow which bull pen (<c>traderoom.auth.rooms</c>).</summary>
public enum RoomAuthorizationMode
{
    /// <summary>Any authenticated user may follow any room.</summary>
    Open,

    /// <summary>The user's token lists the rooms (ids and <c>prefix*</c> patterns) in a claim.</summary>
    Claim,

    /// <summary>The server asks the platform, <c>POST url {userId, bullPenId}</c>, and caches the answer.</summary>
    Callback,
}

/// <summary>The <c>traderoom.auth</c> section.</summary>
public sealed record RoomAuthorizationSettings(
    RoomAuthorizationMode Mode,
    string ClaimName,
    Uri? CallbackUrl,
    TimeSpan CallbackTimeout,
    TimeSpan AllowTtl,
    TimeSpan DenyTtl,
    int MaxConcurrency,
    int CacheSize)
{
    public static RoomAuthorizationSettings FromConfig(Config auth)
    {
        var modeName = auth.GetString("rooms") ?? "";
        var mode = modeName.Trim().ToLowerInvariant() switch
        {
            "open" => RoomAuthorizationMode.Open,
            "claim" => RoomAuthorizationMode.Claim,
            "callback" => RoomAuthorizationMode.Callback,
            _ => throw new ConfigurationException($"traderoom.auth.rooms is \"{modeName}\"; it must be open, claim or callback"),
        };
        var url = auth.GetString("callback.url") ?? "";
        Uri? callbackUrl = null;
        if (mode == RoomAuthorizationMode.Callback
            && (!Uri.TryCreate(url, UriKind.Absolute, out callbackUrl) || callbackUrl.Scheme is not ("http" or "https")))
            throw new ConfigurationException(
                $"traderoom.auth.rooms = callback needs traderoom.auth.callback.url, an absolute http(s) URL (it is \"{url}\")");
        var timeout = auth.GetTimeSpan("callback.timeout");
        var maxConcurrency = auth.GetInt("callback.max-concurrency");
        var cacheSize = auth.GetInt("callback.cache-size");
        if (timeout <= TimeSpan.Zero || maxConcurrency < 1 || cacheSize < 1)
            throw new ConfigurationException(
                "traderoom.auth.callback needs a timeout above 0, a max-concurrency of at least 1 and a cache-size of at least 1");
        return new RoomAuthorizationSettings(
            mode,
            auth.GetString("claim"),
            callbackUrl,
            timeout,
            auth.GetTimeSpan("callback.allow-ttl"),
            auth.GetTimeSpan("callback.deny-ttl"),
            maxConcurrency,
            cacheSize);
    }
}

/// <summary>A decision on one (user, room): allowed, or refused with the <c>error</c> code to answer.</summary>
public readonly record struct RoomDecision(bool Allowed, string? Code, string? Message)
{
    public static readonly RoomDecision Allow = new(true, null, null);

    public static RoomDecision Forbidden(string bullPenId) =>
        new(false, ErrorCodes.Forbidden, $"you may not follow bull pen \"{bullPenId}\"");

    public static RoomDecision Unavailable(string why) =>
        new(false, ErrorCodes.AuthorizationUnavailable, $"room authorization could not be checked ({why}); try again later");
}

/// <summary>
/// Decides whether a user may follow a room, in the configured mode. Open and claim decide at once; callback decides
/// at once from its cache, else through <see cref="CheckAsync"/>, which the connection actor pipes back to itself.
/// Thread-safe: one instance serves every connection.
/// </summary>
public sealed class RoomAuthorizer : IDisposable
{
    public static readonly RoomAuthorizer Open = new(new RoomAuthorizationSettings(RoomAuthorizationMode.Open, "bullPens", null,
        TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero, 1, 1), "");

    private readonly RoomAuthorizationSettings _settings;
    private readonly ConcurrentDictionary<(string User, string Room), (bool Allowed, long UntilMs)> _cache = new();
    private readonly SemaphoreSlim? _slots;
    private readonly HttpClient? _http;
    private readonly TokenIssuer? _tokens;
    private (string Token, long UntilMs) _serviceToken;

    /// <param name="secret">Signs the service token the callback is called with.</param>
    public RoomAuthorizer(RoomAuthorizationSettings settings, string secret)
    {
        _settings = settings;
        if (settings.Mode != RoomAuthorizationMode.Callback)
            return;
        _slots = new SemaphoreSlim(settings.MaxConcurrency, settings.MaxConcurrency);
        // No redirects: a redirected POST would turn into a GET without the token; an answer is the URL's own.
        _http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false }) { Timeout = Timeout.InfiniteTimeSpan };
        _tokens = new TokenIssuer(secret);
    }

    public RoomAuthorizationMode Mode => _settings.Mode;

    /// <summary>Calls made to the callback so far (for operators and tests).</summary>
    public long CallbackCalls => Interlocked.Read(ref _callbackCalls);

    private long _callbackCalls;

    /// <summary>The decision now, or null when only the callback can tell (then call <see cref="CheckAsync"/>).</summary>
    /// <param name="claimedRooms">The rooms the user's token lists (claim mode); null when it lists none.</param>
    public RoomDecision? Decide(string userId, IReadOnlyList<string>? claimedRooms, string bullPenId)
    {
        switch (_settings.Mode)
        {
            case RoomAuthorizationMode.Open:
                return RoomDecision.Allow;
            case RoomAuthorizationMode.Claim:
                return claimedRooms is not null && RoomPatterns.Allows(claimedRooms, bullPenId) ? RoomDecision.Allow : RoomDecision.Forbidden(bullPenId);
            default:
                if (_cache.TryGetValue((userId, bullPenId), out var cached) && cached.UntilMs > Environment.TickCount64)
                    return cached.Allowed ? RoomDecision.Allow : RoomDecision.Forbidden(bullPenId);
                return null;
        }
    }

    /// <summary>
    /// Asks the platform whether <paramref name="userId"/> may follow <paramref name="bullPenId"/>. Fails closed: a
    /// timeout (waiting for a slot included), a network error, a 5xx or an answer it cannot read is
    /// <see cref="ErrorCodes.AuthorizationUnavailable"/>, never cached. Never throws.
    /// </summary>
    public async Task<RoomDecision> CheckAsync(string userId, string bullPenId)
    {
        if (Decide(userId, null, bullPenId) is { } known)
            return known;
        using var deadline = new CancellationTokenSource(_settings.CallbackTimeout);
        try
        {
            await _slots!.WaitAsync(deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return RoomDecision.Unavailable($"no callback slot free within {_settings.CallbackTimeout.TotalSeconds:0.###} s");
        }
        try
        {
            Interlocked.Increment(ref _callbackCalls);
            using var request = new HttpRequestMessage(HttpMethod.Post, _settings.CallbackUrl)
            {
                Content = JsonContent.Create(new { userId, bullPenId }),
            };
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", ServiceToken());
            using var response = await _http!.SendAsync(request, deadline.Token).ConfigureAwait(false);
            var status = (int)response.StatusCode;
            if (status == 403)
                return Remember(userId, bullPenId, allowed: false);
            if (status is < 200 or > 299)
                return RoomDecision.Unavailable($"the callback answered {status}");
            using var body = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(deadline.Token).ConfigureAwait(false),
                default, deadline.Token).ConfigureAwait(false);
            if (body.RootElement.ValueKind != JsonValueKind.Object || !body.RootElement.TryGetProperty("allow", out var allow)
                || allow.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                return RoomDecision.Unavailable("the callback's answer has no boolean \"allow\"");
            return Remember(userId, bullPenId, allow.GetBoolean());
        }
        catch (OperationCanceledException)
        {
            return RoomDecision.Unavailable($"the callback did not answer within {_settings.CallbackTimeout.TotalSeconds:0.###} s");
        }
        catch (Exception e) when (e is HttpRequestException or JsonException or IOException or ObjectDisposedException)
        {
            return RoomDecision.Unavailable("the callback could not be reached");
        }
        finally
        {
            _slots!.Release();
        }
    }

    private RoomDecision Remember(string userId, string bullPenId, bool allowed)
    {
        // Bounded, checked every so often (ConcurrentDictionary.Count takes every lock): expired answers go first,
        // then, if that is not enough, a tenth of the entries, so one burst of new answers never empties the cache.
        if (Interlocked.Increment(ref _inserts) % 256 == 0 && _cache.Count >= _settings.CacheSize)
        {
            var now = Environment.TickCount64;
            foreach (var (key, value) in _cache)
            {
                if (value.UntilMs <= now)
                    _cache.TryRemove(key, out _);
            }
            var excess = _cache.Count - _settings.CacheSize * 9 / 10;
            foreach (var key in _cache.Keys.Take(Math.Max(0, excess)))
                _cache.TryRemove(key, out _);
        }
        var ttl = allowed ? _settings.AllowTtl : _settings.DenyTtl;
        _cache[(userId, bullPenId)] = (allowed, Environment.TickCount64 + (long)ttl.TotalMilliseconds);
        return allowed ? RoomDecision.Allow : RoomDecision.Forbidden(bullPenId);
    }

    private long _inserts;

    /// <summary>A short-lived service token, signed with the server's secret, renewed a minute before it expires.</summary>
    private string ServiceToken()
    {
        var current = _serviceToken;
        if (current.Token is not null && current.UntilMs > Environment.TickCount64)
            return current.Token;
        var token = _tokens!.ServiceToken("traderoom-server", TimeSpan.FromMinutes(5));
        _serviceToken = (token, Environment.TickCount64 + (long)TimeSpan.FromMinutes(4).TotalMilliseconds);
        return token;
    }

    public void Dispose()
    {
        _http?.Dispose();
        _slots?.Dispose();
    }
}

/// <summary>The room patterns of a <c>bullPens</c> claim: exact ids, and <c>prefix*</c> for every id that starts with prefix (<c>*</c> alone: every room).</summary>
public static class RoomPatterns
{
    public static bool Allows(IReadOnlyList<string> patterns, string bullPenId)
    {
        foreach (var pattern in patterns)
        {
            if (pattern.EndsWith('*')
                    ? bullPenId.AsSpan().StartsWith(pattern.AsSpan(0, pattern.Length - 1), StringComparison.Ordinal)
                    : pattern == bullPenId)
                return true;
        }
        return false;
    }
}
