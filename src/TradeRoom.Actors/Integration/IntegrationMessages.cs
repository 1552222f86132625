namespace TradeRoom.Actors.Integration;

/// <summary>
/// Publishes one event to a bull pen. Tell it to the <see cref="IntegrationActor"/> (or use
/// <see cref="TradeRoomIntegration"/>); the sender gets <see cref="EventPublished"/> or <see cref="PublishRejected"/>.
/// </summary>
/// <param name="Data">The event's <c>data</c>: a JSON object, UTF-8.</param>
public sealed record PublishEvent(string BullPenId, string Type, byte[] Data);

public abstract record PublishResult(string BullPenId)
{
    public abstract bool Accepted { get; }
}

/// <summary>The room took the event and gave it <paramref name="Seq"/>.</summary>
public sealed record EventPublished(string BullPenId, long Seq) : PublishResult(BullPenId)
{
    public override bool Accepted => true;
}

/// <summary>The event was not valid; <paramref name="Code"/> is one of <see cref="Protocol.ErrorCodes"/>.</summary>
public sealed record PublishRejected(string BullPenId, string Code, string Message) : PublishResult(BullPenId)
{
    public override bool Accepted => false;
}
