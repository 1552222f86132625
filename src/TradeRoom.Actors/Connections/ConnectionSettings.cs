using TradeRoom.Actors.Monitoring;

namespace TradeRoom.Actors.Connections;

/// <summary>What a <see cref="ConnectionActor"/> enforces itself (from <c>traderoom.websocket</c> and <c>traderoom.limits</c>).</summary>
/// <param name="AuthTimeout">A connection not authenticated by then is closed with 4001.</param>
/// <param name="MaxSubscriptions">Rooms one connection may follow at once.</param>
/// <param name="OutboundBudget">Bytes the socket may hold queued; a replay is fed to the socket in windows of half of it.</param>
/// <param name="HardLimit">Bytes of live events waiting behind a replay at which the connection counts as a slow consumer.</param>
public sealed record ConnectionSettings(TimeSpan AuthTimeout, int MaxSubscriptions, long OutboundBudget, long HardLimit)
{
    /// <summary>Where connections count auth failures: the host's (see <see cref="TradeRoomSettings.WithMetrics"/>).</summary>
    public TradeRoomMetrics Metrics { get; init; } = TradeRoomMetrics.Unexported;

    /// <summary>Who may follow which room (see <see cref="TradeRoomSettings.WithRoomAuthorizer"/>); anyone, for actors built by hand.</summary>
    public Auth.RoomAuthorizer Authorizer { get; init; } = Auth.RoomAuthorizer.Open;

    /// <summary>This server node as <c>auth_success</c> names it to clients (see <c>TradeRoomHost.NodeName</c>); empty for actors built by hand.</summary>
    public string Node { get; init; } = "";

    /// <summary>
    /// Cluster mode: rooms this connection may start by subscribing (<c>limits.new-rooms-per-minute</c>), counted by the
    /// connection itself from the rooms' answers. 0: not counted here (the setting's 0, or single-node mode, where the
    /// room registry counts them, knowing which rooms run).
    /// </summary>
    public int NewRoomsPerMinute { get; init; }

    public long ReplayWindow => OutboundBudget / 2;
}
