using System.Text.Json;
using System.Text.Unicode;
using TradeRoom.Actors.Protocol;
using TradeRoom.Actors.Rooms;

namespace TradeRoom.Actors.Integration;

/// <summary>The rules every published event must pass, wherever it comes from (HTTP, the facade, another actor).</summary>
public static class EventValidator
{
    /// <summary>Null when <paramref name="e"/> may be published (then <paramref name="routed"/> is what goes to its room), else why not.</summary>
    public static PublishRejected? Validate(PublishEvent e, IReadOnlySet<string> privateEventTypes, out RoutedEvent routed)
    {
        routed = null!;
        if (!BullPenId.TryValidate(e.BullPenId, out _, out var roomError))
            return new PublishRejected(e.BullPenId ?? "", ErrorCodes.InvalidRoom, roomError);
        if (e.Type is null || !EventTypes.IsKnown(e.Type))
            return new PublishRejected(e.BullPenId, ErrorCodes.UnknownType,
                $"unknown event type \"{e.Type}\"; expected one of: {string.Join(", ", EventTypes.All)}");
        if (e.Data is null || !Utf8.IsValid(e.Data) || !TryReadObject(e.Data, out var userId))
            return new PublishRejected(e.BullPenId, ErrorCodes.InvalidMessage, "data must be a JSON object");

        var isPrivate = privateEventTypes.Contains(e.Type);
        if (isPrivate && userId is null)
            return new PublishRejected(e.BullPenId, ErrorCodes.MissingUser,
                $"{e.Type} is private to one trader: data.userId must be a string");
        routed = new RoutedEvent(e.BullPenId, e.Type, e.Data, userId, isPrivate);
        return null;
    }

    /// <summary>True when <paramref name="data"/> is exactly one JSON object; <paramref name="userId"/> is its top-level string <c>userId</c>, if any.</summary>
    private static bool TryReadObject(byte[] data, out string? userId)
    {
        userId = null;
        var reader = new Utf8JsonReader(data);
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                return false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isUserId = reader.ValueTextEquals("userId"u8);
                reader.Read();
                if (isUserId)
                {
                    // The last userId wins, as in JavaScript's JSON.parse; GetString throws on a lone surrogate escape.
                    userId = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                }
                reader.Skip();
            }
            return reader.TokenType == JsonTokenType.EndObject && !reader.Read();
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return false;
        }
    }
}
