using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace TradeRoom.Protocol;

/// <summary>
/// Builds the UTF-8 JSON frames the server sends. Each call produces one immutable byte array that
/// can be handed to any number of sockets.
/// </summary>
public static class ServerFrames
{
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        // Ids and messages are written as given; the frames are JSON, not HTML.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        SkipValidation = true,
    };

    private static readonly byte[] EmptyObject = "{}"u8.ToArray();

    /// <param name="node">The server node the connection is on (see <see cref="Connections.ConnectionSettings.Node"/>).</param>
    public static byte[] AuthSuccess(string userId, string node) =>
        Build(w =>
        {
            Header(w, "auth_success");
            w.WriteStartObject("data");
            w.WriteString("userId", userId);
            w.WriteString("node", node);
            w.WriteEndObject();
        });

    public static byte[] AuthError(string code, string message) => CodeAndMessage("auth_error", code, message);

    /// <param name="bullPenId">The room a refused request was about (<c>subscribe_room</c> over the limit, or with a
    /// bad <c>sinceSeq</c>/<c>epoch</c>), written as <c>data.bullPenId</c>; null for errors about no particular room.</param>
    public static byte[] Error(string code, string message, string? bullPenId = null) => CodeAndMessage("error", code, message, bullPenId);

    /// <param name="state">The room's state snapshot, raw JSON.</param>
    public static byte[] Subscribed(string bullPenId, long seq, string epoch, bool recovered, byte[] state) =>
        Build(w =>
        {
            Header(w, "subscribed");
            w.WriteStartObject("data");
            w.WriteString("bullPenId", bullPenId);
            w.WriteNumber("seq", seq);
            w.WriteString("epoch", epoch);
            w.WriteBoolean("recovered", recovered);
            w.WritePropertyName("state");
            w.WriteRawValue(state, skipInputValidation: true);
            w.WriteEndObject();
        });

    public static byte[] Unsubscribed(string bullPenId) =>
        Build(w => { Header(w, "unsubscribed"); w.WriteStartObject("data"); w.WriteString("bullPenId", bullPenId); w.WriteEndObject(); });

    /// <summary><c>pong</c> echoes the ping's <c>data</c> (raw JSON), or <c>{}</c>.</summary>
    public static byte[] Pong(byte[]? data) =>
        Build(w => { Header(w, "pong"); w.WritePropertyName("data"); w.WriteRawValue(data ?? EmptyObject, skipInputValidation: true); });

    /// <summary>An event frame: <c>{"type":…,"bullPenId":…,"seq":…,"data":…}</c>, with <paramref name="data"/> as published.</summary>
    public static byte[] Event(string type, string bullPenId, long seq, ReadOnlySpan<byte> data)
    {
        var buffer = new ArrayBufferWriter<byte>(data.Length + type.Length + bullPenId.Length + 64);
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            Header(w, type);
            w.WriteString("bullPenId", bullPenId);
            w.WriteNumber("seq", seq);
            w.WritePropertyName("data");
            w.WriteRawValue(data, skipInputValidation: true);
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static byte[] CodeAndMessage(string type, string code, string message, string? bullPenId = null) =>
        Build(w =>
        {
            Header(w, type);
            w.WriteStartObject("data");
            w.WriteString("code", code);
            w.WriteString("message", message);
            if (bullPenId is not null)
                w.WriteString("bullPenId", bullPenId);
            w.WriteEndObject();
        });

    private static void Header(Utf8JsonWriter w, string type)
    {
        w.WriteStartObject();
        w.WriteString("type", type);
    }

    private static byte[] Build(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            body(w);
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }
}
