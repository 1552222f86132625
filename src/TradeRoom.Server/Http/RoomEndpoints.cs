using System.Text.Json;
using Akka.Actor;
using Akka.Hosting;
using TradeRoom.Actors;
using TradeRoom.Actors.Auth;
using TradeRoom.Actors.Protocol;
using TradeRoom.Actors.Rooms;

namespace TradeRoom.Server.Http;

/// <summary>
/// Room inspection for operators: <c>GET /api/rooms</c> (the running rooms, a page at a time) and <c>GET /api/rooms/{bullPenId}</c>
/// (one room with its state snapshot and subscribed users), behind a service token like publishing. Looking never
/// starts a room nor keeps one from stopping.
/// </summary>
internal static class RoomEndpoints
{
    public static void MapRoomEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/rooms", ListAsync);
        app.MapGet("/api/rooms/{bullPenId}", GetAsync);
    }

    private static async Task<IResult> ListAsync(HttpContext http, JwtValidator validator, TradeRoomSettings settings,
        IRequiredActor<RoomDirectory> rooms)
    {
        if (await ServiceAuth.CheckAsync(http, validator) is { } denied)
            return denied;
        var limit = settings.RoomsPageSize;
        if (http.Request.Query.TryGetValue("limit", out var limitText)
            && (!int.TryParse(limitText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out limit)
                || limit < 1 || limit > settings.RoomsPageSize))
            return ApiErrors.Error(400, "invalid_request", $"limit must be an integer from 1 to {settings.RoomsPageSize} (traderoom.http.rooms-page-size)");
        var after = http.Request.Query.TryGetValue("after", out var afterText) ? afterText.ToString() : null;
        try
        {
            var list = await rooms.ActorRef.Ask<RoomList>(new GetRooms(limit, after), settings.QueryTimeout, http.RequestAborted);
            return Results.Json(new
            {
                rooms = list.Rooms.Select(r => new { bullPenId = r.BullPenId, subscribers = r.Subscribers, seq = r.Seq, epoch = r.Epoch, node = r.Node }),
                next = list.Next,
            });
        }
        catch (AskTimeoutException)
        {
            return TimedOut(settings);
        }
    }

    private static async Task<IResult> GetAsync(string bullPenId, HttpContext http, JwtValidator validator, TradeRoomSettings settings,
        IRequiredActor<RoomDirectory> rooms)
    {
        if (await ServiceAuth.CheckAsync(http, validator) is { } denied)
            return denied;
        if (!BullPenId.TryValidate(RoomPath.RoomIdFromRawPath(http, bullPenId), out var id, out var roomError))
            return ApiErrors.Error(400, ErrorCodes.InvalidRoom, roomError);
        try
        {
            return await rooms.ActorRef.Ask<object>(new GetRoomDetails(id), settings.QueryTimeout, http.RequestAborted) switch
            {
                RoomDetails room => Results.Json(new
                {
                    bullPenId = room.BullPenId,
                    subscribers = room.Subscribers,
                    seq = room.Seq,
                    epoch = room.Epoch,
                    state = JsonSerializer.Deserialize<JsonElement>(room.State),
                    users = room.Users,
                    node = room.Node,
                }),
                RoomNotFound => ApiErrors.Error(404, ErrorCodes.RoomNotFound,
                    $"no room \"{id}\" is running (a room starts on its first subscribe or event and stops when idle)"),
                var other => throw new InvalidOperationException($"unexpected answer {other.GetType().Name}"),
            };
        }
        catch (AskTimeoutException)
        {
            return TimedOut(settings);
        }
    }

    private static IResult TimedOut(TradeRoomSettings settings) =>
        ApiErrors.Error(503, ErrorCodes.Timeout, $"the rooms did not answer within {settings.QueryTimeout.TotalSeconds:0.#} s (traderoom.http.query-timeout)");
}
