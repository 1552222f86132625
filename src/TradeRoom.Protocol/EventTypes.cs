using System.Collections.Frozen;

namespace TradeRoom.Protocol;

/// <summary>The 14 event types of the Trade Room that trade services publish and clients receive.</summary>
public static class EventTypes
{
    public const string OrderExecuted = "order_executed";
    public const string OrderFailed = "order_failed";
    public const string OrderCancelled = "order_cancelled";
    public const string LeaderboardUpdate = "leaderboard_update";
    public const string RankingChanged = "ranking_changed";
    public const string SnapshotCreated = "snapshot_created";
    public const string PositionUpdate = "position_update";
    public const string PositionClosed = "position_closed";
    public const string PortfolioUpdate = "portfolio_update";
    public const string RoomStateChanged = "room_state_changed";
    public const string RoomStarted = "room_started";
    public const string RoomEnded = "room_ended";
    public const string MemberJoined = "member_joined";
    public const string MemberLeft = "member_left";

    public static readonly IReadOnlyList<string> All =
    [
        OrderExecuted, OrderFailed, OrderCancelled,
        LeaderboardUpdate, RankingChanged, SnapshotCreated,
        PositionUpdate, PositionClosed, PortfolioUpdate,
        RoomStateChanged, RoomStarted, RoomEnded, MemberJoined, MemberLeft,
    ];

    private static readonly FrozenSet<string> Known = All.ToFrozenSet(StringComparer.Ordinal);

    public static bool IsKnown(string type) => Known.Contains(type);
}
