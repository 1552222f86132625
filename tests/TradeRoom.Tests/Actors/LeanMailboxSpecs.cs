using Akka.Actor;
using TradeRoom.Actors.Connections;
using TradeRoom.Tests.Support;

namespace TradeRoom.Tests.Actors;

public class LeanMailboxSpecs() : Akka.TestKit.Xunit2.TestKit(ShippedSettings.ActorSystem)
{
    [Fact]
    public void Connections_opened_by_the_manager_use_the_lean_mailbox_and_deliver_in_order()
    {
        var manager = Sys.ActorOf(ConnectionManager.Props(CreateTestProbe().Ref, ShippedSettings.Connections));
        var socket = new FakeClientSocket();
        manager.Tell(new OpenConnection(socket));
        var connection = ExpectMsg<IActorRef>();

        var cell = (ActorCell)((ActorRefWithCell)connection).Underlying;
        Assert.IsType<LeanMessageQueue>(cell.Mailbox!.MessageQueue);

        for (var i = 0; i < 100; i++)
            connection.Tell(new TradeRoom.Protocol.PingMessage(System.Text.Encoding.UTF8.GetBytes($"{{\"n\":{i}}}")));
        for (var i = 0; i < 100; i++)
            Assert.Equal(i, socket.NextFrame("pong").Data.GetProperty("n").GetInt32());
    }

    [Fact]
    public void The_queue_is_first_in_first_out_and_hands_leftovers_to_dead_letters()
    {
        var queue = new LeanMessageQueue();
        Assert.False(queue.HasMessages);
        for (var i = 0; i < 5; i++)
            queue.Enqueue(TestActor, new Envelope(i, TestActor));
        Assert.Equal(5, queue.Count);
        Assert.True(queue.TryDequeue(out var first));
        Assert.Equal(0, first.Message);

        var deadLetters = new LeanMessageQueue();
        queue.CleanUp(TestActor, deadLetters);
        Assert.False(queue.HasMessages);
        Assert.Equal(4, deadLetters.Count);
    }
}
