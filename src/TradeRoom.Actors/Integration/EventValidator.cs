using System.Text.Json;
using System.Text.Unicode;
using TradeRoom.Actors.Rooms;
using TradeRoom.Contracts;
using TradeRoom.Protocol;

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
            return new PublishRejected(e.BullPenId, ErrorCodes.InvalidMessage, "data must be a JSON object whose names and strings are valid text (a lone surrogate escape such as \\ud800 is not)");

        var isPrivate = privateEventTypes.Contains(e.Type);
        if (isPrivate && userId is null)
            return new PublishRejected(e.BullPenId, ErrorCodes.MissingUser,
                $"{e.Type} is private to one trader: data.userId must be a string");
        routed = new RoutedEvent(e.BullPenId, e.Type, e.Data, userId, isPrivate);
        return null;
    }

    /// <summary>
    /// True when <paramref name="data"/> is exactly one JSON object whose every string (names and values, at any
    /// depth) is text: a lone surrogate escape (<c>"\ud800"</c>) is valid JSON but no string, and the room, which
    /// rewrites some events' data, could not write it back. <paramref name="userId"/> is its top-level string
    /// <c>userId</c>, if any.
    /// </summary>
    private static bool TryReadObject(byte[] data, out string? userId)
    {
        userId = null;
        var reader = new Utf8JsonReader(data);
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                return false;
            while (reader.Read())
            {
                if (reader.TokenType is JsonTokenType.PropertyName or JsonTokenType.String && reader.ValueIsEscaped)
                    _ = reader.GetString(); // throws on an escape that is not text; unescaped UTF-8 was checked whole
                if (reader.CurrentDepth != 1 || reader.TokenType != JsonTokenType.PropertyName || !reader.ValueTextEquals("userId"u8))
                    continue;
                reader.Read();
                // The last userId wins, as in JavaScript's JSON.parse.
                userId = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
                    continue; // its strings are checked as the loop goes on
            }
            return reader.TokenType == JsonTokenType.EndObject && reader.CurrentDepth == 0;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return false;
        }
    }
}
