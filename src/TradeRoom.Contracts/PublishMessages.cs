namespace TradeRoom.Contracts;

/// <summary>
/// Publishes one event to a bull pen. Tell it to the server's <c>IntegrationActor</c> (in process, or from another
/// process through <c>ClusterClient</c> at <c>/user/integration</c>); the sender gets <see cref="EventPublished"/> or
/// <see cref="PublishRejected"/>.
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

/// <summary>The event was not published; <paramref name="Code"/> is one of the server's error codes (docs/protocol.md).</summary>
public sealed record PublishRejected(string BullPenId, string Code, string Message) : PublishResult(BullPenId)
{
    public override bool Accepted => false;
}
