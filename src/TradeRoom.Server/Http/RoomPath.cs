using Microsoft.AspNetCore.Http.Features;

namespace TradeRoom.Server.Http;

internal static class RoomPath
{
    /// <summary>
    /// The room id of <c>/api/rooms/{bullPenId}{suffix}</c> as the client wrote it: Kestrel decodes every escape in
    /// the path but %2F, so "desk%2F7" would otherwise not name the room "desk/7" that sockets subscribe to.
    /// Decoded once, from the raw target.
    /// </summary>
    public static string RoomIdFromRawPath(HttpContext http, string routeValue, string suffix = "")
    {
        const string prefix = "/api/rooms/";
        var raw = http.Features.Get<IHttpRequestFeature>()?.RawTarget;
        if (raw is null)
            return routeValue;
        var query = raw.IndexOf('?');
        var path = query < 0 ? raw : raw[..query];
        if (!path.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) || !path.EndsWith(suffix, StringComparison.OrdinalIgnoreCase)
            || path.Length <= prefix.Length + suffix.Length)
            return routeValue;
        return Uri.UnescapeDataString(path[prefix.Length..^suffix.Length]);
    }
}
