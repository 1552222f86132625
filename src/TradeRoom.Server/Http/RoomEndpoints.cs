using System.Text.Json;
using Akka.Actor;
using Akka.Hosting;
using Microsoft.OpenApi;
using TradeRoom.Actors;
using TradeRoom.Actors.Auth;
using TradeRoom.Actors.Rooms;
using TradeRoom.Protocol;

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
        app.MapGet("/api/rooms", ListAsync)
            .WithName("ListRooms")
            .WithSummary("The running rooms, a page at a time")
            .WithDescription("Rooms ordered by id; `limit` (1 to traderoom.http.rooms-page-size, its default) and `after` " +
                "(the `next` of the previous page). Looking never starts a room nor keeps one from stopping.")
            .WithTags("Rooms")
            .Produces<RoomListPage>()
            // The handler reads the query itself (an empty or bad limit is a 400, not a default), so they are described here.
            .AddOpenApiOperationTransformer((operation, _, _) =>
            {
                operation.Parameters ??= [];
                operation.Parameters.Add(QueryParameter("limit", JsonSchemaType.Integer, "Rooms per page, 1 to traderoom.http.rooms-page-size (its default)."));
                operation.Parameters.Add(QueryParameter("after", JsonSchemaType.String, "The `next` of the previous page: rooms after this id."));
                return Task.CompletedTask;
            })
            .RequiresServiceToken()
            .ProducesErrors(400, InvalidRequest)
            .ProducesErrors(503, ErrorCodes.Timeout);
        app.MapGet("/api/rooms/{bullPenId}", GetAsync)
            .WithName("GetRoom")
            .WithSummary("One running room: its state snapshot and subscribed users")
            .WithTags("Rooms")
            .Produces<RoomView>()
            .RequiresServiceToken()
            .ProducesErrors(400, ErrorCodes.InvalidRoom)
            .ProducesErrors(404, ErrorCodes.RoomNotFound)
            .ProducesErrors(503, ErrorCodes.Timeout);
    }

    private const string InvalidRequest = "invalid_request";

    private static OpenApiParameter QueryParameter(string name, JsonSchemaType type, string description) => new()
    {
        Name = name,
        In = ParameterLocation.Query,
        Required = false,
        Description = description,
        Schema = new OpenApiSchema { Type = type },
    };

    private static async Task<IResult> ListAsync(HttpContext http, JwtValidator validator, TradeRoomSettings settings,
        IRequiredActor<RoomDirectory> rooms)
    {
        if (await ServiceAuth.CheckAsync(http, validator) is { } denied)
            return denied;
        var limit = settings.RoomsPageSize;
        if (http.Request.Query.TryGetValue("limit", out var limitText)
            && (!int.TryParse(limitText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out limit)
                || limit < 1 || limit > settings.RoomsPageSize))
            return ApiErrors.Error(400, InvalidRequest, $"limit must be an integer from 1 to {settings.RoomsPageSize} (traderoom.http.rooms-page-size)");
        var after = http.Request.Query.TryGetValue("after", out var afterText) ? afterText.ToString() : null;
        try
        {
            var list = await rooms.ActorRef.Ask<RoomList>(new GetRooms(limit, after), settings.QueryTimeout, http.RequestAborted);
            return Results.Json(new RoomListPage(
                list.Rooms.Select(r => new RoomListEntry(r.BullPenId, r.Subscribers, r.Seq, r.Epoch, r.Node)).ToList(),
                list.Next));
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
                RoomDetails room => Results.Json(new RoomView(room.BullPenId, room.Subscribers, room.Seq, room.Epoch,
                    JsonSerializer.Deserialize<RoomStateView>(room.State, JsonSerializerOptions.Web)!, room.Users, room.Node)),
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
