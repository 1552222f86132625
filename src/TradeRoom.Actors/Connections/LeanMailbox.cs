using Akka.Actor;
using Akka.Configuration;
using Akka.Dispatch;
using Akka.Dispatch.MessageQueues;

namespace TradeRoom.Actors.Connections;

/// <summary>
/// The mailbox of connection actors. Akka's default mailbox is a <c>ConcurrentQueue</c> whose first segment holds 32
/// envelopes (about 1 KB) from the first message on, for every actor; a connection actor is idle almost always and
/// holds at most a handful of messages, so here a plain queue under a lock, starting small, does the same job.
/// Configured as <see cref="ConfigPath"/> (see <see cref="Definition"/>).
/// </summary>
public sealed class LeanMailbox(Settings settings, Config config) : MailboxType(settings, config), IProducesMessageQueue<LeanMessageQueue>
{
    public const string ConfigPath = "traderoom-connection-mailbox";

    /// <summary>
    /// The mailbox's configuration: the server adds it to the actor system's (<c>AddTradeRoomActors</c>); a system that
    /// makes a <see cref="ConnectionManager"/> any other way (a TestKit spec) must include it.
    /// </summary>
    public static readonly Config Definition = ConfigurationFactory.ParseString(
        $"{ConfigPath}.mailbox-type = \"{typeof(LeanMailbox).AssemblyQualifiedName}\"");

    public override IMessageQueue Create(IActorRef owner, ActorSystem system) => new LeanMessageQueue();
}

/// <summary>An unbounded FIFO of envelopes under a lock; two envelopes of room until more are needed.</summary>
public sealed class LeanMessageQueue : IMessageQueue, IUnboundedMessageQueueSemantics
{
    private readonly Queue<Envelope> _queue = new(2);

    public bool HasMessages
    {
        get
        {
            lock (_queue)
                return _queue.Count > 0;
        }
    }

    public int Count
    {
        get
        {
            lock (_queue)
                return _queue.Count;
        }
    }

    public void Enqueue(IActorRef receiver, Envelope envelope)
    {
        lock (_queue)
            _queue.Enqueue(envelope);
    }

    public bool TryDequeue(out Envelope envelope)
    {
        lock (_queue)
            return _queue.TryDequeue(out envelope);
    }

    public void CleanUp(IActorRef owner, IMessageQueue deadletters)
    {
        while (TryDequeue(out var envelope))
            deadletters.Enqueue(owner, envelope);
    }
}
