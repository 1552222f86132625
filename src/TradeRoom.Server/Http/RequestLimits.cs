using Akka.Configuration;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using TradeRoom.Protocol;

namespace TradeRoom.Server.Http;

/// <summary>
/// <c>traderoom.http.max-request-line-size</c>, <c>max-request-headers-size</c>, <c>max-request-header-count</c>: the
/// limits on a request's head that the HTTP port enforces itself, so that their refusals carry the JSON error body.
/// Kestrel answers its own limit violations before any application code runs, with an empty body and no hook to add
/// one; so Kestrel's limits are raised to <c>kestrel-backstop-factor</c> times these, and only a request past that
/// backstop still gets Kestrel's bodiless answer.
/// </summary>
internal sealed record RequestLimits(int MaxRequestLineSize, int MaxHeadersSize, int MaxHeaderCount, int BackstopFactor)
{
    /// <summary>Throws <see cref="StartupException"/> for a limit that is not positive, or a backstop Kestrel cannot take.</summary>
    public static RequestLimits FromConfig(Config config)
    {
        var c = config.GetConfig("traderoom.http") ?? throw new StartupException("the HOCON has no traderoom.http section");
        var limits = new RequestLimits(
            Positive(c, "max-request-line-size", c.GetByteSize),
            Positive(c, "max-request-headers-size", c.GetByteSize),
            Positive(c, "max-request-header-count", key => c.GetInt(key)),
            Positive(c, "kestrel-backstop-factor", key => c.GetInt(key)));

        // Kestrel refuses to start when its request line or header limit exceeds its request buffer (the most it holds
        // of one connection's unread input), so the backstop must fit in that buffer.
        var buffer = new KestrelServerLimits().MaxRequestBufferSize!.Value;
        var largest = (long)Math.Max(limits.MaxRequestLineSize, limits.MaxHeadersSize) * limits.BackstopFactor;
        if (largest > buffer)
            throw new StartupException(
                $"traderoom.http.kestrel-backstop-factor ({limits.BackstopFactor}) times the larger of max-request-line-size and " +
                $"max-request-headers-size is {largest} bytes, over Kestrel's request buffer of {buffer} bytes; lower one of them");
        return limits;
    }

    /// <summary>Raises Kestrel's own head limits to the backstop, above the limits this server answers with a JSON body.</summary>
    public void ApplyBackstop(KestrelServerLimits kestrel)
    {
        kestrel.MaxRequestLineSize = MaxRequestLineSize * BackstopFactor;
        kestrel.MaxRequestHeadersTotalSize = MaxHeadersSize * BackstopFactor;
        kestrel.MaxRequestHeaderCount = (int)Math.Min((long)MaxHeaderCount * BackstopFactor, int.MaxValue);
    }

    private static int Positive(Config c, string key, Func<string, long?> read)
    {
        long? value;
        try
        {
            value = read(key);
        }
        catch (Exception e) when (e is ConfigurationException or FormatException or OverflowException)
        {
            value = null;
        }
        return value is > 0 and <= int.MaxValue
            ? (int)value.Value
            : throw new StartupException($"traderoom.http.{key} must be a positive number, not \"{c.GetString(key)}\"");
    }
}

/// <summary>
/// The first middleware of the HTTP port: it refuses a request whose head is over <see cref="RequestLimits"/> with
/// 414 <c>uri_too_long</c> or 431 <c>headers_too_large</c>, and turns a <see cref="Microsoft.AspNetCore.Http.BadHttpRequestException"/> that
/// Kestrel throws while an endpoint reads the body (bad chunked framing, say) into a JSON answer with its status,
/// where Kestrel would answer with an empty body, or the developer exception page with a stack trace in Development.
/// </summary>
internal static class RequestLimitsMiddleware
{
    public const string UriTooLong = "uri_too_long";
    public const string HeadersTooLarge = "headers_too_large";
    public const string BadRequest = "bad_request";
    public const string RequestTimeout = "request_timeout";

    public static void UseRequestLimits(this WebApplication app, RequestLimits limits) =>
        app.Use(async (http, next) =>
        {
            if (Refusal(http, limits) is { } refusal)
            {
                await ApiErrors.Error(refusal.Status, refusal.Code, refusal.Message).ExecuteAsync(http);
                return;
            }
            try
            {
                await next(http);
            }
            catch (Microsoft.AspNetCore.Http.BadHttpRequestException e) when (!http.Response.HasStarted)
            {
                http.Response.Clear();
                // The request's framing is broken: whatever follows on the connection cannot be read as a next request.
                http.Response.Headers.Connection = "close";
                var (code, message) = e.StatusCode switch
                {
                    StatusCodes.Status408RequestTimeout => (RequestTimeout, "the request body arrived too slowly"),
                    StatusCodes.Status413PayloadTooLarge => (ErrorCodes.PayloadTooLarge, "the request body is too large"),
                    _ => (BadRequest, $"the request is malformed: {e.Message}"),
                };
                await ApiErrors.Error(e.StatusCode, code, message).ExecuteAsync(http);
            }
        });

    /// <summary>
    /// As Kestrel counts them: the request line is its method, target and version with the two spaces between them
    /// and its CRLF; the headers are <c>name: value</c> and a CRLF per header line, as Kestrel parsed them (spaces
    /// around the value trimmed). Both in characters, which are the bytes of an ASCII head.
    /// </summary>
    private static (int Status, string Code, string Message)? Refusal(HttpContext http, RequestLimits limits)
    {
        var request = http.Request;
        var target = http.Features.Get<IHttpRequestFeature>()?.RawTarget ?? "";
        var line = (long)request.Method.Length + 1 + target.Length + 1 + request.Protocol.Length + 2;
        if (line > limits.MaxRequestLineSize)
            return (StatusCodes.Status414UriTooLong, UriTooLong,
                $"the request line is {line} characters, over the limit of {limits.MaxRequestLineSize} (traderoom.http.max-request-line-size)");

        long size = 0;
        var count = 0;
        foreach (var header in request.Headers)
        {
            foreach (var value in header.Value)
            {
                count++;
                size += header.Key.Length + 2 + (value?.Length ?? 0) + 2;
            }
        }
        if (count > limits.MaxHeaderCount)
            return (StatusCodes.Status431RequestHeaderFieldsTooLarge, HeadersTooLarge,
                $"the request has {count} header lines, over the limit of {limits.MaxHeaderCount} (traderoom.http.max-request-header-count)");
        if (size > limits.MaxHeadersSize)
            return (StatusCodes.Status431RequestHeaderFieldsTooLarge, HeadersTooLarge,
                $"the request headers are {size} characters, over the limit of {limits.MaxHeadersSize} (traderoom.http.max-request-headers-size)");
        return null;
    }
}
