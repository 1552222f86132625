namespace TradeRoom.Server.Http;

/// <summary>Every HTTP error body: <c>{"error":{"code":…,"message":…}}</c>.</summary>
internal static class ApiErrors
{
    public static IResult Error(int status, string code, string message) =>
        Results.Json(new ApiErrorBody(new ApiError(code, message)), statusCode: status);
}
