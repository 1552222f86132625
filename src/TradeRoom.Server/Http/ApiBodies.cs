using System.ComponentModel;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using TradeRoom.Actors.Cluster;

namespace TradeRoom.Server.Http;

// The JSON bodies of the HTTP API, as types: the endpoints answer with them and the OpenAPI document
// (/openapi/v1.json) describes them, so the document cannot drift from what is sent. Serialized with the web
// defaults (camelCase).

/// <summary>Every HTTP error: <c>{"error":{"code":…,"message":…}}</c>.</summary>
[Description("Every error answer of the HTTP port (except Kestrel's own refusals of a request it cannot parse, which have an empty body).")]
public sealed record ApiErrorBody(ApiError Error);

public sealed record ApiError(
    [property: Description("A stable, machine-readable code, e.g. invalid_room; each operation lists the codes it answers with per status.")] string Code,
    [property: Description("What was wrong, for a person.")] string Message);

/// <summary>The body of <c>POST /api/rooms/{bullPenId}/events</c>. Only for the document: the endpoint reads the body itself.</summary>
[Description("One event for the room in the path.")]
public sealed record PublishEventRequest(
    [property: Description("One of the 14 event types (docs/protocol.md): order_executed, order_failed, order_cancelled, leaderboard_update, ranking_changed, snapshot_created, position_update, position_closed, portfolio_update, room_state_changed, room_started, room_ended, member_joined, member_left.")]
    string Type,
    [property: Description("The event's data, delivered to subscribers exactly as sent. Private events (orders, positions) need a string userId: only that user receives them.")]
    JsonObject Data);

/// <summary>One event of the body of <c>POST /api/events</c>. Only for the document.</summary>
[Description("One event of a batch: its room, type and data.")]
public sealed record BatchEventRequest(
    [property: Description("The bull pen: 1 to 128 characters with no control or format character, or an integer (42 and \"42\" are the same room).")]
    string BullPenId,
    [property: Description("One of the 14 event types (see the single-event body).")] string Type,
    [property: Description("The event's data, delivered as sent; private events need a string userId.")] JsonObject Data);

[Description("The event is stored and delivered to the room's subscribers.")]
public sealed record EventAccepted(string BullPenId, [property: Description("The event's number in its room (from 1).")] long Seq);

[Description("Every event of the batch is stored and delivered.")]
public sealed record BatchAccepted(int Accepted, [property: Description("Each event's seq in its room, in the order of the batch.")] IReadOnlyList<long> Seqs);

/// <summary>The <c>/api/health</c> body; <c>reason</c> is null unless degraded, <c>cluster</c> only in cluster mode.</summary>
public sealed record Health(
    [property: Description("ok, or degraded while the rooms' store fails (connected clients are still served).")] string Status,
    [property: Description("Why the server is degraded; null when ok.")] string? Reason,
    int Connections,
    int Rooms,
    long UptimeSeconds,
    [property: Description("Events published since start (take rates from deltas).")] long EventsPublished,
    [property: Description("Event frames delivered to sockets since start.")] long FramesDelivered,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull), Description("Cluster mode only.")] ClusterView? Cluster = null);

[Description("This node should get traffic.")]
public sealed record ReadyBody(bool Ready, string Node);

[Description("A page of the running rooms, ordered by id.")]
public sealed record RoomListPage(
    IReadOnlyList<RoomListEntry> Rooms,
    [property: Description("Pass as ?after= for the next page; null on the last page.")] string? Next);

public sealed record RoomListEntry(
    string BullPenId,
    [property: Description("Connections subscribed right now.")] int Subscribers,
    [property: Description("The room's last seq.")] long Seq,
    string Epoch,
    [property: Description("The cluster node that runs the room (cluster mode), else null.")] string? Node);

[Description("One running room, with the state snapshot a subscriber gets and the users subscribed right now.")]
public sealed record RoomView(
    string BullPenId,
    int Subscribers,
    long Seq,
    string Epoch,
    RoomStateView State,
    [property: Description("The user ids of the connections subscribed right now.")] IReadOnlyList<string> Users,
    string? Node);

/// <remarks>The two data parts stay JSON as the room stored it (JsonElement, not JsonObject: published data may repeat a name).</remarks>
[Description("The room's state, as in the WebSocket subscribed frame (docs/protocol.md, \"State on subscribe\").")]
public sealed record RoomStateView(
    [property: Description("The data of the latest leaderboard_update or snapshot_created (a JSON object), or null.")] JsonElement? Leaderboard,
    [property: Description("The data of the latest room_state_changed, room_started or room_ended (a JSON object; status active/ended after the last two), or null.")] JsonElement? Room,
    [property: Description("The user ids of member_joined minus those of member_left, in join order.")] IReadOnlyList<string> Members);

[Description("A development token (Development only).")]
public sealed record DevToken(string Token, string UserId, [property: Description("UTC, whole seconds: 24 hours from now.")] DateTime ExpiresAt);

[Description("What the dashboard needs to connect.")]
public sealed record DashboardConfig(
    [property: Description("The first of wsUrls.")] string WsUrl,
    [property: Description("The WebSocket URLs to use, in order (http.public-ws-url, or one built from the request's host).")] IReadOnlyList<string> WsUrls,
    [property: Description("Whether GET /api/dev/token is available.")] bool Development,
    DashboardDemo Demo);

public sealed record DashboardDemo(bool Enabled, string BullPenId);
