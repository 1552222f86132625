using Akka.Actor;
using TradeRoom.Actors.Rooms;
using TradeRoom.Contracts;

namespace TradeRoom.Actors.Integration;

/// <summary>
/// Where domain events enter the actor system: validates each <see cref="PublishEvent"/> and routes it, through the
/// <see cref="RoomRegistry"/>, to its room for fan-out. The room answers the original sender with
/// <see cref="EventPublished"/>; an invalid event is answered here with <see cref="PublishRejected"/>.
/// Stateless, so the default supervision (restart) loses nothing.
/// </summary>
public sealed class IntegrationActor : ReceiveActor
{
    public IntegrationActor(IActorRef rooms, IReadOnlySet<string> privateEventTypes)
    {
        Receive<PublishEvent>(e =>
        {
            if (EventValidator.Validate(e, privateEventTypes, out var routed) is { } rejected)
                Sender.Tell(rejected);
            else
                rooms.Tell(routed, Sender);
        });
    }

    public static Props Props(IActorRef rooms, IReadOnlySet<string> privateEventTypes) =>
        Akka.Actor.Props.Create(() => new IntegrationActor(rooms, privateEventTypes));
}
