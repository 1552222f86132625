using System.Buffers;
using System.Text.Json;

namespace TradeRoom.Client;

// How this client reads the wire protocol's frames (docs/protocol.md); the names it shares with the server (event
// types, error and close codes) come from TradeRoom.Protocol.

/// <summary>The room's state as <c>subscribed</c> carries it (docs/protocol.md, "State on subscribe").</summary>
/// <param name="Leaderboard">The data of the latest <c>leaderboard_update</c> or <c>snapshot_created</c>, or null.</param>
/// <param name="Room">The data of the latest <c>room_state_changed</c>, <c>room_started</c> or <c>room_ended</c>, or null.</param>
/// <param name="Members">The user ids that joined and have not left, in join order.</param>
public sealed record RoomSnapshot(JsonElement? Leaderboard, JsonElement? Room, IReadOnlyList<string> Members)
{
    internal static RoomSnapshot Parse(JsonElement data)
    {
        if (!data.TryGetProperty("state", out var state) || state.ValueKind != JsonValueKind.Object)
            return new RoomSnapshot(null, null, []);
        var members = new List<string>();
        if (state.TryGetProperty("members", out var list) && list.ValueKind == JsonValueKind.Array)
        {
            foreach (var member in list.EnumerateArray())
            {
                if (member.ValueKind == JsonValueKind.String)
                    members.Add(member.GetString()!);
            }
        }
        return new RoomSnapshot(ObjectOrNull(state, "leaderboard"), ObjectOrNull(state, "room"), members);
    }

    private static JsonElement? ObjectOrNull(JsonElement state, string name) =>
        state.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? value.Clone() : null;
}

/// <summary>The client's messages, written as UTF-8 JSON (docs/protocol.md, "Client → server").</summary>
internal static class ClientMessages
{
    public static byte[] Auth(string token) => Write(writer =>
    {
        writer.WriteString("type", "auth");
        writer.WriteStartObject("data");
        writer.WriteString("token", token);
        writer.WriteEndObject();
    });

    public static byte[] Subscribe(string bullPenId, long? sinceSeq, string? epoch) => Write(writer =>
    {
        writer.WriteString("type", "subscribe_room");
        writer.WriteStartObject("data");
        writer.WriteString("bullPenId", bullPenId);
        if (sinceSeq is { } since && epoch is not null)
        {
            writer.WriteNumber("sinceSeq", since);
            writer.WriteString("epoch", epoch);
        }
        writer.WriteEndObject();
    });

    public static byte[] Unsubscribe(string bullPenId) => Write(writer =>
    {
        writer.WriteString("type", "unsubscribe_room");
        writer.WriteStartObject("data");
        writer.WriteString("bullPenId", bullPenId);
        writer.WriteEndObject();
    });

    public static byte[] Ping() => "{\"type\":\"ping\"}"u8.ToArray();

    private static byte[] Write(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            body(writer);
            writer.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }
}

/// <summary>One frame from the server, parsed: its type, its data, and for events the room and seq.</summary>
internal readonly record struct ServerFrame(string Type, JsonElement Data, string? BullPenId, long? Seq)
{
    /// <summary>The frame, or null if it is not a JSON object with a string <c>type</c>.</summary>
    public static ServerFrame? Parse(ReadOnlyMemory<byte> utf8)
    {
        JsonElement root;
        try
        {
            using var document = JsonDocument.Parse(utf8);
            root = document.RootElement.Clone();
        }
        catch (JsonException)
        {
            return null;
        }
        if (root.ValueKind != JsonValueKind.Object
            || !root.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
            return null;
        var data = root.TryGetProperty("data", out var d) && d.ValueKind == JsonValueKind.Object ? d : EmptyObject;
        string? bullPenId = root.TryGetProperty("bullPenId", out var b) ? RoomIdOf(b) : null;
        long? seq = root.TryGetProperty("seq", out var s) && s.ValueKind == JsonValueKind.Number && s.TryGetInt64(out var n) ? n : null;
        return new ServerFrame(type.GetString()!, data, bullPenId, seq);
    }

    /// <summary>A room id as the server writes it: a string, or an integer taken as its decimal string.</summary>
    public static string? RoomIdOf(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString(),
        JsonValueKind.Number => value.GetRawText(),
        _ => null,
    };

    public string? String(string name) =>
        Data.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    public long? Long(string name) =>
        Data.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var n) ? n : null;

    public bool Bool(string name) =>
        Data.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.True;

    private static readonly JsonElement EmptyObject = JsonDocument.Parse("{}").RootElement.Clone();
}
