using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.InteropServices;
using System.Text.Json;
using TradeRoom.Actors;
using TradeRoom.Actors.Auth;
using TradeRoom.Actors.Integration;
using TradeRoom.Contracts;
using TradeRoom.Protocol;

namespace TradeRoom.Server.Http;

/// <summary>
/// How trade services in other processes publish: <c>POST /api/rooms/{bullPenId}/events</c> (one event) and
/// <c>POST /api/events</c> (an all-or-nothing batch), both behind a service token.
/// </summary>
internal static class PublishEndpoints
{
    public static void MapPublishEndpoints(this IEndpointRouteBuilder app)
    {
        // The handlers read the body themselves (bounded, after the token check): Accepts only describes it.
        app.MapPost("/api/rooms/{bullPenId}/events", PublishOneAsync)
            .WithName("PublishEvent")
            .WithSummary("Publish one event to a bull pen")
            .WithDescription("Validates, stores and delivers one event to the room's subscribers (private events only to data.userId). " +
                "The room starts if it is not running. Answered once the event is stored.")
            .WithTags("Publishing")
            .Accepts<PublishEventRequest>("application/json")
            .Produces<EventAccepted>(StatusCodes.Status202Accepted)
            .RequiresServiceToken()
            .PublishErrors();
        app.MapPost("/api/events", PublishBatchAsync)
            .WithName("PublishEvents")
            .WithSummary("Publish a batch of events (all or nothing)")
            .WithDescription("Validates every event first: one bad event and nothing is published, and the message names it " +
                "(events[3]: …). A 503 timeout may come after earlier events of the batch were published.")
            .WithTags("Publishing")
            .Accepts<BatchEventRequest[]>("application/json")
            .Produces<BatchAccepted>(StatusCodes.Status202Accepted)
            .RequiresServiceToken()
            .PublishErrors();
    }

    private static RouteHandlerBuilder PublishErrors(this RouteHandlerBuilder builder) => builder
        .ProducesErrors(400, ErrorCodes.InvalidJson, ErrorCodes.InvalidMessage, ErrorCodes.UnknownType, ErrorCodes.InvalidRoom, ErrorCodes.MissingUser)
        .ProducesErrors(413, ErrorCodes.PayloadTooLarge)
        .ProducesErrors(503, ErrorCodes.RoomLimit, ErrorCodes.StorageUnavailable, ErrorCodes.Timeout);

    private static async Task<IResult> PublishOneAsync(string bullPenId, HttpContext http, JwtValidator validator,
        TradeRoomSettings settings, TradeRoomIntegration integration)
    {
        var body = await ReadAuthorizedBodyAsync(http, validator, settings);
        if (body.Error is not null)
            return body.Error;
        using var document = body.Document!;

        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
            return ApiErrors.Error(400, ErrorCodes.InvalidMessage, "the body must be a JSON object {\"type\":…,\"data\":{…}}");
        if (!BullPenId.TryValidate(RoomPath.RoomIdFromRawPath(http, bullPenId, "/events"), out var id, out var roomError))
            return ApiErrors.Error(400, ErrorCodes.InvalidRoom, roomError);
        if (HasUnreadableName(root))
            return ApiErrors.Error(400, ErrorCodes.InvalidMessage, UnreadableName);
        if (ReadEvent(root, id) is not { } e)
            return ApiErrors.Error(400, ErrorCodes.InvalidMessage, "the event needs a string \"type\" and a \"data\" object");

        return await integration.PublishAsync(e, http.RequestAborted) switch
        {
            EventPublished published => Results.Json(new EventAccepted(published.BullPenId, published.Seq), statusCode: 202),
            PublishRejected rejected => Rejection(rejected, ""),
            _ => throw new InvalidOperationException("unexpected publish result"),
        };
    }

    private static async Task<IResult> PublishBatchAsync(HttpContext http, JwtValidator validator,
        TradeRoomSettings settings, TradeRoomIntegration integration)
    {
        var body = await ReadAuthorizedBodyAsync(http, validator, settings);
        if (body.Error is not null)
            return body.Error;
        using var document = body.Document!;

        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Array)
            return ApiErrors.Error(400, ErrorCodes.InvalidMessage, "the body must be a JSON array of {\"bullPenId\":…,\"type\":…,\"data\":{…}}");

        var events = new List<PublishEvent>(root.GetArrayLength());
        foreach (var item in root.EnumerateArray())
        {
            var at = $"events[{events.Count}]: ";
            if (item.ValueKind != JsonValueKind.Object)
                return ApiErrors.Error(400, ErrorCodes.InvalidMessage, at + "each event must be a JSON object");
            if (HasUnreadableName(item))
                return ApiErrors.Error(400, ErrorCodes.InvalidMessage, at + UnreadableName);
            if (!item.TryGetProperty("bullPenId", out var idElement))
                return ApiErrors.Error(400, ErrorCodes.InvalidRoom, at + "bullPenId is missing");
            if (!BullPenId.TryRead(idElement, out var id, out var roomError))
                return ApiErrors.Error(400, ErrorCodes.InvalidRoom, at + roomError);
            if (ReadEvent(item, id) is not { } e)
                return ApiErrors.Error(400, ErrorCodes.InvalidMessage, at + "each event needs a string \"type\" and a \"data\" object");
            // The first bad event is the one named, whatever is wrong with it.
            if (EventValidator.Validate(e, settings.Rooms.PrivateEventTypes, out _) is { } rejected)
                return Rejection(rejected, at);
            events.Add(e);
        }

        var result = await integration.PublishBatchAsync(events, http.RequestAborted);
        return result.Accepted
            ? Results.Json(new BatchAccepted(result.Seqs.Count, result.Seqs), statusCode: 202)
            : Rejection(result.Rejection!, $"events[{result.RejectedIndex}]: ");
    }

    /// <summary>The event in <paramref name="element"/>, or null when it has no string type or no data. The rest is the <see cref="EventValidator"/>'s to judge.</summary>
    private static PublishEvent? ReadEvent(JsonElement element, string bullPenId)
    {
        try
        {
            if (!element.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
                return null;
            if (!element.TryGetProperty("data", out var data))
                return null;
            return new PublishEvent(bullPenId, type.GetString()!, JsonMarshal.GetRawUtf8Value(data).ToArray());
        }
        catch (InvalidOperationException)
        {
            // A type, or a property name of the event, that is not valid Unicode text (a lone surrogate escape):
            // System.Text.Json throws when it compares or reads such a name.
            return null;
        }
    }

    private const string UnreadableName = "a property name is not valid Unicode text (a lone surrogate escape)";

    /// <summary>
    /// True when a property name of the event object holds a lone surrogate escape. System.Text.Json may throw when a
    /// lookup meets such a name, and an envelope the server cannot read as text is refused like bad data.
    /// </summary>
    private static bool HasUnreadableName(JsonElement element)
    {
        try
        {
            foreach (var property in element.EnumerateObject())
                _ = property.Name;
            return false;
        }
        catch (InvalidOperationException)
        {
            return true;
        }
    }

    private static IResult Rejection(PublishRejected rejected, string at) =>
        ApiErrors.Error(rejected.Code is ErrorCodes.Timeout or ErrorCodes.RoomLimit or ErrorCodes.StorageUnavailable ? 503 : 400, rejected.Code, at + rejected.Message);

    private readonly record struct Body(JsonDocument? Document, IResult? Error);

    /// <summary>Checks the service token, then reads the body (bounded) as JSON; on failure the result to answer with.</summary>
    private static async Task<Body> ReadAuthorizedBodyAsync(HttpContext http, JwtValidator validator, TradeRoomSettings settings)
    {
        if (await ServiceAuth.CheckAsync(http, validator) is { } denied)
            return Fail(denied);

        var limit = settings.MaxBodySize;
        if (http.Request.ContentLength > limit)
            return Fail(TooLarge(limit));

        var reader = http.Request.BodyReader;
        ReadResult read;
        while (true)
        {
            read = await reader.ReadAsync(http.RequestAborted);
            if (read.Buffer.Length > limit)
            {
                reader.AdvanceTo(read.Buffer.End);
                return Fail(TooLarge(limit));
            }
            if (read.IsCompleted)
                break;
            reader.AdvanceTo(read.Buffer.Start, read.Buffer.End);
        }

        try
        {
            // A copy: a document over the pipe's own memory would outlive it once the pipe is advanced below.
            var document = JsonDocument.Parse(read.Buffer.ToArray(), new JsonDocumentOptions { MaxDepth = 64 });
            return new Body(document, null);
        }
        catch (JsonException e)
        {
            return Fail(ApiErrors.Error(400, ErrorCodes.InvalidJson, $"the body is not valid JSON: {e.Message}"));
        }
        finally
        {
            reader.AdvanceTo(read.Buffer.End);
        }

        static Body Fail(IResult error) => new(null, error);
    }

    private static IResult TooLarge(long limit) =>
        ApiErrors.Error(413, ErrorCodes.PayloadTooLarge, $"the body is over the limit of {limit} bytes");
}
