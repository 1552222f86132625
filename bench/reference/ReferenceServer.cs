using System.Buffers;
using System.Net;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace TradeRoom.BenchReference;

/// <summary>
/// The benchmark's reference: a minimal WebSocket fan-out server on plain Kestrel, to set the project's figures beside
/// in the same run. ASP.NET Core's <c>UseWebSockets</c> and one <see cref="WebSocket"/> per connection, a list of
/// sockets per room, and per socket an unbounded queue drained by a plain send loop, one <c>SendAsync</c> per frame.
/// No actors, no batching, no backpressure, no history, no privacy: only what the load tester's scenarios use, on the
/// wire exactly as the project frames it (docs/protocol.md): <c>?token=</c> or an <c>auth</c> message (an HS256 JWT
/// with the same secret), <c>subscribe_room</c>, <c>ping</c>; <c>POST /api/events</c> and
/// <c>POST /api/rooms/{id}/events</c> with a service token; <c>GET /api/health</c>; and <c>/metrics</c> with the two
/// counters the load tester compares with its own.
/// </summary>
public static class ReferenceServer
{
    /// <summary>The host, not started: WebSockets on <paramref name="wsPort"/>, the HTTP API on <paramref name="apiPort"/>.</summary>
    public static WebApplication Build(IPAddress bind, int wsPort, int apiPort, string secret)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(2));
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(bind, wsPort);
            k.Listen(bind, apiPort);
        });
        var app = builder.Build();
        var hub = new Hub(new Tokens(secret));
        app.UseWebSockets();
        app.Map("/ws", hub.AcceptAsync);
        app.MapPost("/api/events", hub.PublishBatchAsync);
        app.MapPost("/api/rooms/{bullPenId}/events", hub.PublishOneAsync);
        app.MapGet("/api/health", hub.HealthAsync);
        app.MapGet("/metrics", hub.MetricsAsync);
        return app;
    }
}

/// <summary>Checks HS256 tokens by hand: the signature, <c>exp</c>, and the user id (<c>userId</c>, <c>sub</c> or <c>id</c>) and role.</summary>
internal sealed class Tokens(string secret)
{
    private readonly byte[] _key = Encoding.UTF8.GetBytes(secret);

    public (string UserId, bool Service)? Validate(string? token)
    {
        if (string.IsNullOrEmpty(token))
            return null;
        var parts = token.Split('.');
        if (parts.Length != 3)
            return null;
        var expected = HMACSHA256.HashData(_key, Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]));
        if (Base64Url(parts[2]) is not { } signature || !CryptographicOperations.FixedTimeEquals(signature, expected))
            return null;
        if (Base64Url(parts[0]) is not { } header || Base64Url(parts[1]) is not { } payload)
            return null;
        try
        {
            using (var h = JsonDocument.Parse(header))
            {
                if (!h.RootElement.TryGetProperty("alg", out var alg) || alg.GetString() != "HS256")
                    return null;
            }
            using var p = JsonDocument.Parse(payload);
            var claims = p.RootElement;
            if (!claims.TryGetProperty("exp", out var exp) || exp.ValueKind != JsonValueKind.Number
                || exp.GetInt64() <= DateTimeOffset.UtcNow.ToUnixTimeSeconds())
                return null;
            string? user = null;
            foreach (var name in new[] { "userId", "sub", "id" })
            {
                if (claims.TryGetProperty(name, out var u) && u.ValueKind == JsonValueKind.String && u.GetString() is { Length: > 0 } s)
                {
                    user = s;
                    break;
                }
            }
            if (user is null)
                return null;
            var service = claims.TryGetProperty("role", out var role) && role.ValueKind == JsonValueKind.String && role.GetString() == "service";
            return (user, service);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static byte[]? Base64Url(string text)
    {
        var s = text.Replace('-', '+').Replace('_', '/');
        s += (s.Length % 4) switch { 2 => "==", 3 => "=", _ => "" };
        try
        {
            return Convert.FromBase64String(s);
        }
        catch (FormatException)
        {
            return null;
        }
    }
}

internal sealed class Room
{
    public readonly Lock Gate = new();
    public long Seq;
    public readonly List<Client> Subscribers = [];
}

/// <summary>One socket: its queue of frames to send (events shared between subscribers: serialized once per event).</summary>
internal sealed class Client(WebSocket socket)
{
    public readonly WebSocket Socket = socket;
    public readonly Channel<Outgoing> Outbox = Channel.CreateUnbounded<Outgoing>(new UnboundedChannelOptions { SingleReader = true });
    public readonly List<Room> Rooms = [];
    public string? UserId;
}

internal readonly record struct Outgoing(byte[] Frame, bool IsEvent);

internal sealed class Hub(Tokens tokens)
{
    private readonly Dictionary<string, Room> _rooms = [];
    private readonly Lock _roomsGate = new();
    private long _eventsPublished;
    private long _framesDelivered;
    private int _connections;

    private Room RoomFor(string bullPenId)
    {
        lock (_roomsGate)
        {
            if (!_rooms.TryGetValue(bullPenId, out var room))
                _rooms[bullPenId] = room = new Room();
            return room;
        }
    }

    public async Task AcceptAsync(HttpContext context)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            await Error(context, 400, "invalid_request", "a WebSocket upgrade is expected here");
            return;
        }
        using var socket = await context.WebSockets.AcceptWebSocketAsync();
        var client = new Client(socket);
        Interlocked.Increment(ref _connections);
        var sending = SendLoopAsync(client);
        try
        {
            if (context.Request.Query["token"] is { Count: > 0 } token && !Authenticate(client, token.ToString()))
                return;
            await ReceiveLoopAsync(client, context.RequestAborted);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException)
        {
        }
        finally
        {
            foreach (var room in client.Rooms)
            {
                lock (room.Gate)
                    room.Subscribers.Remove(client);
            }
            client.Outbox.Writer.TryComplete();
            await sending;
            Interlocked.Decrement(ref _connections);
        }
    }

    /// <summary>auth_success, or auth_error and close 4001 (false).</summary>
    private bool Authenticate(Client client, string token)
    {
        if (tokens.Validate(token) is not { } valid)
        {
            Send(client, Frame(w =>
            {
                w.WriteString("type", "auth_error");
                w.WriteStartObject("data");
                w.WriteString("code", "invalid_token");
                w.WriteString("message", "the token is invalid or expired");
                w.WriteEndObject();
            }));
            client.Outbox.Writer.TryComplete();
            return false;
        }
        client.UserId = valid.UserId;
        Send(client, Frame(w =>
        {
            w.WriteString("type", "auth_success");
            w.WriteStartObject("data");
            w.WriteString("userId", valid.UserId);
            w.WriteString("node", "reference");
            w.WriteEndObject();
        }));
        return true;
    }

    private async Task ReceiveLoopAsync(Client client, CancellationToken cancellationToken)
    {
        var buffer = new byte[1024];
        var length = 0;
        while (true)
        {
            if (length == buffer.Length)
                Array.Resize(ref buffer, buffer.Length * 2);
            var result = await client.Socket.ReceiveAsync(buffer.AsMemory(length), cancellationToken);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                client.Outbox.Writer.TryComplete();
                return;
            }
            length += result.Count;
            if (!result.EndOfMessage)
                continue;
            var keepGoing = OnMessage(client, buffer.AsSpan(0, length));
            length = 0;
            if (!keepGoing)
                return;
        }
    }

    /// <summary>One client message; false when the connection is to end (a refused token).</summary>
    private bool OnMessage(Client client, ReadOnlySpan<byte> message)
    {
        string? type = null, token = null, bullPenId = null;
        try
        {
            using var doc = JsonDocument.Parse(message.ToArray());
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("type", out var t))
                type = t.GetString();
            if (doc.RootElement.TryGetProperty("data", out var data) && data.ValueKind == JsonValueKind.Object)
            {
                if (data.TryGetProperty("token", out var k) && k.ValueKind == JsonValueKind.String)
                    token = k.GetString();
                if (data.TryGetProperty("bullPenId", out var b) && b.ValueKind == JsonValueKind.String)
                    bullPenId = b.GetString();
            }
        }
        catch (JsonException)
        {
        }
        switch (type)
        {
            case "auth":
                return Authenticate(client, token ?? "");
            case "ping":
                Send(client, Frame(w => w.WriteString("type", "pong")));
                return true;
            case "subscribe_room" when client.UserId is not null && !string.IsNullOrEmpty(bullPenId):
                Subscribe(client, bullPenId);
                return true;
            default:
                Send(client, ErrorFrame(client.UserId is null ? "not_authenticated" : "invalid_message",
                    client.UserId is null ? "authenticate first" : "not a message this reference server knows"));
                return true;
        }
    }

    private void Subscribe(Client client, string bullPenId)
    {
        var room = RoomFor(bullPenId);
        // Under the room's lock: the reply's seq and the joining agree, so the events after it follow it, none missing.
        lock (room.Gate)
        {
            if (!client.Rooms.Contains(room))
            {
                room.Subscribers.Add(client);
                client.Rooms.Add(room);
            }
            var seq = room.Seq;
            Send(client, Frame(w =>
            {
                w.WriteString("type", "subscribed");
                w.WriteStartObject("data");
                w.WriteString("bullPenId", bullPenId);
                w.WriteNumber("seq", seq);
                w.WriteString("epoch", "reference");
                w.WriteBoolean("recovered", false);
                w.WriteStartObject("state");
                w.WriteNull("leaderboard");
                w.WriteNull("room");
                w.WriteStartArray("members");
                w.WriteEndArray();
                w.WriteEndObject();
                w.WriteEndObject();
            }));
        }
    }

    private async Task SendLoopAsync(Client client)
    {
        var reader = client.Outbox.Reader;
        try
        {
            while (await reader.WaitToReadAsync())
            {
                while (reader.TryRead(out var outgoing))
                {
                    await client.Socket.SendAsync(outgoing.Frame, WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
                    if (outgoing.IsEvent)
                        Interlocked.Increment(ref _framesDelivered);
                }
            }
            if (client.Socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                var status = client.UserId is null ? (WebSocketCloseStatus)4001 : WebSocketCloseStatus.NormalClosure;
                await client.Socket.CloseOutputAsync(status, client.UserId is null ? "invalid_token" : "", CancellationToken.None);
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
        {
        }
    }

    private static void Send(Client client, byte[] frame) => client.Outbox.Writer.TryWrite(new Outgoing(frame, false));

    public async Task PublishBatchAsync(HttpContext context)
    {
        if (!await AuthorizedAsync(context) || await BodyAsync(context) is not { } body)
            return;
        using (body)
        {
            if (body.RootElement.ValueKind != JsonValueKind.Array)
            {
                await Error(context, 400, "invalid_message", "the body is a JSON array of events");
                return;
            }
            var events = new List<(string Room, string Type, JsonElement Data)>();
            var i = 0;
            foreach (var e in body.RootElement.EnumerateArray())
            {
                if (Event(e, null) is not { } valid)
                {
                    await Error(context, 400, "invalid_message", $"events[{i}]: needs a string bullPenId and type and an object data");
                    return;
                }
                events.Add(valid);
                i++;
            }
            var seqs = events.Select(e => Publish(e.Room, e.Type, e.Data)).ToList();
            await Json(context, 202, w =>
            {
                w.WriteNumber("accepted", seqs.Count);
                w.WriteStartArray("seqs");
                foreach (var seq in seqs)
                    w.WriteNumberValue(seq);
                w.WriteEndArray();
            });
        }
    }

    public async Task PublishOneAsync(HttpContext context)
    {
        var bullPenId = (string)context.Request.RouteValues["bullPenId"]!;
        if (!await AuthorizedAsync(context) || await BodyAsync(context) is not { } body)
            return;
        using (body)
        {
            if (Event(body.RootElement, bullPenId) is not { } e)
            {
                await Error(context, 400, "invalid_message", "needs a string type and an object data");
                return;
            }
            var seq = Publish(e.Room, e.Type, e.Data);
            await Json(context, 202, w =>
            {
                w.WriteString("bullPenId", bullPenId);
                w.WriteNumber("seq", seq);
            });
        }
    }

    private static (string Room, string Type, JsonElement Data)? Event(JsonElement e, string? bullPenId)
    {
        if (e.ValueKind != JsonValueKind.Object)
            return null;
        if (bullPenId is null && (!e.TryGetProperty("bullPenId", out var b) || b.ValueKind != JsonValueKind.String || (bullPenId = b.GetString()) is not { Length: > 0 }))
            return null;
        if (!e.TryGetProperty("type", out var t) || t.ValueKind != JsonValueKind.String)
            return null;
        if (!e.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Object)
            return null;
        return (bullPenId, t.GetString()!, data);
    }

    /// <summary>Numbers the event in its room, frames it once and queues that frame to every subscriber.</summary>
    private long Publish(string bullPenId, string type, JsonElement data)
    {
        var room = RoomFor(bullPenId);
        lock (room.Gate)
        {
            var seq = ++room.Seq;
            var frame = Frame(w =>
            {
                w.WriteString("type", type);
                w.WriteString("bullPenId", bullPenId);
                w.WriteNumber("seq", seq);
                w.WritePropertyName("data");
                // The publisher's bytes as they came, as the project sends them.
                w.WriteRawValue(System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(data), skipInputValidation: true);
            });
            var outgoing = new Outgoing(frame, true);
            foreach (var subscriber in room.Subscribers)
                subscriber.Outbox.Writer.TryWrite(outgoing);
            Interlocked.Increment(ref _eventsPublished);
            return seq;
        }
    }

    public Task HealthAsync(HttpContext context)
    {
        int rooms;
        lock (_roomsGate)
            rooms = _rooms.Count;
        return Json(context, 200, w =>
        {
            w.WriteString("status", "ok");
            w.WriteNumber("connections", Volatile.Read(ref _connections));
            w.WriteNumber("rooms", rooms);
            w.WriteNumber("eventsPublished", Interlocked.Read(ref _eventsPublished));
            w.WriteNumber("framesDelivered", Interlocked.Read(ref _framesDelivered));
        });
    }

    public Task MetricsAsync(HttpContext context)
    {
        context.Response.ContentType = "text/plain; version=0.0.4";
        return context.Response.WriteAsync(
            $"traderoom_events_published_total {Interlocked.Read(ref _eventsPublished)}\n" +
            $"traderoom_frames_delivered_total {Interlocked.Read(ref _framesDelivered)}\n");
    }

    private async Task<bool> AuthorizedAsync(HttpContext context)
    {
        var header = context.Request.Headers.Authorization.ToString();
        var valid = header.StartsWith("Bearer ", StringComparison.Ordinal) ? tokens.Validate(header[7..]) : null;
        if (valid is null)
        {
            await Error(context, 401, "unauthorized", "a valid bearer token is required");
            return false;
        }
        if (!valid.Value.Service)
        {
            await Error(context, 403, "forbidden", "publishing needs a token with role service");
            return false;
        }
        return true;
    }

    private static async Task<JsonDocument?> BodyAsync(HttpContext context)
    {
        try
        {
            return await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
        }
        catch (JsonException)
        {
            await Error(context, 400, "invalid_json", "the body is not JSON");
            return null;
        }
    }

    private static byte[] Frame(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static byte[] ErrorFrame(string code, string message) => Frame(w =>
    {
        w.WriteString("type", "error");
        w.WriteStartObject("data");
        w.WriteString("code", code);
        w.WriteString("message", message);
        w.WriteEndObject();
    });

    private static Task Json(HttpContext context, int status, Action<Utf8JsonWriter> body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        return context.Response.Body.WriteAsync(Frame(body)).AsTask();
    }

    private static Task Error(HttpContext context, int status, string code, string message) => Json(context, status, w =>
    {
        w.WriteStartObject("error");
        w.WriteString("code", code);
        w.WriteString("message", message);
        w.WriteEndObject();
    });
}
