using System.Text.Json;
using System.Text.Json.Serialization;

namespace TradeRoom.Client;

/// <summary>
/// A typed view of one event type's <c>data</c>, for <see cref="Room.On{T}(Action{T, EventFrame})"/>. The server
/// delivers <c>data</c> exactly as the trade service published it, so every property is optional: the records name
/// the fields the server itself relies on (<c>userId</c> of private and member events, <c>status</c> of room events)
/// and those the demo trade room publishes; anything else is kept in <c>Extra</c>. A platform whose services publish
/// other shapes uses <see cref="Room.On{T}(string, Action{T, EventFrame})"/> with its own record, or the raw
/// <see cref="EventFrame.Data"/>.
/// </summary>
public interface ITradeRoomEvent
{
    /// <summary>The wire type this record reads, e.g. <c>order_executed</c>.</summary>
    static abstract string EventType { get; }
}

/// <summary>Fields the records do not name, as published.</summary>
public abstract record EventPayload
{
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Extra { get; init; }
}

/// <summary><c>order_executed</c> (private to <see cref="UserId"/>).</summary>
public sealed record OrderExecuted : EventPayload, ITradeRoomEvent
{
    public static string EventType => EventTypes.OrderExecuted;
    public string? UserId { get; init; }
    public string? OrderId { get; init; }
    public string? Symbol { get; init; }
    public string? Side { get; init; }
    public decimal? Qty { get; init; }
    public decimal? Price { get; init; }
    public DateTimeOffset? ExecutedAt { get; init; }
}

/// <summary><c>order_failed</c> (private to <see cref="UserId"/>).</summary>
public sealed record OrderFailed : EventPayload, ITradeRoomEvent
{
    public static string EventType => EventTypes.OrderFailed;
    public string? UserId { get; init; }
    public string? OrderId { get; init; }
    public string? Symbol { get; init; }
    public string? Side { get; init; }
    public decimal? Qty { get; init; }
    public decimal? Price { get; init; }
    public string? Reason { get; init; }
    public DateTimeOffset? At { get; init; }
}

/// <summary><c>order_cancelled</c> (private to <see cref="UserId"/>).</summary>
public sealed record OrderCancelled : EventPayload, ITradeRoomEvent
{
    public static string EventType => EventTypes.OrderCancelled;
    public string? UserId { get; init; }
    public string? OrderId { get; init; }
    public string? Symbol { get; init; }
    public string? Side { get; init; }
    public decimal? Qty { get; init; }
    public string? Reason { get; init; }
    public DateTimeOffset? At { get; init; }
}

/// <summary>One row of a leaderboard.</summary>
public sealed record LeaderboardEntry : EventPayload
{
    public int? Rank { get; init; }
    public string? UserId { get; init; }
    public string? Name { get; init; }
    public decimal? Pnl { get; init; }
    public decimal? ReturnPct { get; init; }
    public decimal? Equity { get; init; }
    public int? Trades { get; init; }
}

/// <summary>The standings: the shape of <c>leaderboard_update</c> and <c>snapshot_created</c> (and of <see cref="RoomSnapshot.Leaderboard"/>).</summary>
public abstract record LeaderboardData : EventPayload
{
    public string? SnapshotId { get; init; }
    public int? Round { get; init; }
    public DateTimeOffset? AsOf { get; init; }
    public IReadOnlyList<LeaderboardEntry>? Entries { get; init; }
}

/// <summary><c>leaderboard_update</c>.</summary>
public sealed record LeaderboardUpdate : LeaderboardData, ITradeRoomEvent
{
    public static string EventType => EventTypes.LeaderboardUpdate;
}

/// <summary><c>snapshot_created</c>: a leaderboard kept as it stood (e.g. a round's final one).</summary>
public sealed record SnapshotCreated : LeaderboardData, ITradeRoomEvent
{
    public static string EventType => EventTypes.SnapshotCreated;
}

/// <summary><c>ranking_changed</c>.</summary>
public sealed record RankingChanged : EventPayload, ITradeRoomEvent
{
    public static string EventType => EventTypes.RankingChanged;
    public string? UserId { get; init; }
    public string? Name { get; init; }
    public int? From { get; init; }
    public int? To { get; init; }
    public int? Round { get; init; }
    public DateTimeOffset? At { get; init; }
}

/// <summary><c>position_update</c> (private to <see cref="UserId"/>).</summary>
public sealed record PositionUpdate : EventPayload, ITradeRoomEvent
{
    public static string EventType => EventTypes.PositionUpdate;
    public string? UserId { get; init; }
    public string? Symbol { get; init; }
    public decimal? Qty { get; init; }
    public decimal? AvgPrice { get; init; }
    public decimal? MarketPrice { get; init; }
    public decimal? UnrealizedPnl { get; init; }
    public DateTimeOffset? At { get; init; }
}

/// <summary><c>position_closed</c> (private to <see cref="UserId"/>).</summary>
public sealed record PositionClosed : EventPayload, ITradeRoomEvent
{
    public static string EventType => EventTypes.PositionClosed;
    public string? UserId { get; init; }
    public string? Symbol { get; init; }
    public decimal? RealizedPnl { get; init; }
    public DateTimeOffset? ClosedAt { get; init; }
}

/// <summary><c>portfolio_update</c> (private to <see cref="UserId"/>).</summary>
public sealed record PortfolioUpdate : EventPayload, ITradeRoomEvent
{
    public static string EventType => EventTypes.PortfolioUpdate;
    public string? UserId { get; init; }
    public decimal? Cash { get; init; }
    public decimal? Equity { get; init; }
    public decimal? Pnl { get; init; }
    public decimal? ReturnPct { get; init; }
    /// <summary>How many positions are open.</summary>
    public int? Positions { get; init; }
    public DateTimeOffset? At { get; init; }
}

/// <summary>The room's own data: the shape of <c>room_state_changed</c>, <c>room_started</c> and <c>room_ended</c> (and of <see cref="RoomSnapshot.Room"/>).</summary>
public abstract record RoomData : EventPayload
{
    /// <summary><c>active</c> after <c>room_started</c> and <c>ended</c> after <c>room_ended</c> in the snapshot; as published otherwise.</summary>
    public string? Status { get; init; }
    public int? Round { get; init; }
    public string? Name { get; init; }
}

/// <summary><c>room_state_changed</c>.</summary>
public sealed record RoomStateChanged : RoomData, ITradeRoomEvent
{
    public static string EventType => EventTypes.RoomStateChanged;
    public DateTimeOffset? StartsAt { get; init; }
    public int? SecondsLeft { get; init; }
}

/// <summary><c>room_started</c>.</summary>
public sealed record RoomStarted : RoomData, ITradeRoomEvent
{
    public static string EventType => EventTypes.RoomStarted;
    public DateTimeOffset? StartsAt { get; init; }
    public DateTimeOffset? EndsAt { get; init; }
    public decimal? StartingCash { get; init; }
    public IReadOnlyList<string>? Symbols { get; init; }
}

/// <summary>The winner named by <c>room_ended</c>.</summary>
public sealed record RoomWinner : EventPayload
{
    public string? UserId { get; init; }
    public string? Name { get; init; }
    public decimal? Pnl { get; init; }
}

/// <summary><c>room_ended</c>.</summary>
public sealed record RoomEnded : RoomData, ITradeRoomEvent
{
    public static string EventType => EventTypes.RoomEnded;
    public DateTimeOffset? EndedAt { get; init; }
    public RoomWinner? Winner { get; init; }
}

/// <summary><c>member_joined</c>: <see cref="UserId"/> is added to the snapshot's members.</summary>
public sealed record MemberJoined : EventPayload, ITradeRoomEvent
{
    public static string EventType => EventTypes.MemberJoined;
    public string? UserId { get; init; }
    public string? Name { get; init; }
    public DateTimeOffset? JoinedAt { get; init; }
}

/// <summary><c>member_left</c>: <see cref="UserId"/> leaves the snapshot's members.</summary>
public sealed record MemberLeft : EventPayload, ITradeRoomEvent
{
    public static string EventType => EventTypes.MemberLeft;
    public string? UserId { get; init; }
    public string? Name { get; init; }
    public DateTimeOffset? LeftAt { get; init; }
}
