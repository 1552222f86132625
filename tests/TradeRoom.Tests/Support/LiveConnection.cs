using Akka.Actor;
using Akka.TestKit;
using TradeRoom.Actors.Connections;
using TradeRoom.Protocol;

namespace TradeRoom.Tests.Support;

/// <summary>
/// A real <see cref="ConnectionActor"/> (child of a real <see cref="ConnectionManager"/>, over a
/// <see cref="FakeClientSocket"/>) that follows a room through <paramref name="Rooms"/> (a <see cref="RoomFront"/>), for
/// specs about what the rooms do when a connection ends: nobody watches a connection, so only what the connection itself
/// does when it stops tells them.
/// </summary>
public sealed record LiveConnection(IActorRef Actor, FakeClientSocket Socket, IActorRef Manager)
{
    /// <summary>Opens a connection and authenticates it as <paramref name="userId"/> (<c>auth_success</c> read).</summary>
    public static LiveConnection Authenticated(TestKitBase kit, IActorRef rooms, string userId)
    {
        var manager = kit.Sys.ActorOf(ConnectionManager.Props(rooms, ShippedSettings.Connections));
        var socket = new FakeClientSocket();
        var opener = kit.CreateTestProbe();
        manager.Tell(new OpenConnection(socket), opener.Ref);
        var actor = opener.ExpectMsg<IActorRef>();
        actor.Tell(new AuthSucceeded(userId, null));
        socket.NextFrame("auth_success");
        return new LiveConnection(actor, socket, manager);
    }

    /// <summary>Opens a connection as <paramref name="userId"/> and subscribes it to <paramref name="bullPenId"/>, waiting for <c>subscribed</c>.</summary>
    public static LiveConnection Subscribed(TestKitBase kit, IActorRef rooms, string bullPenId, string userId)
    {
        var connection = Authenticated(kit, rooms, userId);
        connection.Actor.Tell(new SubscribeRoomMessage(bullPenId));
        connection.Socket.NextFrame("subscribed");
        return connection;
    }

    /// <summary>Its socket closes (as when the client goes away without unsubscribing); returns once the actor has stopped.</summary>
    public void Close(TestKitBase kit)
    {
        var watcher = kit.CreateTestProbe();
        watcher.Watch(Actor);
        Actor.Tell(SocketClosed.Instance);
        watcher.ExpectTerminated(Actor);
    }
}
