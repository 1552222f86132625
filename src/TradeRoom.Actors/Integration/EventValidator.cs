using System.Text.Json;
using TradeRoom.Actors.Protocol;

namespace TradeRoom.Actors.Integration;

/// <summary>The rules every published event must pass, wherever it comes from (HTTP, the facade, another actor).</summary>
public static class EventValidator
{
    /// <summary>Null when <paramref name="e"/> may be published, else why not.</summary>
    public static PublishRejected? Validate(PublishEvent e)
    {
        if (!BullPenId.TryValidate(e.BullPenId, out _, out var roomError))
            return new PublishRejected(e.BullPenId ?? "", ErrorCodes.InvalidRoom, roomError);
        if (e.Type is null || !EventTypes.IsKnown(e.Type))
            return new PublishRejected(e.BullPenId, ErrorCodes.UnknownType,
                $"unknown event type \"{e.Type}\"; expected one of: {string.Join(", ", EventTypes.All)}");
        if (e.Data is null || !IsJsonObject(e.Data))
            return new PublishRejected(e.BullPenId, ErrorCodes.InvalidMessage, "data must be a JSON object");
        return null;
    }

    private static bool IsJsonObject(byte[] data)
    {
        var reader = new Utf8JsonReader(data);
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                return false;
            reader.Skip();
            return !reader.Read();
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
