using Akka.Actor;
using TradeRoom.Actors.Rooms;

namespace TradeRoom.Tests.Support;

/// <summary>
/// A room (or the registry) as a connection sees it, for actor specs: <see cref="Subscribe"/>,
/// <see cref="Unsubscribe"/> and a stopped connection's <see cref="SubscriberStopped"/> go through this node's real
/// <see cref="RoomRelays"/>, as in the server, and every other message straight to the room. It stops when the room
/// does, so a spec can watch it for the room's end.
/// </summary>
public sealed class RoomFront : ReceiveActor
{
    public RoomFront(IActorRef room, RoomSettings settings)
    {
        var relays = Context.ActorOf(RoomRelays.Props(room, settings), "relays");
        Context.Watch(room);
        Receive<Subscribe>(s => relays.Forward(s));
        Receive<Unsubscribe>(u => relays.Forward(u));
        Receive<SubscriberStopped>(s => relays.Forward(s));
        Receive<Terminated>(t => Context.Stop(Self), t => t.ActorRef.Equals(room));
        ReceiveAny(m => room.Forward(m));
    }
}

public static class RoomFronts
{
    /// <summary>A new <see cref="RoomRegistry"/> behind a front.</summary>
    public static IActorRef Registry(ActorSystem system, RoomSettings settings) =>
        For(system, system.ActorOf(RoomRegistry.Props(settings)), settings);

    /// <summary>A front for <paramref name="room"/> (a <see cref="RoomActor"/> or a <see cref="RoomRegistry"/>).</summary>
    public static IActorRef For(ActorSystem system, IActorRef room, RoomSettings? settings = null) =>
        system.ActorOf(Props.Create(() => new RoomFront(room, settings ?? ShippedSettings.Rooms)));
}
