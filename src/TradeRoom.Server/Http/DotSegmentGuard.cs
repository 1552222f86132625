using Microsoft.AspNetCore.Http.Features;

namespace TradeRoom.Server.Http;

/// <summary>
/// Refuses request targets with a <c>.</c> or <c>..</c> segment, plain or percent-encoded (<c>%2E%2E</c>, <c>..%2F</c>).
/// Kestrel decodes <c>%2E</c> and then removes dot segments, so <c>POST /api/rooms/%2E%2E/events</c> would reach
/// <c>POST /api/events</c>; and a room id that decodes to <c>../../api/events</c> names no room anyone could address
/// through a proxy that normalizes paths. No endpoint has a use for either, so they end here with a JSON 400.
/// </summary>
internal static class DotSegmentGuard
{
    public const string InvalidPath = "invalid_path";

    public static void UseDotSegmentGuard(this WebApplication app) =>
        app.Use((http, next) =>
        {
            var raw = http.Features.Get<IHttpRequestFeature>()?.RawTarget;
            if (raw is null || !HasDotSegment(raw))
                return next(http);
            http.Response.StatusCode = StatusCodes.Status400BadRequest;
            return http.Response.WriteAsJsonAsync(new
            {
                error = new
                {
                    code = InvalidPath,
                    message = "the path has a \".\" or \"..\" segment (plain or percent-encoded); no endpoint takes one",
                },
            });
        });

    private static bool HasDotSegment(string rawTarget)
    {
        var query = rawTarget.IndexOf('?');
        var path = query < 0 ? rawTarget : rawTarget[..query];
        if (!path.StartsWith('/'))
        {
            // Absolute form (http://host/path): only the path counts. Not through Uri, which removes dot segments.
            var authority = path.IndexOf("://", StringComparison.Ordinal);
            var slash = authority < 0 ? -1 : path.IndexOf('/', authority + 3);
            if (slash < 0)
                return false;
            path = path[slash..];
        }
        if (!path.Contains('.', StringComparison.Ordinal) && !path.Contains('%', StringComparison.Ordinal))
            return false;
        foreach (var segment in Uri.UnescapeDataString(path).Split('/'))
        {
            if (segment is "." or "..")
                return true;
        }
        return false;
    }
}
